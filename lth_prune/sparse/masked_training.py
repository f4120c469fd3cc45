"""Training a pruned model at dense cost: :func:`masked_training`.

``torch.nn.utils.prune`` recomputes ``weight = weight_orig * weight_mask`` in a forward
pre-hook on every forward pass and multiplies by the mask again in backward, and holds a float
mask beside ``weight_orig`` and the recomputed ``weight``: about 3x the parameter memory, and
1.1-1.5x the dense step time. Inside :func:`masked_training` each pruned tensor is instead a
plain parameter whose pruned entries are exactly zero, with a 1-byte mask per weight: the
forward and backward passes are the dense ones, and one in-place pass per step over each
gradient (``grad = where(keep, grad, 0)``, by a C loop that reads the byte mask where a C
compiler is at hand, see :mod:`lth_prune.sparse._native`; 8x faster here than a boolean
``masked_fill_``) sets the pruned entries' gradients to exactly zero, so SGD (with momentum and
weight decay), Adam and AdamW never move them. For any other optimizer the pruned weights are
also set to zero after each step. Every one of these selects rather than multiplies by the
mask: ``NaN * 0`` is NaN, and a NaN or infinite gradient or update at a pruned entry must not
make a pruned weight anything but 0.

The context owns the masks of the tensors it converted; the layers also show them through
:func:`lth_prune._reparam.hold_dense`, so that :func:`lth_prune.get_masks` and rewinding see
them while the context is active.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.utils.prune as prune  # noqa: F401 - the example in masked_training() uses it
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from lth_prune import distributed
from lth_prune._reparam import hold_dense, pruned_names, release_dense, to_dense, to_pruned, zero_pruned_
from lth_prune.sparse import _native
from lth_prune.sparse.kernels import SparseForward

__all__ = ["MaskedTraining", "masked_training"]

# Optimizers whose update of an entry with zero gradient and zero state is exactly zero, even
# with momentum, weight decay (L2 or decoupled), AMSGrad or Nesterov.
_ZERO_PRESERVING = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
# Their update divides the first moment by the root of the second, and a pruned entry's first
# moment stays exactly 0, so its second moment can be anything positive. torch's CPU sqrt runs
# about 10x slower over all-zero vectors than over others, which made Adam on a 90 %-pruned
# LeNet-300-100 1.25x the dense step on the benchmark machine; seeded with 1, 1.05x.
_SEEDED_SECOND_MOMENT = (torch.optim.Adam, torch.optim.AdamW)


@dataclass
class _Converted:
    module: nn.Module
    name: str
    parameter: nn.Parameter
    keep: Tensor
    keep_fraction: float
    mask_dtype: torch.dtype
    grad_hook: RemovableHandle | None


class MaskedTraining:
    """The context :func:`masked_training` returns; see there."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, sparse_density: float = 0.0) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"masked_training(): model must be an nn.Module, got {type(model).__name__}.")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"masked_training(): optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}."
            )
        if isinstance(sparse_density, bool) or not isinstance(sparse_density, (int, float)) or not 0.0 <= sparse_density <= 1.0:
            raise ValueError(f"masked_training(): sparse_density must be a float in [0, 1], got {sparse_density!r}.")
        _check_optimizer_trains(model, optimizer)
        self.model = model
        self.optimizer = optimizer
        self.sparse_density = float(sparse_density)
        self._converted: list[_Converted] = []
        self._step_hook: RemovableHandle | None = None
        self._pre_step_hook: RemovableHandle | None = None
        self._seed_hook: RemovableHandle | None = None
        self._unseeded: list[_Converted] = []

    def __enter__(self) -> MaskedTraining:
        if self._converted:
            raise RuntimeError("masked_training(): this context is already active; it cannot be entered twice.")
        for module in self.model.modules():
            for name in pruned_names(module):
                self._converted.append(_to_dense(module, name, self.sparse_density))
        by_parameter = {id(entry.parameter): entry.keep for entry in self._converted}
        for group in self.optimizer.param_groups:
            for parameter in group["params"]:
                keep = by_parameter.get(id(parameter))
                if keep is None:
                    continue
                # Momentum or moments left from before (e.g. dense training) must not move a
                # weight that is now pruned.
                for value in self.optimizer.state.get(parameter, {}).values():
                    if isinstance(value, Tensor) and value.shape == keep.shape and value.is_floating_point():
                        zero_pruned_(value, keep)
        if self._converted and type(self.optimizer) not in _ZERO_PRESERVING:
            self._step_hook = self.optimizer.register_step_post_hook(self._zero_pruned)
        if self._converted and distributed.world_size() > 1:
            # DDP writes the averaged gradient after the per-parameter hooks ran; mask it again.
            self._pre_step_hook = self.optimizer.register_step_pre_hook(self._mask_gradients)
        if type(self.optimizer) in _SEEDED_SECOND_MOMENT:
            optimized = {
                id(parameter) for group in self.optimizer.param_groups for parameter in group["params"]
            }
            self._unseeded = [
                entry for entry in self._converted
                if entry.keep_fraction < 1.0 and id(entry.parameter) in optimized
            ]
            self._seed_second_moments()
            if self._unseeded:  # the optimizer creates its state on its first step
                self._seed_hook = self.optimizer.register_step_post_hook(self._seed_second_moments)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for hook in (self._step_hook, self._pre_step_hook, self._seed_hook):
            if hook is not None:
                hook.remove()
        self._step_hook = self._pre_step_hook = self._seed_hook = None
        self._unseeded = []
        for entry in reversed(self._converted):
            _to_pruned(entry)
        self._converted = []

    def _seed_second_moments(self, *args: Any) -> None:
        """Set the second moments of pruned entries to 1, once per tensor (see above)."""
        if not self._unseeded:
            return
        waiting = []
        for entry in self._unseeded:
            state = self.optimizer.state.get(entry.parameter, {})
            if "exp_avg_sq" not in state:
                waiting.append(entry)
                continue
            for key in ("exp_avg_sq", "max_exp_avg_sq"):
                moment = state.get(key)
                if isinstance(moment, Tensor) and moment.shape == entry.keep.shape:
                    moment.masked_fill_(entry.keep == 0, 1.0)
        self._unseeded = waiting

    def _mask_gradients(self, *args: Any) -> None:
        for entry in self._converted:
            if entry.parameter.grad is not None:
                _native.mask_(entry.parameter.grad, entry.keep)

    def _zero_pruned(self, *args: Any) -> None:
        with torch.no_grad():
            for entry in self._converted:
                zero_pruned_(entry.parameter, entry.keep)


