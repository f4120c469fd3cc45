"""The one place that knows ``torch.nn.utils.prune``'s reparametrisation.

A pruned tensor ``<name>`` of a module becomes a parameter ``<name>_orig``, a buffer
``<name>_mask`` and a forward pre-hook that recomputes ``<name>`` from them.
What :mod:`lth_prune.masks`, :mod:`lth_prune.rewind`, :mod:`lth_prune.tickets`, the pruning
methods and the speed code in :mod:`lth_prune.sparse` need to know about that form is here,
so that none of them imports another's private helpers.

Selected, not multiplied: torch's hooks compute ``<name>_orig * <name>_mask``, and NaN or
infinity times 0 is NaN, so one diverged entry of ``<name>_orig`` at a pruned position reaches
the output, and a NaN gradient at a pruned position reaches ``<name>_orig``. lth_prune's hooks and
every place that enforces a mask select instead (:func:`masked_value`, :func:`zero_pruned_`): a
pruned entry is exactly ``+0.0`` and its gradient exactly 0, whatever the weight or the gradient
held.

Lean: after every round torch stacks one ``CustomFromMask`` per round into a
``PruningContainer``, and after global pruning each of them holds a view of that round's whole
flattened mask over every layer: after N rounds, N copies of every mask are held and pickled.
The module's ``<name>_mask`` buffer is the only mask torch ever reads again, so :func:`collapse`
replaces the stack with one :class:`AppliedMask` that holds no tensor at all.

Copyable: a pruned module's ``<name>`` attribute is a non-leaf tensor (computed from
``<name>_orig``), which ``copy.deepcopy`` refuses. The hooks give ``deepcopy`` a detached copy
of it instead (:func:`seed_deepcopy_memo`); the copy's next forward recomputes it from its own
``<name>_orig`` and ``<name>_mask``. Right after ``prune.global_unstructured`` the hooks are
torch's, which do not; :class:`LayerHook`, which :func:`lth_prune.prunable` and the rewind
hooks put on every layer they see, does it for them and collapses them at the next forward.

Held dense: inside :func:`lth_prune.masked_training` a pruned tensor is a plain parameter whose
pruned entries are zero, and its mask is kept on the module itself (:func:`hold_dense`), as
torch keeps ``<name>_mask``, so that :func:`keep_mask` and :func:`rezero` see it without any
registry outside the module. A copy or a pickle of such a module is outside the context, so it
is given in torch's pruned form, with the same masks and weights (as the module itself is on
exit).
"""
from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any, Iterable, Mapping

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

__all__ = [
    "AppliedMask",
    "collapse",
    "dense_masks",
    "dense_state",
    "ensure_layer_hook",
    "hold_dense",
    "keep_mask",
    "LayerHook",
    "masked_value",
    "named_tensors",
    "pruned_names",
    "pruned_state_keys",
    "refresh",
    "release_dense",
    "replace_mask",
    "rezero",
    "seed_deepcopy_memo",
    "stored_parameter",
    "to_dense",
    "to_pruned",
    "zero_pruned_",
]

# The key in a module's __dict__ under which a layer held dense keeps its masks.
_DENSE_MASKS = "_lth_prune_dense_masks"


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

    def apply_mask(self, module: nn.Module) -> Tensor:
        """``<name>_orig`` where ``<name>_mask`` is nonzero, exactly 0 elsewhere (see above).

        torch calls this on every forward pass and in ``prune.remove``; the gradient it passes
        to ``<name>_orig`` is exactly 0 at pruned positions.
        """
        return masked_value(
            module._parameters[self._tensor_name + "_orig"], module._buffers[self._tensor_name + "_mask"]
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"_tensor_name": self._tensor_name, "_module": None}

    def __deepcopy__(self, memo: dict[int, Any]) -> AppliedMask:
        seed_deepcopy_memo(self._module, memo)
        return AppliedMask(self._tensor_name)


