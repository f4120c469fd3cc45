"""Pruning methods: :class:`ScorePruning`, :class:`LotteryTicket`, and layer-wise pruning at the paper's rates.

:class:`LotteryTicket` is a :class:`torch.nn.utils.prune.BasePruningMethod`, so it is used the
standard way::

    prune.global_unstructured(lth_prune.prunable(model),
                              pruning_method=lth_prune.LotteryTicket, amount=0.2)

or per layer through :meth:`LotteryTicket.apply` and :func:`lottery_ticket_unstructured`.
"""
from __future__ import annotations

import fnmatch
import numbers
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence, Union

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

from lth_prune._reparam import collapse, ensure_layer_hook, refresh
from lth_prune.layers import (
    PRUNABLE_KINDS,
    ModuleOrName,
    is_prunable,
    output_layer,
    prunable_layers,
    prunable_tensor,
)

__all__ = [
    "LotteryTicket",
    "ScorePruning",
    "PruningRates",
    "lottery_ticket_unstructured",
    "prunable",
    "prune_layerwise",
]

Amount = Union[int, float]


class ScorePruning(prune.BasePruningMethod):
    """Prune the still-unpruned entries of lowest score: the base of every criterion here.

    Only entries that are still unpruned (``default_mask == 1``) are ranked, so round after
    round a float ``amount`` is a fraction of what remains, exactly ``round(amount *
    remaining)`` more entries are pruned, and a pruned entry never comes back. A NaN score
    ranks last.

    Ties are broken by position by default: the entry with the lower flat index (in
    ``prune.global_unstructured``, of the layers concatenated in order) is pruned first. Where
    many scores are equal (a constant initialization, scores that are all zero) that prunes
    whole rows of a weight matrix, that is whole units (see :class:`LotteryTicket`).
    ``tie_break=seed`` prunes the tied entries in a random order drawn from that seed instead,
    the same for a seed on every device; entries whose scores differ are ranked exactly as
    without it.

    What is ranked is :meth:`rank` of the tensor ``compute_mask`` is given: the
    ``importance_scores`` of ``prune.global_unstructured`` or :meth:`apply`, else the weights.
    A subclass sets how scores are made (:class:`LotteryTicket`: their magnitude; the
    criteria of :mod:`lth_prune.criteria`: a score function of the network).

    Args:
        amount: a float in [0, 1], the fraction of the still-unpruned entries to prune, or a
            non-negative int, the number of still-unpruned entries to prune.
        tie_break: ``None`` to prune tied entries by position (lowest flat index first), or a
            seed in [0, 2**64) for a random order among tied entries. It reaches the method
            through ``prune.global_unstructured(..., tie_break=seed)`` and :meth:`apply`.

    Raises:
        TypeError: if ``amount`` is not an int or a float, or ``tie_break`` neither ``None`` nor an int.
        ValueError: if ``amount`` is a float outside [0, 1] or a negative int, or ``tie_break``
            is outside [0, 2**64).

    Example:
        >>> layer = torch.nn.Linear(4, 1)
        >>> scores = torch.tensor([[4.0, -1.0, 3.0, 2.0]])
        >>> _ = ScorePruning.apply(layer, "weight", amount=2, importance_scores=scores)
        >>> layer.weight_mask.tolist()
        [[1.0, 0.0, 1.0, 0.0]]
        >>> tied = torch.nn.Linear(4, 1)
        >>> _ = ScorePruning.apply(tied, "weight", amount=2, importance_scores=torch.ones(1, 4), tie_break=0)
        >>> int(tied.weight_mask.sum())
        2
    """

    PRUNING_TYPE = "unstructured"

    def __init__(self, amount: Amount, tie_break: int | None = None) -> None:
        caller = f"{type(self).__name__}()"
        _validate_amount(amount, caller)
        _validate_tie_break(tie_break, caller)
        self.amount = amount
        self.tie_break = None if tie_break is None else int(tie_break)

    def rank(self, scores: Tensor) -> Tensor:
        """The values ranked, lowest pruned first: ``scores`` as they are."""
        return scores

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        """Return ``default_mask`` with the lowest-ranked unpruned entries of ``t`` zeroed.

        Args:
            t: importance scores (the weights, or scores given by the caller), any shape.
            default_mask: the current mask, same shape as ``t``; entries equal to 0 are already
                pruned and are neither ranked nor counted.

        Returns:
            The new mask, same shape and dtype as ``default_mask``.

        Raises:
            ValueError: if ``amount`` is an int larger than the number of unpruned entries.
        """
        mask = default_mask.clone(memory_format=torch.contiguous_format)
        alive = (default_mask != 0).reshape(-1)
        remaining = int(alive.sum())
        to_prune = _count_to_prune(self.amount, remaining, f"{type(self).__name__}.compute_mask()")
        if to_prune == 0:
            return mask
        alive_index = alive.nonzero().squeeze(1)
        scores = self.rank(t.detach().reshape(-1)[alive_index])
        mask.view(-1)[alive_index[_smallest(scores, to_prune, self.tie_break)]] = 0
        return mask

    @classmethod
    def apply(  # type: ignore[override]
        cls,
        module: nn.Module,
        name: str,
        amount: Amount,
        importance_scores: Tensor | None = None,
        tie_break: int | None = None,
    ) -> prune.BasePruningMethod:
        """Prune ``module.<name>`` in place, on top of any earlier pruning of that tensor.

        The rounds' hooks are then collapsed into one that holds no mask (as
        :func:`lth_prune.collapse_masks` does), so the module stays lean and copyable.

        Args:
            module: the module that holds the tensor.
            name: the parameter's name in ``module``, e.g. ``"weight"``.
            amount: fraction in [0, 1] of the still-unpruned entries, or their number (int).
            importance_scores: scores ranked instead of the weights, same shape as the tensor.
            tie_break: ``None`` for ties by position, or a seed for a random order among them.

        Returns:
            The pruning hook now attached to ``module`` for ``name`` (a forward pre-hook).

        Raises:
            TypeError: if ``module`` is not an ``nn.Module``, or ``amount`` or ``tie_break``
                has the wrong type.
            ValueError: if ``name`` is not a parameter of ``module``, ``amount`` or
                ``tie_break`` is out of range, or ``importance_scores`` does not have the
                tensor's shape.
        """
        caller = f"{cls.__name__}.apply()"
        _validate_amount(amount, caller)
        _validate_tie_break(tie_break, caller)
        _validate_target(module, name, caller)
        if importance_scores is not None:
            target = module._parameters.get(name + "_orig", module._parameters.get(name))
            if not isinstance(importance_scores, Tensor) or importance_scores.shape != target.shape:
                got = tuple(importance_scores.shape) if isinstance(importance_scores, Tensor) else type(importance_scores).__name__
                raise ValueError(
                    f"{caller}: importance_scores must be a tensor of the shape of {name}, "
                    f"{tuple(target.shape)}, got {got}."
                )
        super().apply(module, name, amount=amount, importance_scores=importance_scores, tie_break=tie_break)
        # Uncollapsed, the hook leaves a non-leaf `weight` that copy.deepcopy refuses.
        collapse(module)
        return next(
            hook for hook in module._forward_pre_hooks.values()
            if isinstance(hook, prune.BasePruningMethod) and hook._tensor_name == name
        )


