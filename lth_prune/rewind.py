"""Rewind points and rewinding: reset the surviving weights to their values at step 0 or k.

:func:`register_rewind_hooks` captures a rewind point (every parameter and buffer of the model)
at registration or after the optimizer's k-th step (late rewinding, Frankle et al. 2020), and
puts a small forward pre-hook on each convolution and linear layer that keeps pruning's
reparametrisation lean (:func:`lth_prune.collapse_masks`) and copyable (``copy.deepcopy``).
:meth:`Rewinder.rewind` writes the rewind point back in place: into ``weight_orig`` for pruned
layers, so the optimizer's parameters stay the same objects and every mask is kept.
"""
from __future__ import annotations

import numbers
import weakref
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from lth_prune._reparam import LayerHook, collapse, named_tensors, pruned_names, refresh, rezero
from lth_prune.layers import is_prunable

__all__ = [
    "Rewinder",
    "register_rewind_hooks",
    "registered_rewinder",
    "rewind",
    "capture_state",
    "restore_state",
]

_REWINDERS: weakref.WeakKeyDictionary[nn.Module, Rewinder] = weakref.WeakKeyDictionary()


class Rewinder:
    """The handle :func:`register_rewind_hooks` returns: holds the rewind point, rewinds.

    Attributes:
        rewind_step: the optimizer step the rewind point is taken at (0: at registration).
        steps_seen: optimizer steps counted so far (counting stops once the point is taken).
    """

    def __init__(
        self, model: nn.Module, at_step: int = 0, optimizer: torch.optim.Optimizer | None = None
    ) -> None:
        _validate_rewind_args(model, at_step, optimizer)
        self.rewind_step = int(at_step)
        self.steps_seen = 0
        self._model_ref = weakref.ref(model)
        self._rewind_point: dict[str, Tensor] | None = None
        self._layer_hooks = [
            module.register_forward_pre_hook(LayerHook(module))
            for module in model.modules()
            if is_prunable(module)
        ]
        self._step_hook = None
        if optimizer is not None and self.rewind_step > 0:
            self._step_hook = optimizer.register_step_post_hook(self._on_step)
        else:
            self._rewind_point = capture_state(model)

    @property
    def has_rewind_point(self) -> bool:
        """Whether the rewind point has been captured yet."""
        return self._rewind_point is not None

    @property
    def rewind_point(self) -> dict[str, Tensor]:
        """The captured values, by the parameter or buffer's dense name (``"fc.weight"``).

        Raises:
            RuntimeError: if the rewind point has not been captured yet.
        """
        if self._rewind_point is None:
            raise RuntimeError(self._not_ready_message("Rewinder.rewind_point"))
        return self._rewind_point

    def rewind(self) -> None:
        """Write the rewind point back into the model, in place, keeping every mask.

        Pruned tensors get their values in ``<name>_orig`` and ``<name>`` is recomputed at once
        (``weight == weight_orig * weight_mask``); everything else is copied into the existing
        parameter or buffer, so optimizers keep valid references.

        Raises:
            RuntimeError: if the rewind point does not exist yet (``at_step=k`` and fewer than
                k optimizer steps so far), the model is gone, or the model's tensors no longer
                match the rewind point.
        """
        if self._rewind_point is None:
            raise RuntimeError(self._not_ready_message("Rewinder.rewind()"))
        restore_state(self._model(), self._rewind_point, caller="Rewinder.rewind()")

    def set_rewind_point(self, state: Mapping[str, Tensor]) -> None:
        """Use ``state`` (dense names, as :func:`capture_state` returns) as the rewind point.

        Raises:
            RuntimeError: if ``state`` does not match the model's parameters and buffers.
        """
        _check_matches(self._model(), state, "Rewinder.set_rewind_point()")
        self._rewind_point = {key: value.detach().clone() for key, value in state.items()}
        self._remove_step_hook()

    def remove(self) -> None:
        """Remove the layer hooks and the optimizer hook; the rewind point is dropped too."""
        for handle in self._layer_hooks:
            handle.remove()
        self._layer_hooks = []
        self._remove_step_hook()
        self._rewind_point = None
        model = self._model_ref()
        if model is not None and _REWINDERS.get(model) is self:
            del _REWINDERS[model]

    def _on_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.steps_seen += 1
        if self.steps_seen == self.rewind_step:
            self._rewind_point = capture_state(self._model())
            self._remove_step_hook()

    def _remove_step_hook(self) -> None:
        if self._step_hook is not None:
            self._step_hook.remove()
            self._step_hook = None

    def _model(self) -> nn.Module:
        model = self._model_ref()
        if model is None:
            raise RuntimeError("Rewinder: the model it was registered on no longer exists.")
        return model

    def _not_ready_message(self, caller: str) -> str:
        return (
            f"{caller}: no rewind point yet: it is taken after optimizer step "
            f"{self.rewind_step} and {self.steps_seen} steps have been taken so far."
        )


# Models pickled whole with rewind hooks before the hook moved to _reparam name it here.
_LayerHook = LayerHook


