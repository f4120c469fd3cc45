"""What the criteria share: the score dict, the weights they score, the batches they read, the
mode they score in, and pruning to a count in rounds.

A criterion is a :class:`~lth_prune.ScorePruning` subclass whose ``scores`` class method scores
a network (``{(module, "weight"): tensor}``, the ``importance_scores`` that
``prune.global_unstructured`` takes; the lowest score is pruned first), registered here by name.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Callable, ClassVar, Iterable, Mapping, Union

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn

from lth_prune._reparam import keep_mask
from lth_prune.layers import ModuleOrName, prunable_layers, prunable_tensor, stored_tensor
from lth_prune.criteria.inputs import Batches, iter_batches
from lth_prune.methods import ScorePruning, prunable
from lth_prune.registry import Registry
from lth_prune.rewind import capture_state, restore_state

__all__ = ["CRITERIA", "Criterion", "Scores", "prune_at_init", "score_key"]

Scores = dict[tuple[nn.Module, str], Tensor]
Remaining = Union[int, Mapping[str, int]]


class Criterion(ScorePruning):
    """A pruning-at-initialization criterion: a :class:`~lth_prune.ScorePruning` that knows its scores.

    Scores that are all zero cannot rank anything: pruning by them chooses by the tie rule (by
    position unless ``tie_break`` is given), not by the criterion, and :meth:`compute_mask`
    warns when it has to. SynFlow's scores are all zero when no path from the input to the
    output carries flow; those of the criteria that multiply by the weights when the weights
    are zero.

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

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """:meth:`ScorePruning.compute_mask <lth_prune.ScorePruning.compute_mask>`, warning where the scores rank nothing.

        A ``UserWarning`` when every score of the unpruned entries is zero and some, not all,
        of them are pruned: they are then chosen by the tie rule alone.

        Raises:
            ValueError: if ``amount`` is an int larger than the number of unpruned entries.
        """
        mask = super().compute_mask(t, default_mask)
        alive = default_mask != 0
        unpruned = int(alive.sum())
        if 0 < int((mask != 0).sum()) < unpruned and not bool(self.rank(t.detach()[alive]).count_nonzero()):
            order = "position (lowest index first)" if self.tie_break is None else f"the order tie_break={self.tie_break} draws"
            # No counts in the message, so that a run of rounds warns once, not every round.
            warnings.warn(
                f"{type(self).__name__}.compute_mask(): every score of the unpruned entries is zero, so the "
                f"entries pruned are chosen by {order}, not by the criterion. SynFlow's scores are zero when no "
                "path from the input to the output carries flow (a layer fully pruned, or whose weights are "
                "all zero); those of SNIP, GraSP and magnitude when the weights are zero.",
                UserWarning,
                stacklevel=2,
            )
        return mask

    @classmethod
    def apply(  # type: ignore[override]
        cls,
        module: nn.Module,
        name: str,
        amount: int | float,
        importance_scores: Tensor | None = None,
        tie_break: int | None = None,
    ) -> prune.BasePruningMethod:
        """Prune ``module.<name>`` by ``importance_scores`` (from the criterion's score function).

        Args:
            module: the module that holds the tensor.
            name: the parameter's name in ``module``, e.g. ``"weight"``.
            amount: fraction in [0, 1] of the still-unpruned entries, or their number (int).
            importance_scores: the criterion's scores of the tensor, of its shape.
            tie_break: ``None`` for ties by position, or a seed for a random order among them
                (see :class:`~lth_prune.ScorePruning`).

        Returns:
            The pruning hook now attached to ``module`` for ``name``.

        Raises:
            ValueError: if ``importance_scores`` is ``None``: without them the weights would be
                ranked, which is another criterion; and as :meth:`ScorePruning.apply
                <lth_prune.ScorePruning.apply>` raises.
        """
        if importance_scores is None:
            raise ValueError(
                f"{cls.__name__}.apply(): importance_scores must be given (from {cls.__name__}.scores(model, ...)), got None."
            )
        return super().apply(module, name, amount, importance_scores=importance_scores, tie_break=tie_break)