class LotteryTicket(ScorePruning):
    """Magnitude pruning for lottery tickets: prune the unpruned weights of smallest ``|w|``.

    A :class:`ScorePruning` that ranks magnitudes: exactly ``round(amount * remaining)`` more
    weights are pruned each round, only among those still unpruned, and a pruned weight never
    comes back.

    Ties in magnitude are broken by position by default: the entry with the lower flat index is
    pruned first. Trained weights are rarely tied, but a constant initialization is all ties:
    a LeNet-300-100 whose weights all equal 0.05 loses every input weight of 67 of its 300
    hidden units in one global 20 % round. ``tie_break=seed`` prunes tied weights in a random
    order drawn from the seed; with it, no hidden unit of that network is disconnected.

    Args:
        amount: a float in [0, 1], the fraction of the still-unpruned weights to prune, or a
            non-negative int, the number of still-unpruned weights to prune.
        tie_break: ``None`` for ties by position, or a seed in [0, 2**64) for a random order
            among tied magnitudes (the same on every device).

    Raises:
        TypeError: if ``amount`` is not an int or a float, or ``tie_break`` neither ``None`` nor an int.
        ValueError: if ``amount`` is a float outside [0, 1] or a negative int, or ``tie_break``
            is outside [0, 2**64).

    Example:
        >>> import torch.nn.utils.prune as prune
        >>> layer = torch.nn.Linear(10, 10)
        >>> prune.global_unstructured([(layer, "weight")], pruning_method=LotteryTicket, amount=0.2)
        >>> int((layer.weight_mask == 0).sum())
        20
        >>> constant = torch.nn.Linear(10, 10)
        >>> _ = torch.nn.init.constant_(constant.weight, 0.5)
        >>> prune.global_unstructured([(constant, "weight")], pruning_method=LotteryTicket, amount=0.2, tie_break=0)
        >>> int((constant.weight_mask[:2] == 0).sum()) < 20  # by position, the first two rows would go
        True
    """

    def rank(self, scores: Tensor) -> Tensor:
        """Magnitudes: the smallest ``|w|`` is pruned first."""
        return scores.abs()


