"""A model's prunable layers: which they are, what their pruned tensor is called, where its
values live, and which layer is the output.

The public face of what lth_prune prunes. Searches, branches, analyses and your own code ask
here rather than spell out ``"weight"``, ``"in_proj_weight"`` or torch's ``"weight_orig"``.

* :func:`prunable_layers`: the ``(dotted name, layer)`` of every prunable layer, with exclusions
  by name, module or type;
* :func:`prunable_tensor`: the name of a layer's pruned tensor (``"weight"``, or an
  ``nn.MultiheadAttention``'s ``"in_proj_weight"``); :func:`tensor_key`: its dotted name;
* :func:`stored_tensor`: the parameter that holds it (``weight_orig`` where pruned);
* :func:`output_layer`: the last ``nn.Linear``, which the paper prunes at half the rate.

Example:
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    >>> [tensor_key(name, layer) for name, layer in prunable_layers(model)]
    ['0.weight', '2.weight']
"""
from __future__ import annotations

from typing import Iterable, Union

from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

from lth_prune._reparam import stored_parameter

__all__ = [
    "PRUNABLE_KINDS",
    "PRUNABLE_TENSORS",
    "ModuleOrName",
    "is_prunable",
    "output_layer",
    "prunable_layers",
    "prunable_tensor",
    "stored_tensor",
    "tensor_key",
]

#: How a layer to exclude may be given: a dotted name, the module itself, or a module type.
ModuleOrName = Union[str, nn.Module, type]
#: The names a prunable layer's pruned tensor may have: convolutions' and linear layers'
#: ``weight``, ``nn.MultiheadAttention``'s ``in_proj_weight``.
PRUNABLE_TENSORS = ("weight", "in_proj_weight")

#: What :func:`is_prunable` looks for, in words, for error messages.
PRUNABLE_KINDS = (
    "nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d or "
    "nn.ConvTranspose3d, or a subclass of one, with a weight, or nn.MultiheadAttention"
)


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
    return name if stored_parameter(module, name) is not None else None


def is_prunable(module: nn.Module) -> bool:
    """Whether ``module`` has a prunable weight matrix (:func:`prunable_tensor`), pruned or not."""
    return prunable_tensor(module) is not None


def tensor_key(layer: str, module: nn.Module) -> str:
    """The dotted name of a prunable layer's weight matrix (``"fc1.weight"``, ``"attn.in_proj_weight"``):
    the key of its mask in :func:`lth_prune.get_masks` and of its values in a dense state dict.

    Raises:
        ValueError: if ``module`` has no prunable weight.
    """
    tensor = prunable_tensor(module)
    if tensor is None:
        raise ValueError(f"tensor_key(): {layer or 'the model'} ({type(module).__name__}) has no prunable weight.")
    return f"{layer}.{tensor}" if layer else tensor


def stored_tensor(module: nn.Module) -> Tensor:
    """The parameter that holds a prunable layer's weight matrix: the one training updates and
    rewinding writes into (torch's ``<name>_orig`` where the layer is pruned).

    Example:
        >>> import torch.nn.utils.prune as prune
        >>> layer = prune.l1_unstructured(nn.Linear(4, 2), "weight", amount=0.5)
        >>> stored_tensor(layer) is layer.weight_orig
        True
    """
    tensor = prunable_tensor(module)
    if tensor is None:
        raise ValueError(f"stored_tensor(): {type(module).__name__} has no prunable weight.")
    value = stored_parameter(module, tensor)
    assert value is not None  # prunable_tensor found it
    return value


def prunable_layers(
    model: nn.Module, exclude: Iterable[ModuleOrName] = (), caller: str = "prunable_layers()"
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

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> [(name, tensor_key(name, layer)) for name, layer in prunable_layers(model, exclude=["2"])]
        [('0', '0.weight')]
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
    """The model's output layer: its last ``nn.Linear`` in module order (``None``: it has none).

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> output_layer(model) is model[2]
        True
    """
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return linears[-1] if linears else None


def _is_within(name: str, prefix: str) -> bool:
    return prefix == "" or name == prefix or name.startswith(prefix + ".")