def register_rewind_hooks(
    model: nn.Module, at_step: int = 0, optimizer: torch.optim.Optimizer | None = None
) -> Rewinder:
    """Register rewind hooks on ``model``'s conv and linear layers and set its rewind point.

    Registering again on the same model replaces the earlier hooks and rewind point.

    Args:
        model: any module.
        at_step: 0 takes the rewind point now; ``k > 0`` takes it right after the optimizer's
            k-th step (late rewinding).
        optimizer: the optimizer whose steps are counted; required when ``at_step > 0``.

    Returns:
        A :class:`Rewinder` with ``rewind()`` and ``remove()``.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``at_step`` is negative, or positive with no ``optimizer``, or the
            optimizer does not optimize any parameter of ``model``.

    Example:
        >>> net = torch.nn.Linear(3, 3)
        >>> rewinder = register_rewind_hooks(net)
        >>> before = net.weight.detach().clone()
        >>> with torch.no_grad():
        ...     _ = net.weight.add_(1.0)
        >>> rewinder.rewind()
        >>> torch.equal(net.weight, before)
        True
    """
    previous = registered_rewinder(model)
    rewinder = Rewinder(model, at_step=at_step, optimizer=optimizer)
    if previous is not None:
        previous.remove()
    _REWINDERS[model] = rewinder
    return rewinder


def rewind(model: nn.Module) -> None:
    """Rewind ``model`` to the rewind point of its registered rewind hooks.

    Raises:
        RuntimeError: if ``model`` has no rewind hooks, or their rewind point is not taken yet.

    Example:
        >>> net = torch.nn.Linear(3, 3)
        >>> _ = register_rewind_hooks(net)
        >>> rewind(net)
    """
    rewinder = registered_rewinder(model)
    if rewinder is None:
        raise RuntimeError(
            "rewind(): model has no rewind hooks; call lth_prune.register_rewind_hooks(model) "
            "before training to set a rewind point."
        )
    rewinder.rewind()


def registered_rewinder(model: nn.Module) -> Rewinder | None:
    """The :class:`Rewinder` that :func:`register_rewind_hooks` last registered on ``model``.

    Args:
        model: the model; anything that is not an ``nn.Module`` has no rewind hooks.

    Returns:
        The rewinder, or ``None`` if ``model`` has no rewind hooks (never registered, or
        removed with :meth:`Rewinder.remove`).

    Example:
        >>> net = torch.nn.Linear(3, 3)
        >>> registered_rewinder(net) is None
        True
        >>> rewinder = register_rewind_hooks(net)
        >>> registered_rewinder(net) is rewinder
        True
    """
    return _REWINDERS.get(model) if isinstance(model, nn.Module) else None


def capture_state(model: nn.Module) -> dict[str, Tensor]:
    """A detached copy of every parameter and buffer of ``model``, by dense name.

    Pruned tensors are read from ``<name>_orig`` and stored under ``<name>``; masks are not
    part of it.
    """
    state: dict[str, Tensor] = {}
    for key, value, _ in named_tensors(model):
        state[key] = value.detach().clone()
    return state


def restore_state(model: nn.Module, state: Mapping[str, Tensor], caller: str = "restore_state()") -> None:
    """Copy ``state`` (from :func:`capture_state`) into ``model`` in place, keeping masks."""
    _check_matches(model, state, caller)
    with torch.no_grad():
        for key, target, _ in named_tensors(model):
            target.copy_(state[key])
    for module in model.modules():
        for name in pruned_names(module):
            refresh(module, name)
        collapse(module)
        rezero(module)


def _check_matches(model: nn.Module, state: Mapping[str, Tensor], caller: str) -> None:
    tensors = {key: value for key, value, _ in named_tensors(model)}
    missing = sorted(set(tensors) - set(state))
    unexpected = sorted(set(state) - set(tensors))
    if missing or unexpected:
        raise RuntimeError(
            f"{caller}: the rewind point does not match the model: missing {missing}, "
            f"unexpected {unexpected}."
        )
    for key, value in tensors.items():
        if value.shape != state[key].shape:
            raise RuntimeError(
                f"{caller}: {key} has shape {tuple(value.shape)} in the model but "
                f"{tuple(state[key].shape)} in the rewind point."
            )


def _validate_rewind_args(model: object, at_step: object, optimizer: object) -> None:
    caller = "register_rewind_hooks()"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{caller}: model must be an nn.Module, got {type(model).__name__}.")
    if isinstance(at_step, bool) or not isinstance(at_step, numbers.Integral):
        raise TypeError(f"{caller}: at_step must be an int, got {at_step!r}.")
    if at_step < 0:
        raise ValueError(f"{caller}: at_step must be >= 0, got {at_step}.")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"{caller}: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}."
        )
    if at_step > 0 and optimizer is None:
        raise ValueError(
            f"{caller}: optimizer must be given when at_step > 0 (got at_step={at_step}): "
            "steps are counted on the optimizer."
        )
    if optimizer is not None:
        model_params = {id(p) for p in model.parameters()}
        optimized = [p for group in optimizer.param_groups for p in group["params"]]
        if not any(id(p) in model_params for p in optimized):
            raise ValueError(
                f"{caller}: optimizer must optimize parameters of model, got an optimizer over "
                f"{len(optimized)} other tensors."
            )
