"""Masks: how sparse a model is, reading and setting its masks, and keeping them lean."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn

from lth_prune._reparam import collapse, dense_state, keep_mask, pruned_names, pruned_state_keys, refresh, replace_mask
from lth_prune.layers import prunable_layers, prunable_tensor, stored_tensor, tensor_key

__all__ = [
    "LayerSparsity",
    "collapse_masks",
    "dense_state_dict",
    "get_masks",
    "load_pruned_state_dict",
    "set_masks",
    "sparsity",
    "sparsity_report",
]


@dataclass(frozen=True)
class LayerSparsity:
    """One row of :func:`sparsity_report`.

    Attributes:
        name: the layer's dotted name in the model.
        shape: the weight's shape.
        total: number of weights.
        remaining: number of weights not pruned by the mask.
        fraction_remaining: ``remaining / total``, in [0, 1].
    """

    name: str
    shape: tuple[int, ...]
    total: int
    remaining: int
    fraction_remaining: float


def sparsity_report(model: nn.Module) -> list[LayerSparsity]:
    """Per convolution and linear layer: name, shape, total, remaining and fraction remaining.

    Args:
        model: any module; layers that are not pruned count as fully remaining.

    Returns:
        One :class:`LayerSparsity` per layer, in module order.

    Example:
        >>> net = torch.nn.Linear(10, 10)
        >>> _ = torch.nn.utils.prune.random_unstructured(net, "weight", amount=25)
        >>> sparsity_report(net)[0].remaining
        75
    """
    rows = []
    for name, module in prunable_layers(model, (), "sparsity_report()"):
        weight = stored_tensor(module)
        mask = keep_mask(module, prunable_tensor(module) or "weight")
        total = weight.numel()
        remaining = total if mask is None else int(torch.count_nonzero(mask))
        rows.append(LayerSparsity(name, tuple(weight.shape), total, remaining, remaining / total))
    return rows


def sparsity(model: nn.Module) -> float:
    """The fraction of the model's convolution and linear weights that are pruned by a mask.

    Args:
        model: any module.

    Returns:
        A float in [0, 1]; 0.0 for a model with no mask (or no prunable layer).

    Example:
        >>> net = torch.nn.Linear(10, 10)
        >>> _ = torch.nn.utils.prune.random_unstructured(net, "weight", amount=0.2)
        >>> sparsity(net)
        0.2
    """
    rows = sparsity_report(model)
    total = sum(row.total for row in rows)
    return 0.0 if total == 0 else sum(row.total - row.remaining for row in rows) / total


def get_masks(model: nn.Module) -> dict[str, Tensor]:
    """The boolean weight mask of every pruned convolution and linear layer, by dotted name.

    Example:
        >>> net = torch.nn.Linear(4, 4)
        >>> _ = torch.nn.utils.prune.random_unstructured(net, "weight", amount=3)
        >>> get_masks(net)["weight"].dtype
        torch.bool
    """
    masks = {}
    for name, module in prunable_layers(model, (), "get_masks()"):
        mask = keep_mask(module, prunable_tensor(module) or "weight")
        if mask is not None:
            masks[tensor_key(name, module)] = mask.detach().clone()
    return masks


def set_masks(model: nn.Module, masks: Mapping[str, Tensor]) -> None:
    """Give the named weights exactly these masks, pruning dense layers through torch's API.

    Unlike pruning, this replaces a layer's mask: it is how a ticket's mask is put on another
    model (a fresh initialization, a loaded checkpoint).

    Args:
        model: any module.
        masks: masks by dotted weight name (``"fc1.weight"``), as :func:`get_masks` returns;
            any dtype, nonzero meaning kept.

    Raises:
        ValueError: if a name is not a convolution or linear weight of ``model`` or a mask's
            shape differs from the weight's.
    """
    targets = {tensor_key(name, module): module for name, module in prunable_layers(model, (), "set_masks()")}
    for key, mask in masks.items():
        if key not in targets:
            raise ValueError(
                f"set_masks(): masks has a key that is not a prunable weight of the model, got "
                f"{key!r}; prunable weights are {sorted(targets)}."
            )
        module = targets[key]
        weight = stored_tensor(module)
        if tuple(mask.shape) != tuple(weight.shape):
            raise ValueError(
                f"set_masks(): the mask for {key} must have shape {tuple(weight.shape)}, got "
                f"{tuple(mask.shape)}."
            )
    for key, mask in masks.items():
        module = targets[key]
        tensor = prunable_tensor(module) or "weight"
        if not replace_mask(module, tensor, mask):
            weight = module._parameters[tensor]
            prune.custom_from_mask(module, tensor, (mask != 0).to(weight.dtype).to(weight.device))
        refresh(module, tensor)
        collapse(module)


def collapse_masks(model: nn.Module) -> None:
    """Keep one mask per pruned tensor: drop the per-round copies torch's pruning hooks hold.

    ``torch.nn.utils.prune`` stacks a ``CustomFromMask`` per round, each holding a view of that
    round's whole (global) mask. Only the ``<name>_mask`` buffer is ever read again, so the
    stack is replaced by a single hook that holds no tensor; behaviour is unchanged. The rewind
    hooks, :func:`lth_prune.prunable` and rewinding do this for you.

    Example:
        >>> net = torch.nn.Linear(4, 4)
        >>> for _ in range(3):
        ...     _ = torch.nn.utils.prune.random_unstructured(net, "weight", amount=0.2)
        >>> collapse_masks(net)
        >>> len(net._forward_pre_hooks)
        1
    """
    for module in model.modules():
        collapse(module)


def dense_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A pruned model's state dict with every pruned tensor given plainly, for a model that is not pruned.

    Each ``<name>_orig`` / ``<name>_mask`` pair becomes ``<name>``: the kept values, and exactly
    ``+0.0`` at pruned entries (selected, not multiplied: a NaN or infinity at a pruned entry
    does not reach it); masks are left out. A fresh model of the same architecture loads it
    with ``load_state_dict``; :func:`get_masks` of the pruned model gives the masks to put back
    (:func:`set_masks`). The Lightning callback saves checkpoints so.

    Args:
        state_dict: what ``pruned_model.state_dict()`` returned (other entries are kept as they are).

    Returns:
        A new dict.

    Example:
        >>> layer = torch.nn.utils.prune.l1_unstructured(torch.nn.Linear(4, 2), "weight", amount=0.5)
        >>> dense = dense_state_dict(layer.state_dict())
        >>> sorted(dense), int((dense["weight"] == 0).sum())
        (['bias', 'weight'], 4)
    """
    return dense_state(state_dict)


def load_pruned_state_dict(
    model: nn.Module, state_dict: Mapping[str, Tensor], strict: bool = True
) -> None:
    """Load a pruned model's ``state_dict`` (``weight_orig`` / ``weight_mask``) into ``model``.

    Layers that are pruned in ``state_dict`` but dense in ``model`` are first given torch's
    pruning reparametrisation, so a fresh model takes a pruned checkpoint directly.

    Args:
        model: a model of the same architecture, pruned or not.
        state_dict: what ``pruned_model.state_dict()`` returned.
        strict: passed to :meth:`torch.nn.Module.load_state_dict`.

    Raises:
        RuntimeError: as ``load_state_dict`` does, for missing, unexpected or mis-shaped keys.
    """
    modules = dict(model.named_modules())
    for key in pruned_state_keys(state_dict):
        prefix, _, tensor_name = key.rpartition(".")
        module = modules.get(prefix)
        if module is not None and isinstance(module._parameters.get(tensor_name), Tensor):
            prune.identity(module, tensor_name)
    model.load_state_dict(state_dict, strict=strict)
    for module in model.modules():
        for name in pruned_names(module):
            refresh(module, name)
        collapse(module)