def masked_training(
    model: nn.Module, optimizer: torch.optim.Optimizer, sparse_density: float = 0.0
) -> MaskedTraining:
    """Train a pruned model at the cost of the dense one, its pruned weights held at exactly 0.

    On entry every tensor pruned through ``torch.nn.utils.prune`` becomes a plain parameter (the
    same ``weight_orig`` object, so ``optimizer`` keeps working) with its pruned entries set to
    zero, and its mask is kept as one byte per entry; on exit the pruning reparametrisation comes back
    with the same masks and the trained weights, and ``prune.is_pruned`` is true again. A
    ``copy.deepcopy``, ``pickle`` or ``torch.save`` of the model inside the context gives it
    in that pruned form too (the copy is not trained by this context). Prune
    and load state dicts outside the context; rewinding inside it keeps the masks. With Adam
    or AdamW, the second moments of pruned entries are set to 1 (their first moments stay 0,
    so their updates stay exactly 0), which spares torch's slow CPU square root of zeros.

    Args:
        model: a model pruned with ``torch.nn.utils.prune`` (dense layers are left alone).
        optimizer: the optimizer that trains it.
        sparse_density: linear layers of at least 2**20 weights whose fraction of kept
            weights is at most this train through sparse kernels
            (:func:`lth_prune.sparse.kernels.sparse_linear`: a CSR forward product and a
            sampled product for the weight gradient) instead of dense ones; smaller layers
            lose more to the kernels' fixed costs than they save. 0 (the default) keeps every
            layer dense.

    Returns:
        A context manager.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``sparse_density`` is outside [0, 1], or ``optimizer`` holds none of
            ``model``'s parameters (the model would never train; an optimizer that holds some
            of them, e.g. with frozen layers, is accepted).
        RuntimeError: if a tensor was pruned again inside the context.

    Example:
        >>> model = torch.nn.Linear(8, 2)
        >>> _ = prune.random_unstructured(model, "weight", amount=0.5)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        >>> with masked_training(model, optimizer):
        ...     for _ in range(3):
        ...         optimizer.zero_grad()
        ...         model(torch.randn(4, 8)).sum().backward()
        ...         optimizer.step()
        >>> bool((model.weight[model.weight_mask == 0] == 0).all()), prune.is_pruned(model)
        (True, True)
    """
    return MaskedTraining(model, optimizer, sparse_density)