@dataclass(frozen=True)
class PruningRates:
    """Per-layer pruning rates, by layer type and by name, as the paper prunes its networks.

    Frankle & Carbin (2019) prune convolutions at 10-15 %, fully connected layers at 20 % and
    the output layer at half the fully connected rate, each round.

    Args:
        conv: fraction in [0, 1] of each convolution's unpruned weights to prune.
        linear: fraction in [0, 1] of each hidden fully connected layer's unpruned weights.
        output: fraction for the output layer (the model's last ``nn.Linear``); ``None`` means
            half of ``linear``.
        by_name: rates for named layers (dotted module names or ``fnmatch`` patterns such as
            ``"features.*"``); they override the rates by type.

    Example:
        >>> PruningRates(conv=0.15).rate_for("fc", torch.nn.Linear(2, 2), is_output=True)
        0.1
    """

    conv: float = 0.1
    linear: float = 0.2
    output: float | None = None
    by_name: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for arg in ("conv", "linear", "output"):
            value = getattr(self, arg)
            if value is not None or arg != "output":
                _validate_fraction(value, f"PruningRates(): {arg}")
        for pattern, value in self.by_name.items():
            if not isinstance(pattern, str):
                raise TypeError(f"PruningRates(): by_name keys must be str, got {pattern!r}.")
            _validate_fraction(value, f"PruningRates(): by_name[{pattern!r}]")

    def rate_for(self, name: str, module: nn.Module, is_output: bool) -> float:
        """The rate for one layer: a ``by_name`` match first, then the output, conv or fc rate.

        Args:
            name: the layer's dotted name in the model.
            module: the layer.
            is_output: whether the layer is the model's output layer.

        Returns:
            The fraction in [0, 1] of the layer's unpruned weights to prune.
        """
        for pattern, rate in self.by_name.items():
            if name == pattern or fnmatch.fnmatchcase(name, pattern):
                return float(rate)
        if is_output:
            return self.linear / 2 if self.output is None else self.output
        return self.conv if isinstance(module, _ConvNd) else self.linear


def lottery_ticket_unstructured(
    module: nn.Module,
    name: str,
    amount: Amount,
    importance_scores: Tensor | None = None,
    tie_break: int | None = None,
) -> nn.Module:
    """Prune ``module.<name>`` by magnitude, among its unpruned entries (functional twin).

    Args:
        module: the module that holds the tensor.
        name: the parameter's name in ``module``, e.g. ``"weight"``.
        amount: fraction in [0, 1] of the still-unpruned entries, or their number (int).
        importance_scores: scores ranked instead of the weights, same shape as the tensor.
        tie_break: ``None`` for ties by position, or a seed for a random order among them
            (see :class:`LotteryTicket`).

    Returns:
        ``module``, pruned in place (``<name>_orig`` and ``<name>_mask`` added).

    Example:
        >>> layer = lottery_ticket_unstructured(torch.nn.Linear(10, 10), "weight", amount=30)
        >>> int(layer.weight_mask.sum())
        70
    """
    LotteryTicket.apply(module, name, amount, importance_scores=importance_scores, tie_break=tie_break)
    return module


