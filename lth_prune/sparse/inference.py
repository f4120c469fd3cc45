"""Sparse inference: :func:`to_sparse` turns a ticket into a model that runs sparse kernels.

A masked model computes with dense weights full of zeros, so sparsity buys nothing.
:func:`to_sparse` copies the model and replaces each pruned linear layer by a
:class:`SparseLinear` (the weight as a CSR matrix, ``y^T = W x^T`` by a sparse-dense
product) and each pruned 2-d convolution by a :class:`SparseConv2d` (a CSR matrix over
unfolded input patches), where that is faster, and keeps the dense layer where it is not.
"""
from __future__ import annotations

import copy
import time
import warnings
from typing import Any, Callable

import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch import Tensor, nn

from lth_prune._reparam import collapse, pruned_names, refresh

__all__ = ["SparseConv2d", "SparseLinear", "to_sparse"]


class SparseLinear(nn.Module):
    """A linear layer whose weight is a CSR matrix; inference only (no gradients).

    Args:
        weight: the dense ``(out_features, in_features)`` weight, zeros where pruned.
        bias: ``(out_features,)`` or ``None``.

    Shape:
        input ``(*, in_features)``, output ``(*, out_features)``.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.register_buffer("weight", _csr(weight))
        self.register_buffer("bias", None if bias is None else bias.detach().clone().reshape(-1, 1))

    def forward(self, input: Tensor) -> Tensor:
        flat = input.reshape(-1, self.in_features)
        if flat.shape[0] == 1:
            # One example: a sparse matrix-vector product, twice as fast here as the
            # matrix-matrix one with a single column.
            if self.bias is None:
                out = torch.mv(self.weight, flat[0])
            else:
                out = torch.addmv(self.bias.view(-1), self.weight, flat[0])
            return out.reshape(*input.shape[:-1], self.out_features)
        # (W @ x^T)^T: CSR times dense is the product torch's sparse kernels make fast.
        if self.bias is None:
            out = (self.weight @ flat.t()).t()
        else:
            out = torch.addmm(self.bias, self.weight, flat.t()).t()
        return out.reshape(*input.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.weight.values().numel()}"


class SparseConv2d(nn.Module):
    """A 2-d convolution as a CSR matrix over unfolded input patches; inference only.

    Args:
        conv: the dense convolution (``groups=1``) whose weight has zeros where pruned.

    Shape:
        input ``(N, C_in, H, W)``, output ``(N, C_out, H_out, W_out)``.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(
                "SparseConv2d(): conv must have groups=1, zero padding given as numbers, got "
                f"groups={conv.groups}, padding={conv.padding!r}, padding_mode={conv.padding_mode!r}."
            )
        self.out_channels = conv.out_channels
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding, self.dilation = conv.padding, conv.dilation
        self.register_buffer("weight", _csr(conv.weight.detach().reshape(conv.out_channels, -1)))
        bias = conv.bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone().reshape(-1, 1))

    def forward(self, input: Tensor) -> Tensor:
        batch, _, height, width = input.shape
        patches = F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)
        columns = patches.transpose(0, 1).reshape(patches.shape[1], -1)  # (C*k*k, N*L)
        if self.bias is None:
            out = self.weight @ columns
        else:
            out = torch.addmm(self.bias, self.weight, columns)
        out_h = (height + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) // self.stride[0] + 1
        out_w = (width + 2 * self.padding[1] - self.dilation[1] * (self.kernel_size[1] - 1) - 1) // self.stride[1] + 1
        return out.reshape(self.out_channels, batch, out_h, out_w).transpose(0, 1)

    def extra_repr(self) -> str:
        return (f"out_channels={self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, nnz={self.weight.values().numel()}")