def _check_optimizer_trains(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    named = list(model.named_parameters())
    held = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    held_ids = {id(parameter) for parameter in held}
    if not named or any(id(parameter) in held_ids for _, parameter in named):
        return
    shown = ", ".join(repr(name) for name, _ in named[:3])
    more = f" and {len(named) - 3} more" if len(named) > 3 else ""
    raise ValueError(
        f"masked_training(): optimizer must hold parameters of model, got an optimizer over "
        f"{len(held)} other tensors that misses all {len(named)} of the model's ({shown}{more}); "
        "build it from this model's parameters (e.g. torch.optim.SGD(model.parameters(), ...))."
    )


def _to_dense(module: nn.Module, name: str, sparse_density: float) -> _Converted:
    parameter, keep, mask_dtype = to_dense(module, name)
    keep_fraction = float(keep.sum()) / keep.numel()
    context_attributes: tuple[str, ...] = ()
    if keep_fraction == 1.0:
        handle = None  # nothing pruned (yet): nothing to mask, no pass over the gradient
    elif (
        isinstance(module, nn.Linear) and name == "weight" and 0.0 < sparse_density
        and keep_fraction <= sparse_density and parameter.numel() >= _SPARSE_MIN_WEIGHTS
    ):
        # The sparse kernels give pruned entries no gradient at all: no mask pass needed.
        module.forward = SparseForward(module, keep.bool())
        context_attributes = ("forward",)
        handle = None
    else:
        handle = parameter.register_post_accumulate_grad_hook(_GradMask(parameter, keep))
    hold_dense(module, name, keep, mask_dtype, context_attributes)
    return _Converted(module, name, parameter, keep, keep_fraction, mask_dtype, handle)


def _to_pruned(entry: _Converted) -> None:
    module, name = entry.module, entry.name
    if entry.grad_hook is not None:
        entry.grad_hook.remove()
    if isinstance(module.__dict__.get("forward"), SparseForward):
        del module.__dict__["forward"]
    release_dense(module, name)
    if name + "_orig" in module._parameters or module._parameters.get(name) is not entry.parameter:
        raise RuntimeError(
            f"masked_training(): {type(module).__name__}.{name} was pruned or replaced inside the "
            "context; prune outside masked_training()."
        )
    to_pruned(module, name, entry.keep, entry.mask_dtype)


# Smallest linear weight that the sparse kernels train. Below it their fixed costs (building
# the CSR operands, a dense gradient written back) outweigh the product they save: on the
# 2-core benchmark machine LeNet-300-100's 784 x 300 layer trained 1.1-1.45x slower through
# them than dense at 10-2 % density, while Network's fc layers took 0.57-0.86x.
_SPARSE_MIN_WEIGHTS = 1 << 20


class _GradMask:
    """Zero the accumulated gradient of pruned entries, in place, once per backward pass."""

    def __init__(self, parameter: Tensor, keep: Tensor) -> None:
        self.keep = keep
        self.mask_ = _native.masker(parameter, keep)

    def __call__(self, parameter: Tensor) -> None:
        if parameter.grad is not None:
            self.mask_(parameter.grad)
