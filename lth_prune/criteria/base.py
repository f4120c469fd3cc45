"""What the criteria share: the score dict, the weights they score, pruning to a count in rounds.

A criterion is a :class:`~lth_prune.ScorePruning` subclass whose ``scores`` class method scores
a network (``{(module, "weight"): tensor}``, the ``importance_scores`` that
``prune.global_unstructured`` takes; the lowest score is pruned first), registered here by name.
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Iterable, Mapping, TypeVar, Union

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn

from lth_prune._reparam import ModuleOrName, keep_mask, prunable_layers, prunable_tensor, stored_tensor
from lth_prune.methods import ScorePruning, prunable
from lth_prune.rewind import capture_state, restore_state

__all__ = ["CRITERIA", "Criterion", "Scores", "criterion", "prune_at_init", "register_criterion", "score_key"]

Scores = dict[tuple[nn.Module, str], Tensor]
Batches = Iterable[tuple[Tensor, Tensor]]
Remaining = Union[int, Mapping[str, int]]


class Criterion(ScorePruning):
    """A pruning-at-initialization criterion: a :class:`~lth_prune.ScorePruning` that knows its scores.

    Attributes:
        name: the registry name (``"snip"``), the ``--method`` value.
        needs_data: whether :meth:`scores` needs training batches.
        rounds: how many rounds :func:`prune_at_init` prunes in by default (SynFlow: 100).
    """

    name: ClassVar[str] = ""
    needs_data: ClassVar[bool] = True
    rounds: ClassVar[int] = 1

    @classmethod
    def scores(cls, model: nn.Module, batches: Batches | None = None, **options: Any) -> Scores:
        """Score every prunable weight of ``model`` (its masked entries included, at any value)."""
        raise NotImplementedError(f"{cls.__name__}.scores() must be implemented by the criterion.")

    @classmethod
    def apply(  # type: ignore[override]
        cls, module: nn.Module, name: str, amount: int | float, importance_scores: Tensor | None = None,
    ) -> prune.BasePruningMethod:
        """Prune ``module.<name>`` by ``importance_scores`` (from the criterion's score function).

        Raises:
            ValueError: if ``importance_scores`` is ``None``: without them the weights would be
                ranked, which is another criterion.
        """
        if importance_scores is None:
            raise ValueError(
                f"{cls.__name__}.apply(): importance_scores must be given (from {cls.__name__}.scores(model, ...)), got None."
            )
        return super().apply(module, name, amount, importance_scores=importance_scores)


CRITERIA: dict[str, type[Criterion]] = {}
CriterionT = TypeVar("CriterionT", bound=type[Criterion])


def register_criterion(cls: CriterionT) -> CriterionT:
    """Class decorator: register a :class:`Criterion` under its ``name``.

    Raises:
        ValueError: if the name is empty or taken.
    """
    if not cls.name or cls.name in CRITERIA:
        raise ValueError(f"register_criterion(): {cls.__name__}.name must be new and not empty, got {cls.name!r}.")
    CRITERIA[cls.name] = cls
    return cls


def criterion(name: str) -> type[Criterion]:
    """The criterion registered as ``name``.

    Raises:
        ValueError: if there is none (the message lists the registered names).
    """
    if name not in CRITERIA:
        raise ValueError(f"criterion(): name must be one of {sorted(CRITERIA)}, got {name!r}.")
    return CRITERIA[name]


def prune_at_init(
    model: nn.Module,
    method: type[Criterion],
    remaining: Remaining,
    *,
    batches: Batches | None = None,
    rounds: int | None = None,
    exclude: Iterable[ModuleOrName] = (),
    **options: Any,
) -> Scores:
    """Prune ``model`` by a criterion's scores until ``remaining`` weights are left.

    With ``rounds > 1`` the network is scored again after every round, and round ``k`` of
    ``K`` leaves the fraction ``(remaining / total) ** (k / K)`` (the exponential schedule
    of SynFlow, Tanaka et al. 2020); with one round it is pruned once (SNIP, GraSP).

    Args:
        model: the network, typically freshly initialized; pruned in place.
        method: a registered criterion class (:data:`CRITERIA`).
        remaining: weights to keep: a total over the prunable layers (global pruning: one
            ranking over all of them), or a count per layer name (layer-wise).
        batches: training batches, for criteria that need data.
        rounds: rounds to prune in; default: the criterion's.
        exclude: layers never pruned, as names or modules.
        **options: passed to the score function (e.g. GraSP's ``temperature``).

    Returns:
        The scores of the last round (what the final mask was chosen by).

    Raises:
        TypeError: if ``method`` is not a :class:`Criterion` subclass.
        ValueError: if ``remaining`` is negative or more than there are weights, names a layer
            that is not prunable, or the criterion needs data and ``batches`` is ``None``.

    Example:
        >>> from lth_prune.criteria import SynFlow
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> _ = prune_at_init(net, SynFlow, remaining=30, rounds=10, input_shape=(1, 4, 4))
        >>> int(net[1].weight_mask.sum() + net[3].weight_mask.sum())
        30
    """
    if not (isinstance(method, type) and issubclass(method, Criterion)):
        raise TypeError(f"prune_at_init(): method must be a Criterion subclass, got {method!r}.")
    if method.needs_data and batches is None:
        raise ValueError(f"prune_at_init(): {method.__name__} scores a network on data; pass batches=.")
    rounds = method.rounds if rounds is None else rounds
    scores: Scores = {}
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"prune_at_init(): rounds must be a positive int, got {rounds!r}.")
    named = prunable_layers(model, exclude, "prune_at_init()")
    totals = {name: _weight(module).numel() for name, module in named}
    targets = _targets(remaining, totals)
    for k in range(1, rounds + 1):
        pairs = prunable(model, exclude=exclude)
        scores = method.scores(model, batches, **options)
        if isinstance(targets, int):
            total = sum(totals.values())
            keep = _round_target(targets, total, k, rounds)
            alive = sum(int(_mask(module).sum()) for module, _ in pairs)
            prune.global_unstructured(
                pairs, pruning_method=method, importance_scores=scores, amount=max(0, alive - keep),
            )
        else:
            for name, module in named:
                keep = _round_target(targets[name], totals[name], k, rounds)
                alive = int(_mask(module).sum())
                method.apply(module, score_key(module)[1], amount=max(0, alive - keep), importance_scores=scores[score_key(module)])
    prunable(model, exclude=exclude)  # collapses the rounds' masks and refreshes the weights
    return scores


def scored_weights(model: nn.Module) -> list[tuple[str, nn.Module, Tensor]]:
    """``(name, module, parameter)`` of every prunable weight: the stored one where pruned."""
    return [(name, module, _weight(module)) for name, module in prunable_layers(model, (), "scores")]


def preserving_state(model: nn.Module, score: Callable[[], Scores]) -> Scores:
    """Run ``score`` and put back every parameter and buffer (BatchNorm statistics) and the mode."""
    state, training = capture_state(model), model.training
    try:
        return score()
    finally:
        restore_state(model, state)
        model.train(training)


def _targets(remaining: Remaining, totals: dict[str, int]) -> int | dict[str, int]:
    if isinstance(remaining, bool):
        raise TypeError(f"prune_at_init(): remaining must be an int or a dict of ints, got {remaining!r}.")
    if isinstance(remaining, int):
        total = sum(totals.values())
        if not 0 <= remaining <= total:
            raise ValueError(f"prune_at_init(): remaining must be in [0, {total}] (the prunable weights), got {remaining}.")
        return remaining
    if not isinstance(remaining, Mapping):
        raise TypeError(f"prune_at_init(): remaining must be an int or a dict of ints, got {type(remaining).__name__}.")
    unknown = sorted(set(remaining) - set(totals))
    if unknown or set(remaining) != set(totals):
        raise ValueError(
            f"prune_at_init(): remaining must give a count for each prunable layer {sorted(totals)}, got {sorted(remaining)}."
        )
    for name, count in remaining.items():
        if not 0 <= count <= totals[name]:
            raise ValueError(f"prune_at_init(): remaining[{name!r}] must be in [0, {totals[name]}], got {count}.")
    return dict(remaining)


def _round_target(final: int, total: int, k: int, rounds: int) -> int:
    """Weights left after round ``k`` of ``rounds`` on the exponential schedule, ``final`` at the last."""
    if k == rounds or total == 0:
        return final
    if final == 0:
        return round(total * (1e-6 ** (k / rounds)))  # zero has no exponential path; approach it
    return round(total * math.exp(math.log(final / total) * k / rounds))


def score_key(module: nn.Module) -> tuple[nn.Module, str]:
    """The key of a prunable layer's scores: ``(module, "weight")``, ``(attention, "in_proj_weight")``."""
    return module, prunable_tensor(module) or "weight"


def _weight(module: nn.Module) -> Tensor:
    """The parameter that holds ``module``'s weight matrix (torch's ``<name>_orig`` when pruned)."""
    return stored_tensor(module)


def _mask(module: nn.Module) -> Tensor:
    mask = keep_mask(module, score_key(module)[1])
    return torch.ones(_weight(module).shape, dtype=torch.bool) if mask is None else mask
