"""What the timing benchmarks compare: variants of one model, their dense references, memory.

Every variant starts from the same model, pruned one shot with ``torch.nn.utils.prune`` and
:class:`lth_prune.LotteryTicket` to the level being timed (or left dense). That pruned form
gives the masks and the dense reference the checks compare against; the variant may then
convert it (a sparse-kernel copy) or run the passes inside a context (a training mode).
Adding a faster path is one more entry in :data:`VARIANTS`: ``masked-training``
(:func:`lth_prune.masked_training`), ``sparse-kernels`` (the same with sparse kernels for linear
layers at <= 10 % density) and ``to-sparse`` (:func:`lth_prune.to_sparse`, inference only) are.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn

import lth_prune
from lth_prune.layers import output_layer, prunable_layers, prunable_tensor

__all__ = [
    "PASSES",
    "VARIANTS",
    "Variant",
    "dense_reference",
    "param_bytes",
    "prune_imp_style",
    "prune_to",
]

PASSES = ("forward", "backward", "train_step", "inference")


def prune_to(model: nn.Module, weights_remaining: float) -> nn.Module:
    """Prune ``model`` in place, one shot, to ``weights_remaining`` of its weights (global).

    One shot is enough here: the timings depend on the masks' density, not on how many IMP
    rounds produced them.

    Args:
        model: a dense model.
        weights_remaining: fraction in (0, 1] of the convolution and linear weights to keep;
            1.0 still attaches (all-ones) masks, which is the cost of the mechanism alone.

    Returns:
        ``model``.
    """
    prune.global_unstructured(
        lth_prune.prunable(model),
        pruning_method=lth_prune.LotteryTicket,
        amount=1.0 - weights_remaining,
    )
    # Each hook global_unstructured leaves holds a view of the whole global mask (one more
    # float copy of every weight); lth_prune drops it after every round, so the timed model
    # is the one lth_prune users hold.
    lth_prune.collapse_masks(model)
    return model


def imp_rates(model_name: str) -> lth_prune.PruningRates:
    """The paper's per-round rates: conv 10 % (Conv-6: 15 %), fc 20 %, the output layer 10 %.

    Frankle & Carbin 2019 give them for LeNet and Conv-2/4/6; ResNet-20, VGG-16 and Network
    get the Conv-2 rates here.
    """
    return lth_prune.PruningRates(conv=0.15 if model_name == "conv6" else 0.1, linear=0.2)


def prune_imp_style(
    model: nn.Module, weights_remaining: float, rates: lth_prune.PruningRates
) -> dict[str, float]:
    """Prune ``model`` in place as IMP's rounds do, until at most ``weights_remaining`` is left.

    Each round prunes every layer by its own rate (``rates``), and rounds go on until the
    weights left are at or below ``weights_remaining``: the per-layer densities a lottery
    ticket at that level has (Conv-2 at 1.9 %: its convolutions keep 15 %, its first fc
    layer 1.4 %), unlike one-shot global pruning (:func:`prune_to`), which empties whole layers
    of ``network`` from 5 % down. Without training between rounds the rounds prune the
    smallest weights of each layer, so each layer is pruned once, by the count its rounds add
    up to (rounded as the rounds round), which is exactly what the rounds would prune.

    Args:
        model: a dense model.
        weights_remaining: fraction in (0, 1] of the convolution and linear weights to keep.
        rates: the per-round rates.

    Returns:
        Each prunable layer's fraction of weights remaining, by name.
    """
    layers = prunable_layers(model, (), "prune_imp_style()")
    output = output_layer(model)
    left = {name: module.weight.numel() for name, module in layers}
    total = sum(left.values())
    while sum(left.values()) > weights_remaining * total:
        before = sum(left.values())
        for name, module in layers:
            rate = rates.rate_for(name, module, is_output=module is output)
            left[name] -= round(rate * left[name])
        if sum(left.values()) == before:
            raise ValueError(f"prune_imp_style(): the rates cannot prune below {before / total:.4f}.")
    for name, module in layers:
        lth_prune.lottery_ticket_unstructured(module, "weight", amount=module.weight.numel() - left[name])
    return {name: left[name] / module.weight.numel() for name, module in layers}


def dense_reference(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose masked weights are plain parameters holding ``orig * mask``.

    It computes what the masked model should compute, through no pruning machinery at all,
    so comparing the two checks the masked passes. ``model`` is left unchanged.

    Args:
        model: a model, pruned through ``torch.nn.utils.prune`` or not.

    Returns:
        The dense copy, on the same device and in the same train / eval mode.
    """
    reference = copy.deepcopy(model)
    for _, module in prunable_layers(reference):
        if prune.is_pruned(module):
            # remove() writes the masked values into a plain Parameter and drops orig, mask and hook.
            prune.remove(module, prunable_tensor(module))
    return reference


