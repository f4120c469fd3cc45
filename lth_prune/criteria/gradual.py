"""Gradual magnitude pruning (Zhu & Gupta, 2017): prune by magnitude during training, on a cubic schedule.

The sparsity at step ``t`` rises from ``initial`` at ``start_step`` to ``final`` at ``end_step``
as ``final + (initial - final) * (1 - (t - start_step) / (end_step - start_step)) ** 3``, in jumps
every ``every`` steps: fast at first, when there are many redundant weights, slowly at the end.
At each jump the network is pruned with :class:`lth_prune.LotteryTicket` (smallest ``|w|``, exact
counts, never regrowing) to that sparsity, over all layers (global) or layer by layer.
"""
from __future__ import annotations

import numbers
from typing import Any, Iterable, Mapping, Union

import torch
import torch.nn.utils.prune as prune
from torch import nn
from torch.utils.hooks import RemovableHandle

from lth_prune._reparam import keep_mask
from lth_prune.layers import ModuleOrName, prunable_layers, prunable_tensor, stored_tensor
from lth_prune.methods import LotteryTicket, prunable

__all__ = ["GradualMagnitudePruning"]

Sparsity = Union[float, Mapping[str, float]]


class GradualMagnitudePruning:
    """Zhu & Gupta's schedule in your own loop: after optimizer step ``t`` (counted from 1), call
    ``step(t)``; or pass ``optimizer=`` and the steps are counted for you (a step post-hook).
    Train with ``torch.nn.utils.prune``'s hooks, not inside :func:`lth_prune.masked_training`,
    which does not let the masks change.

    Args:
        model: the network to prune (dense or already pruned).
        final_sparsity: the fraction in [0, 1) of the prunable weights pruned at ``end_step``:
            one float for all layers together (global ranking), or a float per layer name.
        end_step: the step of the last jump (> ``start_step``).
        start_step: the step of the first jump.
        every: steps between jumps.
        initial_sparsity: the sparsity of the first jump.
        exclude: layers never pruned, as names or modules.
        optimizer: count its steps and prune after each step where a jump is due.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a sparsity is outside [0, 1), the steps are out of order, ``every`` is not
            positive, or a layer name is not prunable.

    Example:
        >>> import lth_prune
        >>> net = torch.nn.Sequential(torch.nn.Linear(10, 10), torch.nn.ReLU(), torch.nn.Linear(10, 2))
        >>> gmp = GradualMagnitudePruning(net, 0.9, start_step=0, end_step=100, every=10)
        >>> [round(gmp.sparsity_at(step), 3) for step in (0, 10, 50, 100)]
        [0.0, 0.244, 0.787, 0.9]
        >>> for step in range(1, 101):
        ...     _ = gmp.step(step)
        >>> round(lth_prune.sparsity(net), 3)
        0.9
    """

    def __init__(
        self,
        model: nn.Module,
        final_sparsity: Sparsity,
        *,
        end_step: int,
        start_step: int = 0,
        every: int = 100,
        initial_sparsity: float = 0.0,
        exclude: Iterable[ModuleOrName] = (),
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        caller = "GradualMagnitudePruning()"
        if not isinstance(model, nn.Module):
            raise TypeError(f"{caller}: model must be an nn.Module, got {type(model).__name__}.")
        for name, value in (("start_step", start_step), ("end_step", end_step), ("every", every)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(f"{caller}: {name} must be an int, got {value!r}.")
        if not 0 <= start_step < end_step:
            raise ValueError(f"{caller}: start_step and end_step must satisfy 0 <= start_step < end_step, got {start_step} and {end_step}.")
        if every < 1:
            raise ValueError(f"{caller}: every must be >= 1, got {every}.")
        self.exclude = tuple(exclude)
        self.layers = prunable_layers(model, self.exclude, caller)
        names = [name for name, _ in self.layers]
        if isinstance(final_sparsity, Mapping):
            if set(final_sparsity) != set(names):
                raise ValueError(f"{caller}: final_sparsity must give a sparsity for each prunable layer {names}, got {sorted(final_sparsity)}.")
            for name, value in final_sparsity.items():
                _check_fraction(value, f"final_sparsity[{name!r}]", caller)
        else:
            _check_fraction(final_sparsity, "final_sparsity", caller)
        _check_fraction(initial_sparsity, "initial_sparsity", caller)
        self.model = model
        self.final_sparsity = final_sparsity
        self.initial_sparsity = float(initial_sparsity)
        self.start_step, self.end_step, self.every = int(start_step), int(end_step), int(every)
        self.steps_seen = 0
        self._hook: RemovableHandle | None = None
        if optimizer is not None:
            if not isinstance(optimizer, torch.optim.Optimizer):
                raise TypeError(f"{caller}: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}.")
            self._hook = optimizer.register_step_post_hook(self._on_step)

    def sparsity_at(self, step: int, final: float | None = None) -> float:
        """The scheduled sparsity after ``step`` (``final``: that of one layer, default the global one)."""
        final = float(self.final_sparsity) if final is None else final  # type: ignore[arg-type]
        if step < self.start_step:
            return 0.0
        reached = (min(step, self.end_step) - self.start_step) // self.every * self.every
        progress = min(1.0, reached / (self.end_step - self.start_step))
        if step >= self.end_step:
            progress = 1.0
        return final + (self.initial_sparsity - final) * (1.0 - progress) ** 3

    def step(self, step: int) -> bool:
        """Prune to the schedule's sparsity if ``step`` (optimizer steps taken) is a jump; return whether it pruned."""
        due = step == self.end_step or (self.start_step <= step < self.end_step and (step - self.start_step) % self.every == 0)
        if not due:
            return False
        if isinstance(self.final_sparsity, Mapping):
            names = dict(self.layers)
            for name, final in self.final_sparsity.items():
                module = names[name]
                total = _stored(module).numel()
                _prune_to(module, total - round(total * self.sparsity_at(step, final)))
        else:
            total = sum(_stored(module).numel() for _, module in self.layers)
            keep = total - round(total * self.sparsity_at(step))
            pairs = prunable(self.model, exclude=self.exclude)
            alive = sum(_alive(module) for module, _ in pairs)
            if alive > keep:
                prune.global_unstructured(pairs, pruning_method=LotteryTicket, amount=alive - keep)
        prunable(self.model, exclude=self.exclude)  # one mask per layer, weights refreshed
        return True

    def remove(self) -> None:
        """Stop counting the optimizer's steps."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _on_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.steps_seen += 1
        self.step(self.steps_seen)


def _prune_to(module: nn.Module, keep: int) -> None:
    alive = _alive(module)
    if alive > keep:
        LotteryTicket.apply(module, prunable_tensor(module) or "weight", amount=alive - keep)


def _alive(module: nn.Module) -> int:
    mask = keep_mask(module, prunable_tensor(module) or "weight")
    return _stored(module).numel() if mask is None else int(mask.sum())


def _stored(module: nn.Module) -> torch.Tensor:
    return stored_tensor(module)


def _check_fraction(value: object, what: str, caller: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{caller}: {what} must be a float in [0, 1), got {value!r}.")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{caller}: {what} must be in [0, 1), got {value}.")
