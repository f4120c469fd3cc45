"""Sparse training kernels for linear layers with a fixed mask.

During a round of IMP the mask does not change, so the CSR indices of the weight and of its
transpose are computed once. Each step then costs a gather of the kept values, a sparse
forward product, a sparse product for the input gradient, and a sampled dense-dense product
(SDDMM) for the weight gradient at kept positions only: work proportional to the kept
weights instead of all of them.
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["CsrPattern", "sparse_linear"]


class CsrPattern:
    """The fixed sparsity pattern of an ``(out_features, in_features)`` weight.

    Args:
        keep: boolean mask of the kept weights, shape ``(out_features, in_features)``.
    """

    def __init__(self, keep: Tensor) -> None:
        if keep.dim() != 2:
            raise ValueError(f"CsrPattern(): keep must be 2-d (out, in), got shape {tuple(keep.shape)}.")
        rows_count, cols_count = keep.shape
        self.shape = (rows_count, cols_count)
        self.kept = keep.reshape(-1).nonzero().squeeze(1)  # row-major: the CSR order
        rows, cols = self.kept // cols_count, self.kept % cols_count
        self.crow = _offsets(rows, rows_count)
        self.col = cols
        self.transpose_order = torch.argsort(cols * rows_count + rows)
        self.crow_t = _offsets(cols, cols_count)
        self.col_t = rows[self.transpose_order]

    def matrix(self, values: Tensor) -> Tensor:
        """The weight as a CSR tensor with these kept values (in row-major order)."""
        return _csr(self.crow, self.col, values, self.shape)

    def transposed(self, values: Tensor) -> Tensor:
        """The transposed weight as a CSR tensor."""
        return _csr(self.crow_t, self.col_t, values[self.transpose_order], self.shape[::-1])


class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, input: Tensor, weight: Tensor, bias: Tensor | None, pattern: CsrPattern) -> Tensor:
        values = weight.detach().reshape(-1)[pattern.kept]
        out = (pattern.matrix(values) @ input.t()).t()
        if bias is not None:
            out = out + bias
        ctx.save_for_backward(input, values)
        ctx.pattern = pattern
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        input, values = ctx.saved_tensors
        pattern: CsrPattern = ctx.pattern
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = (pattern.transposed(values) @ grad_out.t()).t()
        if ctx.needs_input_grad[1]:
            sampled = torch.sparse.sampled_addmm(
                pattern.matrix(values), grad_out.t().contiguous(), input, beta=0.0
            )
            grad_weight = torch.zeros(pattern.shape[0] * pattern.shape[1], dtype=values.dtype, device=values.device)
            grad_weight[pattern.kept] = sampled.values()
            grad_weight = grad_weight.view(pattern.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(0)
        return grad_input, grad_weight, grad_bias, None


def sparse_linear(input: Tensor, weight: Tensor, bias: Tensor | None, pattern: CsrPattern) -> Tensor:
    """``F.linear(input, weight, bias)`` computed through ``pattern``'s kept weights only.

    Entries of ``weight`` outside the pattern are treated as zero and get zero gradient.

    Args:
        input: ``(*, in_features)``.
        weight: dense ``(out_features, in_features)``.
        bias: ``(out_features,)`` or ``None``.
        pattern: the kept positions of ``weight``.

    Returns:
        ``(*, out_features)``.

    Example:
        >>> weight = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
        >>> pattern = CsrPattern(weight != 0)
        >>> sparse_linear(torch.ones(1, 2), weight, None, pattern).tolist()
        [[1.0, 2.0]]
    """
    flat = input.reshape(-1, pattern.shape[1])
    out = _SparseLinear.apply(flat, weight, bias, pattern)
    return out.reshape(*input.shape[:-1], pattern.shape[0])


class SparseForward:
    """A linear layer's forward through :func:`sparse_linear` (set as ``module.forward``)."""

    def __init__(self, module: nn.Linear, keep: Tensor) -> None:
        self.module = module
        self.pattern = CsrPattern(keep)

    def __call__(self, input: Tensor) -> Tensor:
        return sparse_linear(input, self.module.weight, self.module.bias, self.pattern)


def _offsets(rows: Tensor, count: int) -> Tensor:
    offsets = torch.zeros(count + 1, dtype=torch.int64, device=rows.device)
    offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=count), dim=0)
    return offsets


def _csr(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        # torch flags sparse CSR as beta on every construction.
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