def prunable(
    model: nn.Module, exclude: Iterable[ModuleOrName] = ()
) -> list[tuple[nn.Module, str]]:
    """The ``(module, tensor name)`` pairs of every prunable weight matrix, in module order.

    ``(layer, "weight")`` for every convolution and linear layer, and
    ``(attention, "in_proj_weight")`` for every ``nn.MultiheadAttention`` (its ``out_proj`` is a
    linear layer of its own).

    This is the ``parameters`` argument that ``prune.global_unstructured`` expects. It also
    brings the models' masked weights up to date (``weight`` from ``weight_orig`` and
    ``weight_mask``, which torch recomputes only on a forward pass) so that pruning ranks the
    latest trained values, collapses the per-round masks torch keeps (see
    :func:`lth_prune.collapse_masks`), and leaves a small hook on each layer that keeps it
    lean and copyable: the hooks ``prune.global_unstructured`` is about to attach are
    collapsed at the next forward pass, and ``copy.deepcopy`` works even before it.

    Args:
        model: any module.
        exclude: layers to leave out, as modules, dotted names or module types; a name also
            excludes everything below it (``"classifier"`` excludes ``"classifier.0"``), a type
            (``torch.nn.MultiheadAttention``) every module of that type.

    Returns:
        A list of ``(module, tensor name)`` pairs. It is empty when ``exclude`` leaves out every
        such layer; ``prune.global_unstructured`` then refuses it with torch's own error, and
        nothing is pruned.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or an exclusion is neither a name nor
            a module.
        ValueError: if an excluded name or module is not part of ``model``, or ``model`` has
            no convolution or linear layer at all (nothing to prune; to prune another tensor,
            use :meth:`LotteryTicket.apply`).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> [type(m).__name__ for m, _ in prunable(net, exclude=["2"])]
        ['Linear']
    """
    targets = prunable_layers(model, exclude, "prunable()")
    if not targets:
        _require_something_to_prune(model, "prunable()")
    pairs = []
    for _, module in targets:
        tensor = prunable_tensor(module) or "weight"  # prunable_layers returns prunable modules only
        refresh(module, tensor)
        collapse(module)
        ensure_layer_hook(module)
        pairs.append((module, tensor))
    return pairs


def prune_layerwise(
    model: nn.Module,
    rates: PruningRates | float,
    *,
    exclude: Iterable[ModuleOrName] = (),
    pruning_method: type[prune.BasePruningMethod] = LotteryTicket,
) -> dict[str, float]:
    """Prune every convolution and linear layer of ``model`` at its own rate.

    Each layer loses ``round(rate * remaining)`` of its unpruned weights, where ``rate`` comes
    from ``rates`` (see :class:`PruningRates`).

    Args:
        model: any module.
        rates: the rates; a float prunes every layer at that rate.
        exclude: layers to leave out, as modules or dotted names.
        pruning_method: a ``BasePruningMethod`` subclass whose ``apply`` takes ``amount``.

    Returns:
        The rate used for each pruned layer, by dotted name; empty, and nothing pruned, when
        ``exclude`` leaves out every layer.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``rates`` is neither a
            :class:`PruningRates` nor a float.
        ValueError: if a ``by_name`` entry of ``rates`` names no prunable layer, or ``model``
            has no convolution or linear layer at all (nothing to prune).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(),
        ...                           torch.nn.Linear(2, 10), torch.nn.Linear(10, 10))
        >>> prune_layerwise(net, PruningRates(conv=0.1, linear=0.2))
        {'0': 0.1, '2': 0.2, '3': 0.1}
    """
    if isinstance(rates, numbers.Real) and not isinstance(rates, bool):
        _validate_fraction(rates, "prune_layerwise(): rates")
        rates = PruningRates(conv=float(rates), linear=float(rates), output=float(rates))
    if not isinstance(rates, PruningRates):
        raise TypeError(
            f"prune_layerwise(): rates must be a PruningRates or a float, got {rates!r}."
        )
    targets = prunable_layers(model, exclude, "prune_layerwise()")
    if not targets:
        _require_something_to_prune(model, "prune_layerwise()")
    names = [name for name, _ in targets]
    for pattern in rates.by_name:
        if not any(name == pattern or fnmatch.fnmatchcase(name, pattern) for name in names):
            raise ValueError(
                f"prune_layerwise(): rates.by_name key {pattern!r} matches no prunable layer; "
                f"prunable layers are {names}."
            )
    output = output_layer(model)
    used: dict[str, float] = {}
    for name, module in targets:
        rate = rates.rate_for(name, module, is_output=module is output)
        tensor = prunable_tensor(module) or "weight"
        refresh(module, tensor)
        pruning_method.apply(module, tensor, amount=rate)
        collapse(module)
        used[name] = rate
    return used