class LayerHook:
    """Forward pre-hook on a conv/linear layer: collapses stacked masks, lets deepcopy through.

    Before each forward it replaces torch's stacked pruning hooks by one :class:`AppliedMask`
    (:func:`collapse`), so the layer holds one mask and selects rather than multiplies by it;
    and it gives ``copy.deepcopy`` a detached copy of the masked tensor, which torch's own
    hooks (left by ``prune.global_unstructured``) do not. It holds no tensor.
    """

    def __init__(self, module: nn.Module | None = None) -> None:
        self._module = weakref.ref(module) if module is not None else None

    def __call__(self, module: nn.Module, inputs: Any) -> None:
        if self._module is None:
            self._module = weakref.ref(module)
        collapse(module)

    def __getstate__(self) -> dict[str, Any]:
        return {"_module": None}

    def __deepcopy__(self, memo: dict[int, Any]) -> LayerHook:
        seed_deepcopy_memo(self._module, memo)
        return LayerHook()


class _DenseMasks(dict):
    """A module's masks while :func:`lth_prune.masked_training` holds it dense.

    They belong to the context that converted this very module: a copy or a pickle of the
    module is in no such context, so the copy gets its masks in torch's form instead
    (:class:`_PrunedFormState`) and this object itself is never copied.

    Attributes:
        mask_dtypes: the dtype of each tensor's ``<name>_mask`` in torch's form.
        context_attributes: names of instance attributes the context set on the module (a
            replaced ``forward``), left out of copies.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mask_dtypes: dict[str, torch.dtype] = {}
        self.context_attributes: set[str] = set()

    def __deepcopy__(self, memo: dict[int, Any]) -> _DenseMasks:
        return _DenseMasks()

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return _DenseMasks, ()


class _PrunedFormState:
    """The ``__getstate__`` of a module held dense: its state in torch's pruned form.

    ``copy.deepcopy``, ``pickle`` and ``torch.save`` read a module's state through
    ``__getstate__``, looked up on the instance first; this one gives them the module as it
    will be on leaving the context: ``<name>_orig`` (the same parameter), ``<name>_mask``, an
    :class:`AppliedMask` hook and the masked ``<name>``, without the context's masks and
    attributes.
    """

    def __init__(self, module: nn.Module) -> None:
        self._module = weakref.ref(module)

    def __call__(self) -> dict[str, Any]:
        module = self._module()
        if module is None:
            raise RuntimeError("hold_dense(): the module this state belongs to no longer exists.")
        state = type(module).__getstate__(module)
        state.pop("__getstate__", None)
        held: _DenseMasks = state.pop(_DENSE_MASKS)
        for attribute in held.context_attributes:
            state.pop(attribute, None)
        parameters = OrderedDict(state["_parameters"])
        buffers = OrderedDict(state["_buffers"])
        hooks = OrderedDict(state["_forward_pre_hooks"])
        for name, keep in held.items():
            parameter = parameters.pop(name)
            mask = keep.to(held.mask_dtypes[name], copy=True)
            parameters[name + "_orig"] = parameter
            buffers[name + "_mask"] = mask
            handle = RemovableHandle(hooks)  # a fresh hook id, as register_forward_pre_hook gives
            hooks[handle.id] = AppliedMask(name)
            with torch.no_grad():
                state[name] = masked_value(parameter, mask)
        state["_parameters"], state["_buffers"], state["_forward_pre_hooks"] = parameters, buffers, hooks
        return state


def stored_parameter(module: nn.Module, name: str) -> Tensor | None:
    """The parameter that holds ``module.<name>``: ``<name>_orig`` where pruned, else ``<name>``;
    ``None`` where the module has neither."""
    value = module._parameters.get(name + "_orig", module._parameters.get(name))
    return value if isinstance(value, Tensor) else None


def pruned_names(module: nn.Module) -> list[str]:
    """Names of the tensors of ``module`` that ``torch.nn.utils.prune`` reparametrised."""
    return [
        key[: -len("_orig")]
        for key in module._parameters
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in module._buffers
    ]


def pruned_state_keys(state_dict: Mapping[str, Any]) -> list[str]:
    """Dotted names (``"fc1.weight"``) of the tensors a state dict holds in torch's pruned form."""
    return [
        key[: -len("_orig")] for key in state_dict
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in state_dict
    ]


def replace_mask(module: nn.Module, name: str, keep: Tensor) -> bool:
    """Write ``keep`` into the mask of ``module.<name>`` where it is pruned in torch's form;
    ``False`` (nothing written) where it is not."""
    mask = module._buffers.get(name + "_mask")
    if mask is None or name + "_orig" not in module._parameters:
        return False
    mask.copy_(keep != 0)
    return True