def param_bytes(model: nn.Module) -> int:
    """Bytes held by the parameters, buffers (masks included) and masked weights of ``model``.

    A layer pruned through ``torch.nn.utils.prune`` holds three weight-sized tensors:
    ``weight_orig`` (the trained parameter), ``weight_mask`` (a float buffer) and ``weight``
    (``orig * mask``, an attribute recomputed every forward); all three are counted.
    Gradients and optimizer state are not; a sparse tensor counts its indices and values.

    Args:
        model: any module.

    Returns:
        The number of bytes, each storage counted once.
    """
    tensors: list[Tensor] = [*model.parameters(), *model.buffers()]
    for module in model.modules():
        # Tensors a module holds beside its parameters and buffers: torch's recomputed masked
        # weight, and inside masked_training the 1-byte masks kept on the layer (in a dict).
        for value in module.__dict__.values():
            if isinstance(value, Tensor):
                tensors.append(value)
            elif isinstance(value, dict) and not isinstance(value, nn.Module):
                tensors.extend(item for item in value.values() if isinstance(item, Tensor))
    sizes = {
        (str(part.device), part.untyped_storage().data_ptr()): part.untyped_storage().nbytes()
        for tensor in tensors
        for part in _strided_parts(tensor)
    }
    return sum(sizes.values())


def _strided_parts(tensor: Tensor) -> list[Tensor]:
    # A sparse tensor has no storage of its own: its index and value tensors hold the bytes.
    if tensor.layout in (torch.sparse_csr, torch.sparse_bsr):
        return [tensor.crow_indices(), tensor.col_indices(), tensor.values()]
    if tensor.layout in (torch.sparse_csc, torch.sparse_bsc):
        return [tensor.ccol_indices(), tensor.row_indices(), tensor.values()]
    if tensor.layout == torch.sparse_coo:
        return [tensor._indices(), tensor._values()]
    return [tensor]


def _same(model: nn.Module, example_input: Tensor) -> nn.Module:
    return model


def _no_context(model: nn.Module, optimizer: torch.optim.Optimizer) -> ContextManager[object]:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Variant:
    """One way of running a pruned model, timed against the dense model.

    Attributes:
        prunes: whether the model is pruned with :func:`prune_to` before ``convert``. A
            variant that does not (``dense``) is timed once per model, at 1.0, and is the
            baseline of the ratios.
        convert: ``convert(model, example_input)`` turns the pruned model into the model that
            is timed, given the batch it will be timed on; may return a copy.
        context: ``context(model, optimizer)`` is entered around the timed rounds and the
            checks of every pass (the optimizer is the SGD the training step uses).
        passes: the passes this variant is timed on, a subset of :data:`PASSES`.
    """

    prunes: bool = True
    convert: Callable[[nn.Module, Tensor], nn.Module] = _same
    context: Callable[[nn.Module, torch.optim.Optimizer], ContextManager[object]] = _no_context
    passes: tuple[str, ...] = PASSES


def _masked_training(model: nn.Module, optimizer: torch.optim.Optimizer) -> ContextManager[object]:
    return lth_prune.masked_training(model, optimizer)


def _sparse_kernels(model: nn.Module, optimizer: torch.optim.Optimizer) -> ContextManager[object]:
    # The threshold lth_prune.imp uses by default: linear layers at <= 10 % density go sparse.
    return lth_prune.masked_training(model, optimizer, sparse_density=0.1)


def _to_sparse(model: nn.Module, example_input: Tensor) -> nn.Module:
    # As the docs advise: each pruned layer is timed dense and sparse on what it sees of this
    # batch, and keeps the faster form.
    return lth_prune.to_sparse(model, example_input)


VARIANTS: dict[str, Variant] = {
    "dense": Variant(prunes=False),
    "torch-prune": Variant(),
    "masked-training": Variant(context=_masked_training),
    "sparse-kernels": Variant(context=_sparse_kernels, passes=("forward", "backward", "train_step")),
    "to-sparse": Variant(convert=_to_sparse, passes=("inference",)),
}