def to_sparse(
    model: nn.Module,
    example_input: Tensor | None = None,
    *,
    max_density: float = 0.1,
    repeats: int = 5,
) -> nn.Module:
    """A copy of ``model`` for inference whose pruned layers use sparse kernels where they pay.

    Pruning is made permanent in the copy (``model`` is not changed) and it is put in eval
    mode. With ``example_input``, every pruned linear and 2-d convolution layer is timed dense
    and sparse on the input it sees in a forward pass of ``example_input``, and the faster
    form is kept: pass one whenever you can. Without it, a linear layer becomes sparse when
    its density is at most ``max_density``, and convolutions stay dense: a sparse product
    over unfolded patches pays only where a timing shows it (on the benchmark CPU, at batch
    128, it was 1.2-6.7x slower than the dense convolution even at 1 % density, because the
    unfolded patches are ``kernel_h * kernel_w`` times the input).

    Args:
        model: a pruned model (``torch.nn.utils.prune`` form, or any model with zero weights).
        example_input: a typical input batch, e.g. ``(N, C, H, W)``, used to choose per layer.
        max_density: fraction of nonzero weights up to which a linear layer goes sparse when
            no ``example_input`` is given, in [0, 1].
        repeats: timed calls per layer and form when choosing by timing.

    Returns:
        The sparse copy, in eval mode. Its layers hold CSR buffers and compute no gradients.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
        ValueError: if ``max_density`` is not in [0, 1] or ``repeats`` < 1.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
        >>> _ = torch.nn.utils.prune.random_unstructured(net[0], "weight", amount=0.95)
        >>> fast = to_sparse(net)
        >>> type(fast[0]).__name__, type(fast[2]).__name__
        ('SparseLinear', 'Linear')
        >>> x = torch.randn(3, 64)
        >>> torch.allclose(fast(x), net(x), atol=1e-5)
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_sparse(): model must be an nn.Module, got {type(model).__name__}.")
    if not 0.0 <= max_density <= 1.0:
        raise ValueError(f"to_sparse(): max_density must be in [0, 1], got {max_density}.")
    if repeats < 1:
        raise ValueError(f"to_sparse(): repeats must be >= 1, got {repeats}.")
    sparse_model = _permanent_copy(model)
    candidates = {
        name: module for name, module in sparse_model.named_modules()
        if (isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1
            and module.padding_mode == "zeros" and not isinstance(module.padding, str)))
        and _density(module.weight) < 1.0
    }
    inputs = _layer_inputs(sparse_model, example_input, candidates) if example_input is not None else {}
    for name, module in candidates.items():
        if name not in inputs and not (isinstance(module, nn.Linear) and _density(module.weight) <= max_density):
            continue
        sparse = SparseLinear(module.weight, module.bias) if isinstance(module, nn.Linear) else SparseConv2d(module)
        if name not in inputs or _sparse_is_faster(module, sparse, inputs[name], repeats):
            _replace(sparse_model, name, sparse)
    return sparse_model


def _permanent_copy(model: nn.Module) -> nn.Module:
    for module in model.modules():
        # A collapsed hook lets deepcopy through the non-leaf masked weight.
        collapse(module)
    duplicate = copy.deepcopy(model)
    for module in duplicate.modules():
        for name in pruned_names(module):
            refresh(module, name)
            prune.remove(module, name)
    for parameter in duplicate.parameters():
        parameter.requires_grad_(False)
    return duplicate.eval()


def _layer_inputs(model: nn.Module, example_input: Tensor, layers: dict[str, nn.Module]) -> dict[str, Tensor]:
    seen: dict[str, Tensor] = {}
    handles = [
        module.register_forward_pre_hook(_recorder(seen, name)) for name, module in layers.items()
    ]
    try:
        with torch.inference_mode():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _recorder(seen: dict[str, Tensor], name: str) -> Callable[[nn.Module, Any], None]:
    def record(module: nn.Module, inputs: Any) -> None:
        seen[name] = inputs[0].detach()
    return record


def _sparse_is_faster(dense: nn.Module, sparse: nn.Module, input: Tensor, repeats: int) -> bool:
    # The two forms alternate call by call and each keeps its fastest call, so a burst of load
    # from elsewhere cannot land on one form only.
    best = {"dense": float("inf"), "sparse": float("inf")}
    with torch.inference_mode():
        for call in range(repeats + 1):  # the first call of each warms it up, uncounted
            for form, module in (("dense", dense), ("sparse", sparse)):
                start = time.perf_counter()
                module(input)
                if input.is_cuda:
                    torch.cuda.synchronize(input.device)
                elapsed = time.perf_counter() - start
                if call > 0:
                    best[form] = min(best[form], elapsed)
    return best["sparse"] < best["dense"]


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _density(weight: Tensor) -> float:
    return float(torch.count_nonzero(weight)) / max(1, weight.numel())


# 32-bit CSR indices where they fit: torch's CPU products convert 64-bit ones on every call
# (to the 32-bit indices MKL takes), which made a batch-1 product 1.5-2x slower and a
# batch-128 one 3-14 % slower on the benchmark machine.
_INT32_LIMIT = 2**31 - 1


def _csr(dense: Tensor) -> Tensor:
    with warnings.catch_warnings():
        # torch flags sparse CSR as beta on every conversion; the kernels used here are stable.
        warnings.simplefilter("ignore", UserWarning)
        matrix = dense.detach().to_sparse_csr()
        if max(matrix.values().numel(), *matrix.shape) > _INT32_LIMIT:
            return matrix
        return torch.sparse_csr_tensor(
            matrix.crow_indices().to(torch.int32),
            matrix.col_indices().to(torch.int32),
            matrix.values(),
            matrix.shape,
            check_invariants=False,
        )