#: The criteria by name (``"snip"``): ``@CRITERIA.register(title=..., help=...)`` on a
#: :class:`Criterion` subclass registers it under its ``name``, which makes it an
#: ``ExperimentConfig.method`` too (pruning at initialization).
CRITERIA: Registry[type[Criterion]] = Registry(
    "criterion", accepts=(lambda value: isinstance(value, type) and issubclass(value, Criterion), "a Criterion subclass")
)


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
        method: a criterion class (one of :data:`CRITERIA`, or any :class:`Criterion` subclass).
        remaining: the number of weights to keep (an int, not a fraction: for a fraction ``f``
            pass ``round(f * total)``): a total over the prunable layers (global pruning: one
            ranking over all of them), or a count per layer name (layer-wise).
        batches: for criteria that need data, a list of ``(inputs, targets)`` batches or one
            ``(inputs, targets)`` batch; read once, and kept for every round.
        rounds: rounds to prune in; default: the criterion's.
        exclude: layers never pruned, as names or modules.
        **options: passed to the score function (e.g. GraSP's ``temperature``, SNIP's and
            GraSP's ``mode``, SynFlow's ``input_shape``).

    Returns:
        The scores of the last round (what the final mask was chosen by).

    Raises:
        TypeError: if ``method`` is not a :class:`Criterion` subclass, ``remaining`` is not an
            int or a dict of ints (a float fraction included), or ``batches`` is neither a
            list of ``(inputs, targets)`` batches nor one.
        ValueError: if ``remaining`` is negative or more than there are weights, names a layer
            that is not prunable, the criterion needs data and ``batches`` is ``None`` or
            empty, or, before anything is pruned, every score of the weights a ranking must
            choose from is zero (the mask would be chosen by position; nothing is pruned). A
            later round's scores that are all zero, as when the rounds themselves cut every
            path through the network, only warn (a ``UserWarning``): the work done is kept.

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
    if batches is not None:
        # Every round reads them again: a generator would be spent after the first.
        batches = list(iter_batches(batches, "prune_at_init()"))
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
        if k == 1:
            # Before anything is pruned: pruning never brings back a score that is zero now.
            _require_ranking(method, named, scores, targets)
        if isinstance(targets, int):
            keep = _round_target(targets, sum(totals.values()), k, rounds)
            alive = sum(int(_mask(module).sum()) for _, module in named)
            prune.global_unstructured(pairs, pruning_method=method, importance_scores=scores, amount=max(0, alive - keep))
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


def preserving_state(model: nn.Module, score: Callable[[], Scores], *, train: bool) -> Scores:
    """Run ``score`` in train mode or not, then put back every parameter and buffer (BatchNorm
    statistics, which a forward pass in train mode updates) and the mode the model was in."""
    state, training = capture_state(model), model.training
    try:
        model.train(train)
        return score()
    finally:
        restore_state(model, state)
        model.train(training)


def _targets(remaining: Remaining, totals: dict[str, int]) -> int | dict[str, int]:
    total = sum(totals.values())
    if not isinstance(remaining, Mapping):
        if not _is_count(remaining):
            raise TypeError(
                "prune_at_init(): remaining must be a count of weights to keep (an int, or a dict of ints by layer), "
                f"got {remaining!r} (a {type(remaining).__name__})"
                + _fraction_hint(remaining, f"the {total} prunable weights", "remaining=", total)
            )
        if not 0 <= remaining <= total:
            raise ValueError(f"prune_at_init(): remaining must be in [0, {total}] (the prunable weights), got {remaining}.")
        return int(remaining)
    if set(remaining) != set(totals):
        raise ValueError(
            f"prune_at_init(): remaining must give a count for each prunable layer {sorted(totals)}, got {sorted(remaining)}."
        )
    for name, count in remaining.items():
        if not _is_count(count):
            raise TypeError(
                f"prune_at_init(): remaining[{name!r}] must be a count of weights to keep (an int), got {count!r} "
                f"(a {type(count).__name__})" + _fraction_hint(count, f"its {totals[name]} weights", "", totals[name])
            )
        if not 0 <= count <= totals[name]:
            raise ValueError(f"prune_at_init(): remaining[{name!r}] must be in [0, {totals[name]}], got {count}.")
    return {name: int(count) for name, count in remaining.items()}


def _is_count(value: object) -> bool:
    """An int of any kind (numpy's included, as ``amount`` takes them), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _fraction_hint(value: object, of_what: str, argument: str, total: int) -> str:
    """The end of a refusal of ``remaining``: how to turn a fraction into the count it needs."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"; to keep a fraction of {of_what}, pass {argument}round(fraction * {total})."
    return "."


def _require_ranking(
    method: type[Criterion], named: list[tuple[str, nn.Module]], scores: Scores, targets: int | dict[str, int]
) -> None:
    """Refuse to prune to ``targets`` where every score a ranking (of all layers, or of each
    alone) must choose by is zero: the tie rule would choose, not the criterion."""
    rankings = [(named, targets)] if isinstance(targets, int) else [([layer], targets[layer[0]]) for layer in named]
    for layers, keep in rankings:
        kept = [(name, module, _mask(module).reshape(-1) != 0) for name, module in layers]
        unpruned = sum(int(mask.sum()) for _, _, mask in kept)
        if not 0 < unpruned - keep < unpruned:
            continue  # nothing to choose: none pruned, or all of them
        if any(bool(scores[score_key(module)].reshape(-1)[mask].count_nonzero()) for _, module, mask in kept):
            continue
        ranked = [name for name, _, mask in kept if bool(mask.any())]
        cut = [name for name, module, mask in kept if not bool(_weight(module).detach().reshape(-1)[mask].count_nonzero())]
        cause = (
            f"the layers with no unpruned nonzero weight are {cut}: nothing reaches the output through them" if cut
            else "every layer has a nonzero unpruned weight, so the scores vanish elsewhere (a zero BatchNorm weight, a dead activation)"
        )
        raise ValueError(
            f"prune_at_init(): {method.__name__}'s scores must tell the unpruned weights apart, got every one of the "
            f"{unpruned} zero (layers {ranked}) before any pruning; {cause}, so the mask would be chosen by position. "
            "Nothing was pruned."
        )


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