def _require_something_to_prune(model: nn.Module, caller: str) -> None:
    """Refuse a model without any prunable layer; one whose layers were all excluded is fine."""
    if any(is_prunable(module) for module in model.modules()):
        return
    kinds = sorted({type(module).__name__ for module in model.modules()})
    raise ValueError(
        f"{caller}: model must have a layer to prune ({PRUNABLE_KINDS}), got a "
        f"{type(model).__name__} with nothing to prune (its modules: {kinds}); to prune "
        "another tensor, use LotteryTicket.apply(module, name, amount)."
    )


def _smallest(scores: Tensor, count: int, tie_break: int | None = None) -> Tensor:
    """Indices of the ``count`` smallest scores, in O(n).

    Ties at the cut go to the lower index, or, with a ``tie_break`` seed, in a random order
    drawn from it; every score below the cut is taken and every score above it left either way.
    """
    if count >= scores.numel():
        return torch.arange(scores.numel(), device=scores.device)
    # A NaN weight has no magnitude; ranking it last (as a sort would) keeps the count exact.
    scores = torch.nan_to_num(scores, nan=float("inf"))
    # kthvalue is a selection, not a sort; the tie rule is applied by hand below so the
    # result does not depend on the sorting algorithm or the device.
    threshold = scores.kthvalue(count).values
    below = (scores < threshold).nonzero().squeeze(1)
    ties = (scores == threshold).nonzero().squeeze(1)
    needed = count - below.numel()
    if tie_break is not None and needed < ties.numel():
        # Drawn on the CPU by a generator of its own: the same order for a seed on every
        # device, and the global random state untouched.
        order = torch.randperm(ties.numel(), generator=torch.Generator().manual_seed(tie_break))
        ties = ties[order[:needed].to(ties.device)]
    return torch.cat([below, ties[:needed]])


def _count_to_prune(amount: Amount, remaining: int, caller: str) -> int:
    if isinstance(amount, numbers.Integral):
        if amount > remaining:
            raise ValueError(
                f"{caller}: amount must be at most the number of unpruned weights ({remaining}), "
                f"got {amount}."
            )
        return int(amount)
    # Python's round, as torch.nn.utils.prune uses, so counts agree with torch's own methods.
    return round(float(amount) * remaining)


def _validate_amount(amount: object, caller: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(
            f"{caller}: amount must be a float in [0, 1] or a non-negative int, got "
            f"{amount!r} of type {type(amount).__name__}."
        )
    if isinstance(amount, numbers.Integral):
        if amount < 0:
            raise ValueError(f"{caller}: amount must be a non-negative int, got {amount}.")
    elif not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"{caller}: amount must be a float in [0, 1], got {amount}.")


def _validate_tie_break(tie_break: object, caller: str) -> None:
    if tie_break is None:
        return
    if isinstance(tie_break, bool) or not isinstance(tie_break, numbers.Integral):
        raise TypeError(
            f"{caller}: tie_break must be None (ties by position) or an int seed, got "
            f"{tie_break!r} of type {type(tie_break).__name__}."
        )
    # The range torch.Generator.manual_seed takes without wrapping around.
    if not 0 <= tie_break < 2**64:
        raise ValueError(f"{caller}: tie_break must be None (ties by position) or a seed in [0, 2**64), got {tie_break}.")


def _validate_fraction(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a float in [0, 1], got {value!r}.")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{what} must be a float in [0, 1], got {value}.")


def _validate_target(module: object, name: object, caller: str) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{caller}: module must be an nn.Module, got {type(module).__name__}.")
    if not isinstance(name, str):
        raise TypeError(f"{caller}: name must be a str, got {name!r}.")
    pruned = name + "_orig" in module._parameters
    if not pruned and not isinstance(module._parameters.get(name), Tensor):
        available: Sequence[str] = [
            key.removesuffix("_orig") for key, value in module._parameters.items() if value is not None
        ]
        raise ValueError(
            f"{caller}: name must be a parameter of {type(module).__name__} (one of "
            f"{list(available)}), got {name!r}."
        )