# -- The one pair of conversions: torch's pruned form <-> a plain tensor, pruned entries 0. ------


def to_dense(module: nn.Module, name: str) -> tuple[nn.Parameter, Tensor, torch.dtype]:
    """Take ``module.<name>`` out of torch's pruned form: the ``<name>_orig`` parameter itself
    becomes ``module.<name>``, its pruned entries exactly ``+0.0``; the mask buffer, the pruning
    hooks and the recomputed attribute go.

    Returns:
        ``(parameter, keep, mask_dtype)``: the parameter (the same object, so optimizers keep
        it), the mask as uint8 0 and 1, and the dtype the mask buffer had (for :func:`to_pruned`).
    """
    parameter = module._parameters[name + "_orig"]
    mask = module._buffers[name + "_mask"]
    keep = (mask != 0).to(torch.uint8)
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, prune.BasePruningMethod) and hook._tensor_name == name:
            del module._forward_pre_hooks[key]
    module.__dict__.pop(name, None)
    del module._parameters[name + "_orig"]
    del module._buffers[name + "_mask"]
    with torch.no_grad():
        zero_pruned_(parameter, keep)
    module._parameters[name] = parameter
    return parameter, keep, mask.dtype


def to_pruned(module: nn.Module, name: str, keep: Tensor, mask_dtype: torch.dtype = torch.float32) -> None:
    """Put the plain parameter ``module.<name>`` back into torch's pruned form: it becomes
    ``<name>_orig`` (the same object), ``keep`` the ``<name>_mask`` buffer (in ``mask_dtype``),
    one :class:`AppliedMask` the hook, and ``<name>`` is recomputed, selected from them."""
    parameter = module._parameters.pop(name)
    module._parameters[name + "_orig"] = parameter
    module.register_buffer(name + "_mask", keep.to(mask_dtype))
    module.register_forward_pre_hook(AppliedMask(name, module))
    refresh(module, name)


