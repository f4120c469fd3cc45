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
from typing import Any, Iterable, Union

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd
from torch.utils.hooks import RemovableHandle

__all__ = [
    "AppliedMask",
    "collapse",
    "dense_masks",
    "ensure_layer_hook",
    "hold_dense",
    "is_prunable",
    "keep_mask",
    "LayerHook",
    "masked_value",
    "ModuleOrName",
    "named_tensors",
    "output_layer",
    "PRUNABLE_KINDS",
    "prunable_layers",
    "pruned_names",
    "refresh",
    "release_dense",
    "rezero",
    "seed_deepcopy_memo",
    "zero_pruned_",
]

ModuleOrName = Union[str, nn.Module, type]

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


def pruned_names(module: nn.Module) -> list[str]:
    """Names of the tensors of ``module`` that ``torch.nn.utils.prune`` reparametrised."""
    return [
        key[: -len("_orig")]
        for key in module._parameters
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in module._buffers
    ]


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


# What :func:`is_prunable` looks for, in words, for error messages.
PRUNABLE_KINDS = (
    "nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d or "
    "nn.ConvTranspose3d, or a subclass of one, with a weight, or nn.MultiheadAttention"
)


def ensure_layer_hook(module: nn.Module) -> None:
    """Give ``module`` a :class:`LayerHook` unless it has one (from here or the rewind hooks)."""
    if not any(isinstance(hook, LayerHook) for hook in module._forward_pre_hooks.values()):
        module.register_forward_pre_hook(LayerHook(module))


def prunable_tensor(module: nn.Module) -> str | None:
    """The name of ``module``'s prunable weight matrix, pruned or not; ``None`` if it has none.

    ``"weight"`` of convolutions and linear layers (``MultiheadAttention``'s ``out_proj`` is
    one); ``"in_proj_weight"`` of ``nn.MultiheadAttention``, which keeps its query, key and
    value projections in that one parameter (where the key and value sizes differ from the
    embedding's it has three separate ones, which are not pruned).

    Example:
        >>> prunable_tensor(nn.Linear(2, 2)), prunable_tensor(nn.MultiheadAttention(4, 2)), prunable_tensor(nn.ReLU())
        ('weight', 'in_proj_weight', None)
    """
    if isinstance(module, (_ConvNd, nn.Linear)):
        name = "weight"
    elif isinstance(module, nn.MultiheadAttention):
        name = "in_proj_weight"
    else:
        return None
    if name + "_orig" in module._parameters or isinstance(module._parameters.get(name), Tensor):
        return name
    return None


def is_prunable(module: nn.Module) -> bool:
    """Whether ``module`` has a prunable weight matrix (:func:`prunable_tensor`), pruned or not."""
    return prunable_tensor(module) is not None


def tensor_key(layer: str, module: nn.Module) -> str:
    """The dotted name of a prunable layer's weight matrix (``"fc1.weight"``, ``"attn.in_proj_weight"``)."""
    tensor = prunable_tensor(module)
    if tensor is None:
        raise ValueError(f"tensor_key(): {layer or 'the model'} ({type(module).__name__}) has no prunable weight.")
    return f"{layer}.{tensor}" if layer else tensor


def stored_tensor(module: nn.Module) -> Tensor:
    """The parameter that holds a prunable layer's weight matrix: ``<name>_orig`` where pruned."""
    tensor = prunable_tensor(module)
    if tensor is None:
        raise ValueError(f"stored_tensor(): {type(module).__name__} has no prunable weight.")
    return module._parameters.get(tensor + "_orig", module._parameters.get(tensor))


def prunable_layers(
    model: nn.Module, exclude: Iterable[ModuleOrName], caller: str
) -> list[tuple[str, nn.Module]]:
    """The ``(dotted name, layer)`` of every prunable layer of ``model`` not in ``exclude``.

    Args:
        model: any module.
        exclude: layers to leave out, as modules, dotted names or module types; a name also
            excludes everything below it (``"classifier"`` excludes ``"classifier.0"``), a type
            (``nn.Conv2d``) every module of that type.
        caller: the public function asking, e.g. ``"prunable()"``, named in error messages.

    Returns:
        The layers in module order (see :func:`is_prunable`).

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or an exclusion is neither a name nor
            a module.
        ValueError: if an excluded name or module is not part of ``model``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"{caller}: model must be an nn.Module, got {type(model).__name__}.")
    if isinstance(exclude, (str, nn.Module)) or (isinstance(exclude, type) and issubclass(exclude, nn.Module)):
        exclude = [exclude]
    named = dict(model.named_modules())
    by_identity = {id(module): name for name, module in named.items()}
    excluded: list[str] = []
    for item in exclude:
        if isinstance(item, type) and issubclass(item, nn.Module):
            # A module type: every module of that type (nn.Embedding, nn.LayerNorm, nn.Conv2d, ...).
            excluded.extend(name for name, module in named.items() if name and isinstance(module, item))
        elif isinstance(item, str):
            if item not in named:
                raise ValueError(
                    f"{caller}: exclude names a module that is not in the model, got {item!r}; "
                    f"prunable layers are {[n for n, m in named.items() if is_prunable(m)]}."
                )
            excluded.append(item)
        elif isinstance(item, nn.Module):
            if id(item) not in by_identity:
                raise ValueError(
                    f"{caller}: exclude holds a module that is not part of the model, got "
                    f"{type(item).__name__}."
                )
            excluded.append(by_identity[id(item)])
        else:
            raise TypeError(
                f"{caller}: exclude must hold module names, modules or module types, got {item!r}."
            )
    return [
        (name, module)
        for name, module in named.items()
        if is_prunable(module) and not any(_is_within(name, prefix) for prefix in excluded)
    ]


def output_layer(model: nn.Module) -> nn.Module | None:
    """The model's output layer: its last ``nn.Linear`` in module order (``None``: it has none)."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return linears[-1] if linears else None


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


def _is_within(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")
