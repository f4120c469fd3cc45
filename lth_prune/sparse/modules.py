"""The sparse layers :func:`lth_prune.to_sparse` puts in place of pruned ones; inference only.

:class:`SparseLinear` holds its weight as a CSR matrix and multiplies with torch's sparse
kernels. :class:`SparseConv2d` holds the nonzero weights of each output channel with their
(input channel, ky, kx) positions and runs a direct sparse convolution, a compiled kernel
(:mod:`lth_prune.sparse._direct_conv`) that adds up shifted input windows without unfolding
patches. Both keep plain tensors in their state dicts, so that a sparse model's
``state_dict()`` saved with ``torch.save`` loads with ``torch.load(..., weights_only=True)``
(see :func:`lth_prune.sparse.load_sparse_state_dict`), and both accept a state dict whose
number of nonzero weights differs from theirs.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lth_prune.sparse._direct_conv import conv2d_csr, output_size

__all__ = ["VectorizedMaxPool2d", "SparseConv2d", "SparseLinear"]


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
        self.register_buffer("weight", csr(weight))
        self.register_buffer("bias", None if bias is None else bias.detach().clone().reshape(-1, 1))

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() == 0 or input.shape[-1] != self.in_features:
            raise ValueError(
                f"SparseLinear(): input must be (*, in_features={self.in_features}), "
                f"got {tuple(input.shape)}."
            )
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

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # A sparse weight of another nnz cannot be copied into this one: take it as it is.
        _adopt(self, state_dict, prefix, ("weight", "bias"))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def __deepcopy__(self, memo: dict[int, Any]) -> SparseLinear:
        # copy.deepcopy of a CSR tensor fails in torch ("Cannot access storage of
        # SparseCsrTensorImpl"); clone() copies it.
        duplicate = self.__class__.__new__(self.__class__)
        memo[id(self)] = duplicate
        for key, value in self.__dict__.items():
            if key != "_buffers":
                duplicate.__dict__[key] = copy.deepcopy(value, memo)
        duplicate.__dict__["_buffers"] = {
            name: None if buffer is None else buffer.clone() for name, buffer in self._buffers.items()
        }
        return duplicate

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.weight.values().numel()}"


class SparseConv2d(nn.Module):
    """A 2-d convolution that computes only with its nonzero weights; inference only.

    For each output channel the layer keeps its nonzero weights (``values``) and their
    positions (``col_indices``, the index into the channel's flattened ``(in_channels / groups,
    kernel_h, kernel_w)`` weight), a CSR matrix of the ``(out_channels, in_channels / groups *
    kernel_h * kernel_w)`` weight with row offsets ``crow_indices``. On float32 CPU inputs it
    runs a compiled direct sparse convolution (vectorized, threaded over torch's threads); for
    other inputs, or where no C compiler is at hand, the CSR matrix times the unfolded input
    patches; under ``torch.jit.trace``, ``torch.export`` and ``torch.compile``, the dense
    convolution of the rebuilt weight. Results match ``nn.Conv2d`` to float rounding.

    Args:
        conv: the dense convolution, zeros where pruned. Any stride, dilation and groups;
            zero padding given as numbers or ``"valid"``.

    Raises:
        ValueError: if ``conv`` pads other than with zeros, or with ``padding="same"``.

    Shape:
        input ``(N, C_in, H, W)`` or ``(C_in, H, W)``, output ``(N, C_out, H_out, W_out)`` or
        ``(C_out, H_out, W_out)``.

    Example:
        >>> conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        >>> _ = torch.nn.utils.prune.l1_unstructured(conv, "weight", amount=0.9)
        >>> sparse = SparseConv2d(conv)
        >>> x = torch.randn(2, 3, 16, 16)
        >>> torch.allclose(sparse(x), conv(x), atol=1e-5)
        True
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        padding = (0, 0) if conv.padding == "valid" else conv.padding
        if conv.padding_mode != "zeros" or isinstance(padding, str):
            raise ValueError(
                "SparseConv2d(): conv must pad with zeros, by numbers or 'valid', got "
                f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}."
            )
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size: tuple[int, int] = tuple(conv.kernel_size)  # type: ignore[assignment]
        self.stride: tuple[int, int] = tuple(conv.stride)  # type: ignore[assignment]
        self.padding: tuple[int, int] = tuple(padding)  # type: ignore[assignment]
        self.dilation: tuple[int, int] = tuple(conv.dilation)  # type: ignore[assignment]
        self.groups = conv.groups
        matrix = csr(conv.weight.detach().reshape(conv.out_channels, -1))
        # Copies, not views of the CSR tensor: torch.export fakes a view through its base.
        self.register_buffer("crow_indices", matrix.crow_indices().clone())
        self.register_buffer("col_indices", matrix.col_indices().clone())
        self.register_buffer("values", matrix.values().clone())
        bias = conv.bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        # The kernel's tap offsets for each input shape seen; not state.
        self._plans: dict[tuple[int, ...], Tensor] = {}

    @property
    def weight(self) -> Tensor:
        """The weight as a ``(out_channels, in_channels / groups * kernel_h * kernel_w)`` CSR matrix."""
        columns = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch flags sparse CSR as beta
            return torch.sparse_csr_tensor(
                self.crow_indices, self.col_indices, self.values, (self.out_channels, columns),
                check_invariants=False,
            )

    def forward(self, input: Tensor) -> Tensor:
        unbatched = input.dim() == 3
        batch = input.unsqueeze(0) if unbatched else input
        if batch.shape not in self._plans:  # a shape seen before was checked then
            self._check(input, batch)
        buffers = self._buffers  # a dict look-up each, where attribute access costs 0.5 us
        out = conv2d_csr(
            batch, buffers["crow_indices"], buffers["col_indices"], buffers["values"],
            buffers["bias"], self.kernel_size, self.stride, self.padding, self.dilation,
            self.groups, self._plans,
        )
        return out[0] if unbatched else out

    def _check(self, input: Tensor, batch: Tensor) -> None:
        if batch.dim() != 4 or batch.shape[1] != self.in_channels:
            raise ValueError(
                f"SparseConv2d(): input must be (N, C_in={self.in_channels}, H, W) or "
                f"(C_in={self.in_channels}, H, W), got {tuple(input.shape)}."
            )
        sides = [
            output_size(batch.shape[2 + axis], self.kernel_size[axis], self.stride[axis],
                        self.padding[axis], self.dilation[axis])
            for axis in (0, 1)
        ]
        if min(sides) < 1:
            raise ValueError(
                f"SparseConv2d(): input {tuple(input.shape)} is smaller than the kernel "
                f"{self.kernel_size} with dilation {self.dilation} and padding {self.padding}."
            )

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        _adopt(self, state_dict, prefix, ("crow_indices", "col_indices", "values", "bias"))
        self._plans.clear()
        super()._load_from_state_dict(state_dict, prefix, *args)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._plans = {}

    def __getstate__(self) -> dict[str, Any]:
        # Plans are rebuilt on the first call; pickles and deep copies need not carry them.
        return {**self.__dict__, "_plans": {}}

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, nnz={self.values.numel()}")


class VectorizedMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` by vectorized torch operations on CPU: the same maxima.

    torch's CPU max pooling of a contiguous ``(N, C, H, W)`` tensor runs one window at a
    time: on the benchmark machine a 2x2 pool of a ``(64, 64, 32, 32)`` batch took 25-40 ms,
    a third of Conv-2's dense forward pass. A 2x2 pool with stride 2 is here the maximum of
    even and odd rows, then of even and odd columns (1.8 ms); any other pool runs in
    channels-last memory format, where torch's kernel is vectorized over the channels, and
    converts back (11 ms). The output is contiguous, as the next layer expects.
    """

    @classmethod
    def like(cls, pool: nn.MaxPool2d) -> VectorizedMaxPool2d:
        """The same pool as ``pool``: kernel, stride, padding, dilation and ceil mode."""
        return cls(pool.kernel_size, pool.stride, pool.padding, pool.dilation,
                   return_indices=False, ceil_mode=pool.ceil_mode)

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 4 or self.return_indices:
            return super().forward(input)
        height, width = input.shape[2], input.shape[3]
        if _pair(self.kernel_size) == _pair(self.stride) == (2, 2) and _pair(self.padding) == (0, 0) \
                and _pair(self.dilation) == (1, 1) and not (self.ceil_mode and (height % 2 or width % 2)):
            rows = 2 * (height // 2)
            pairs = torch.maximum(input[:, :, 0:rows:2], input[:, :, 1:rows:2])
            columns = 2 * (width // 2)
            return torch.maximum(pairs[..., 0:columns:2], pairs[..., 1:columns:2]).contiguous()
        pooled = F.max_pool2d(
            input.contiguous(memory_format=torch.channels_last), self.kernel_size, self.stride,
            self.padding, self.dilation, ceil_mode=self.ceil_mode,
        )
        return pooled.contiguous()


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _adopt(module: nn.Module, state_dict: dict[str, Any], prefix: str, names: tuple[str, ...]) -> None:
    # load_state_dict copies into the existing buffers, which needs equal shapes; the number of
    # nonzero weights is the shape of a sparse layer's state. Take the incoming tensors
    # (on this layer's device) so that any ticket of the same architecture loads.
    for name in names:
        incoming = state_dict.get(prefix + name)
        if isinstance(incoming, Tensor):
            current = module._buffers[name]
            device = current.device if current is not None else incoming.device
            module._buffers[name] = incoming.detach().to(device).clone()
            state_dict[prefix + name] = module._buffers[name]


# 32-bit CSR indices where they fit: torch's CPU products convert 64-bit ones on every call
# (to the 32-bit indices MKL takes), which made a batch-1 product 1.5-2x slower and a
# batch-128 one 3-14 % slower on the benchmark machine; the convolution kernel takes 32-bit ones.
_INT32_LIMIT = 2**31 - 1


def csr(dense: Tensor) -> Tensor:
    """``dense`` (2-d) as a CSR tensor, with 32-bit indices where they fit."""
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