def dense_state(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a state dict with every tensor in torch's pruned form given plainly: each
    ``<name>_orig`` / ``<name>_mask`` pair becomes ``<name>``, the kept values and exactly
    ``+0.0`` at pruned entries (selected, so a NaN at a pruned entry stays out); a fresh,
    unpruned module of the same architecture loads it."""
    dense = dict(state_dict)
    for key in pruned_state_keys(state_dict):
        dense[key] = masked_value(dense.pop(key + "_orig"), dense.pop(key + "_mask")).detach()
    return dense


def keep_mask(module: nn.Module, name: str) -> Tensor | None:
    """The boolean mask of kept entries of ``module.<name>``, or ``None`` if it is not pruned.

    A tensor held dense by :func:`lth_prune.masked_training` counts as pruned, with its held mask.
    """
    mask = module._buffers.get(name + "_mask")
    if mask is not None and name + "_orig" in module._parameters:
        return mask != 0
    keep = dense_masks(module).get(name)
    return None if keep is None else keep != 0


def hold_dense(
    module: nn.Module,
    name: str,
    keep: Tensor,
    mask_dtype: torch.dtype = torch.float32,
    context_attributes: Iterable[str] = (),
) -> None:
    """Record that ``module.<name>`` is a plain parameter, zero where ``keep`` is 0.

    Until :func:`release_dense`, a ``copy.deepcopy`` or a pickle of ``module`` is pruned in
    torch's form with this mask (``<name>_orig``, ``<name>_mask``, a pruning hook).

    Args:
        module: the layer.
        name: the tensor's name in ``module``, e.g. ``"weight"``.
        keep: its mask of kept entries, the tensor's shape, nonzero meaning kept.
        mask_dtype: the dtype of ``<name>_mask`` in a copy (torch's masks are float).
        context_attributes: instance attributes the caller set on ``module`` for the time it
            holds it dense (such as a replaced ``forward``); copies leave them out.
    """
    held = module.__dict__.get(_DENSE_MASKS)
    if held is None:
        held = module.__dict__[_DENSE_MASKS] = _DenseMasks()
        module.__dict__["__getstate__"] = _PrunedFormState(module)
    held[name] = keep
    held.mask_dtypes[name] = mask_dtype
    held.context_attributes.update(context_attributes)


def release_dense(module: nn.Module, name: str) -> None:
    """Forget the mask :func:`hold_dense` recorded for ``module.<name>`` (none: nothing to do)."""
    held = module.__dict__.get(_DENSE_MASKS)
    if held is None:
        return
    held.pop(name, None)
    held.mask_dtypes.pop(name, None)
    if not held:
        del module.__dict__[_DENSE_MASKS]
        module.__dict__.pop("__getstate__", None)


def dense_masks(module: nn.Module) -> dict[str, Tensor]:
    """The masks of ``module``'s tensors held dense, by tensor name; empty for any other module."""
    return dict(module.__dict__.get(_DENSE_MASKS, {}))


def masked_value(orig: Tensor, mask: Tensor) -> Tensor:
    """``orig`` where ``mask`` is nonzero and exactly ``+0.0`` elsewhere, differentiably.

    Unlike ``orig * mask``, a NaN or infinity of ``orig`` at a pruned position does not reach
    the result, and the gradient passed back to ``orig`` there is exactly 0, not ``NaN * 0``.

    Args:
        orig: the tensor as trained, any shape.
        mask: its mask, the same shape, any dtype, nonzero meaning kept.

    Returns:
        A tensor of ``orig``'s shape and dtype.
    """
    return torch.where(mask != 0, orig, 0.0)


def zero_pruned_(values: Tensor, keep: Tensor) -> None:
    """Set the entries of ``values`` where ``keep`` is 0 to ``+0.0``, in place, by selection.

    NaN and infinity at a pruned position become 0 too (``values.mul_(keep)`` would leave NaN
    there); kept entries keep their bits. It runs at the speed of ``mul_``: the floats are
    multiplied as integers of their width, so each bit pattern is multiplied by 1 or 0
    (``masked_fill_`` and ``torch.where`` ran 10-15x slower over a 784 x 300 tensor on the
    2-core benchmark machine). Any device; for gradients, parameters under ``torch.no_grad()``
    and optimizer state, not for a tensor a graph has saved.

    Args:
        values: a floating-point (or integer) tensor, any device and layout of strides.
        keep: a uint8 or bool tensor of the same shape and device, nonzero meaning kept; a
            uint8 mask must hold only 0 and 1.
    """
    if values.is_floating_point():
        values = values.detach().view(_SAME_WIDTH_INTEGER[values.element_size()])
    values.mul_(keep)


# The integer type each floating-point width is multiplied as, by its size in bytes.
_SAME_WIDTH_INTEGER = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def rezero(module: nn.Module) -> None:
    """Zero the pruned entries of ``module``'s tensors held dense (after a write into them)."""
    with torch.no_grad():
        for name, keep in dense_masks(module).items():
            zero_pruned_(module._parameters[name], keep)


def refresh(module: nn.Module, name: str) -> None:
    """Recompute ``module.<name>`` from ``<name>_orig`` and ``<name>_mask`` now, as a forward pass would."""
    if name + "_orig" in module._parameters and name + "_mask" in module._buffers:
        setattr(module, name, masked_value(module._parameters[name + "_orig"], module._buffers[name + "_mask"]))


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


def ensure_layer_hook(module: nn.Module) -> None:
    """Give ``module`` a :class:`LayerHook` unless it has one (from here or the rewind hooks)."""
    if not any(isinstance(hook, LayerHook) for hook in module._forward_pre_hooks.values()):
        module.register_forward_pre_hook(LayerHook(module))


def named_tensors(model: nn.Module) -> list[tuple[str, Tensor, nn.Module]]:
    """(dense name, tensor to read or write, owning module) for every parameter and buffer.

    A pruned tensor is named as it was before pruning (``"fc.weight"``) and given as its
    ``<name>_orig``, which training updates; masks are left out.
    """
    found = []
    for prefix, module in model.named_modules():
        pruned = set(pruned_names(module))
        dot = prefix + "." if prefix else ""
        for key, value in module._parameters.items():
            if value is None:
                continue
            name = key[: -len("_orig")] if key.endswith("_orig") and key[:-5] in pruned else key
            found.append((dot + name, value, module))
        for key, value in module._buffers.items():
            if value is None or (key.endswith("_mask") and key[:-5] in pruned):
                continue
            found.append((dot + key, value, module))
    return found

