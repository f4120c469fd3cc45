"""Keeping ``torch.nn.utils.prune``'s reparametrisation lean and copyable.

After every round torch stacks one ``CustomFromMask`` per round into a ``PruningContainer``,
and after global pruning each of them holds a view of that round's whole flattened mask over
every layer: after N rounds, N copies of every mask are held and pickled. The module's
``<name>_mask`` buffer is the only mask torch ever reads again, so :func:`collapse` replaces the
stack with one :class:`AppliedMask` that holds no tensor at all.

A pruned module's ``<name>`` attribute is a non-leaf tensor (``orig * mask``), which
``copy.deepcopy`` refuses. The hooks here give ``deepcopy`` a detached copy of it instead; the
copy's next forward recomputes it from its own ``<name>_orig`` and ``<name>_mask``.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn


# Layers inside lth_prune.masked_training: tensor name -> uint8 mask of the kept entries.
DENSE_MASKS: weakref.WeakKeyDictionary[nn.Module, dict[str, Tensor]] = weakref.WeakKeyDictionary()


class AppliedMask(prune.BasePruningMethod):
    """The pruning hook left after :func:`collapse`: applies ``<name>_mask``, holds no mask.

    It is a regular ``BasePruningMethod``: ``prune.is_pruned`` sees it, ``prune.remove`` makes
    the pruning permanent through it, and later pruning stacks on top of it as usual.
    """

    PRUNING_TYPE = "unstructured"

    def __init__(self, name: str, module: nn.Module | None = None) -> None:
        self._tensor_name = name
        self._module = weakref.ref(module) if module is not None else None

    def __call__(self, module: nn.Module, inputs: Any) -> None:
        self._module = weakref.ref(module)
        super().__call__(module, inputs)

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        return default_mask

    def __getstate__(self) -> dict[str, Any]:
        return {"_tensor_name": self._tensor_name, "_module": None}

    def __deepcopy__(self, memo: dict[int, Any]) -> AppliedMask:
        seed_deepcopy_memo(self._module, memo)
        return AppliedMask(self._tensor_name)


def pruned_names(module: nn.Module) -> list[str]:
    """Names of the tensors of ``module`` that ``torch.nn.utils.prune`` reparametrised."""
    return [
        key[: -len("_orig")]
        for key in module._parameters
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in module._buffers
    ]


def keep_mask(module: nn.Module, name: str) -> Tensor | None:
    """The boolean mask of kept entries of ``module.<name>``, or ``None`` if it is not pruned."""
    mask = module._buffers.get(name + "_mask")
    if mask is not None and name + "_orig" in module._parameters:
        return mask != 0
    keep = DENSE_MASKS.get(module, {}).get(name)
    return None if keep is None else keep != 0


def rezero(module: nn.Module) -> None:
    """Zero the pruned entries of a layer held dense by ``masked_training`` (after a write)."""
    with torch.no_grad():
        for name, keep in DENSE_MASKS.get(module, {}).items():
            module._parameters[name].mul_(keep)


def refresh(module: nn.Module, name: str) -> None:
    """Recompute ``module.<name> = <name>_orig * <name>_mask`` now, as a forward pass would."""
    if name + "_orig" in module._parameters and name + "_mask" in module._buffers:
        setattr(module, name, module._parameters[name + "_orig"] * module._buffers[name + "_mask"])


def collapse(module: nn.Module) -> None:
    """Replace every stacked pruning hook of ``module`` by one :class:`AppliedMask` per tensor."""
    hooks = module._forward_pre_hooks
    # Runs before every forward of a hooked layer: no copy of the dict; replacing a value while
    # iterating is allowed as the keys do not change.
    for key, hook in hooks.items():
        if isinstance(hook, prune.BasePruningMethod) and not isinstance(hook, AppliedMask):
            replacement = AppliedMask(hook._tensor_name, module)
            # Same key, same position: hook order (and so forward behaviour) is unchanged.
            hooks[key] = replacement


def seed_deepcopy_memo(
    module_ref: weakref.ReferenceType[nn.Module] | None, memo: dict[int, Any]
) -> None:
    """Tell ``deepcopy`` to copy the module's masked (non-leaf) tensors as detached values."""
    module = module_ref() if module_ref is not None else None
    if module is None:
        return
    for name in pruned_names(module):
        value = module.__dict__.get(name)
        if isinstance(value, Tensor) and not value.is_leaf and id(value) not in memo:
            with torch.no_grad():
                memo[id(value)] = value.detach().clone()
