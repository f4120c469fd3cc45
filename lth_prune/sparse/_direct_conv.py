"""The direct sparse convolution behind :class:`lth_prune.SparseConv2d`: a C kernel, built on first use.

A sparse product over unfolded input patches reads ``kernel_h * kernel_w`` copies of the input
and lost to the dense convolution at every density the benchmarks tried. ``_direct_conv.c``
instead walks, for each output channel, its nonzero taps (input channel, ky, kx) and adds each
tap's weight times a shifted window of the input, vectorized and threaded (see the C source
for the layout). It is built and cached as the mask loop of ``_native.c`` is
(:mod:`lth_prune.sparse._compile`): with the system C compiler, OpenMP where it has it, and on
x86-64 AVX-512, AVX2 and baseline clones; then without the clones, then without OpenMP.

:func:`conv2d_csr` runs it on a contiguous float32 CPU input. Where the kernel cannot run (no
compiler, a failed build, ``LTH_PRUNE_NATIVE=0``, another dtype or device) it computes the
same convolution as a CSR matrix times the unfolded patches, the form :class:`SparseConv2d`
had before; under ``torch.jit.trace``, ``torch.export`` and ``torch.compile`` it runs the dense
convolution of the rebuilt weight, which those tools can follow (a ctypes call they cannot).
"""
from __future__ import annotations

import ctypes
import functools
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lth_prune.sparse._compile import compiled

__all__ = ["conv2d_csr", "direct_conv_available", "output_size"]

_SOURCE = Path(__file__).with_name("_direct_conv.c")
# As for the mask loop (see _native.py): OpenMP and the instruction-set clones first, then
# without the clones (a C library without ifunc), then without OpenMP. -Wno-psabi: GCC notes
# that 64-byte vectors change the calling convention of functions that are all inlined here.
_FLAG_SETS = (
    ("-O3", "-fopenmp", "-Wno-psabi"),
    ("-O3", "-fopenmp", "-Wno-psabi", "-DLTH_PRUNE_PORTABLE"),
    ("-O3", "-Wno-psabi"),
    ("-O3", "-Wno-psabi", "-DLTH_PRUNE_PORTABLE"),
)
# Bytes of input windows one pass over the output channels works on: they should stay in the
# L2 cache while every channel reads them (2 MiB per core on the benchmark machine; 1 MiB
# leaves room for the taps, the weights and the outputs).
CACHE_BYTES = 1 << 20
_STATUS = {1: "out of memory", 2: "a geometry the kernel does not take"}


def direct_conv_available() -> bool:
    """Whether the C kernel is built and loaded (building it now if it has not been tried)."""
    return _library() is not None


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output rows (or columns) of a convolution over ``size`` input rows (or columns)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv2d_csr(
    input: Tensor,
    crow: Tensor,
    col: Tensor,
    values: Tensor,
    bias: Tensor | None,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    plans: dict[torch.Size, Any] | None = None,
) -> Tensor:
    """``F.conv2d(input, weight, bias, stride, padding, dilation, groups)`` from a CSR weight.

    Args:
        input: ``(N, C_in, H, W)``.
        crow: ``(C_out + 1,)`` int32 row offsets of the weight as a ``(C_out, C_in / groups *
            kernel_h * kernel_w)`` CSR matrix.
        col: ``(nnz,)`` int32 column of each nonzero weight, increasing within a row.
        values: ``(nnz,)`` the nonzero weights, in the input's dtype.
        bias: ``(C_out,)`` or ``None``.
        kernel_size, stride, padding, dilation: pairs of ints (rows, columns).
        groups: as in ``nn.Conv2d``.
        plans: a dict the caller keeps to cache the kernel's plan (the taps' offsets for one
            input shape) between calls; ``None`` computes it on every call.

    Returns:
        ``(N, C_out, H_out, W_out)``.
    """
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return _dense(input, crow, col, values, bias, kernel_size, stride, padding, dilation, groups)
    # The steady state, a shape seen before: a dict look-up, a few checks and the C call.
    plan = plans.get(input.shape) if plans is not None else None
    if plan is None or not plan.made_from(crow, col, values, bias):
        plan = _make_plan(input, crow, col, values, bias, kernel_size, stride, padding, dilation, groups)
        if plans is not None and plan is not None:
            if len(plans) >= _PLANS_KEPT:
                plans.pop(next(iter(plans)))
            plans[input.shape] = plan
    if plan is None or input.dtype != torch.float32 or input.device.type != "cpu":
        return _unfolded(input, crow, col, values, bias, kernel_size, stride, padding, dilation, groups)
    input = input.contiguous()
    output = torch.empty(plan.output_shape)
    status = plan.kernel(
        input.data_ptr(), output.data_ptr(), plan.taps_address, plan.bias_address, plan.geometry,
        torch.get_num_threads(), CACHE_BYTES,
    )
    if status != 0:
        raise RuntimeError(f"conv2d_csr(): the C kernel failed: {_STATUS.get(status, status)}.")
    return output


# Plans kept per caller: a model sees a few input shapes (a batch size, a last smaller batch).
_PLANS_KEPT = 8


class _Plan:
    """The C kernel's taps for one input shape, and what they were made from."""

    __slots__ = ("taps", "taps_address", "bias_address", "geometry", "output_shape", "kernel",
                 "sources", "versions")

    def __init__(self, taps: Tensor, geometry: ctypes.Array, output_shape: tuple[int, ...],
                 kernel: Callable[..., int], sources: tuple[Tensor | None, ...]) -> None:
        self.taps, self.taps_address = taps, taps.data_ptr()
        self.geometry, self.output_shape, self.kernel = geometry, output_shape, kernel
        self.sources = sources
        self.bias_address = None if sources[3] is None else sources[3].data_ptr()
        self.versions = sources[2]._version

    def made_from(self, crow: Tensor, col: Tensor, values: Tensor, bias: Tensor | None) -> bool:
        """Whether these are the tensors the plan was made from, the weights unchanged since."""
        crow_then, col_then, values_then, bias_then = self.sources
        return (
            crow is crow_then and col is col_then and values is values_then and bias is bias_then
            and values._version == self.versions
        )


def _make_plan(
    input: Tensor, crow: Tensor, col: Tensor, values: Tensor, bias: Tensor | None,
    kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
    dilation: tuple[int, int], groups: int,
) -> _Plan | None:
    """The kernel's plan for this input, or ``None`` where the kernel does not take it."""
    library = _library() if _kernel_takes(input, crow, col, values, bias) else None
    if library is None:
        return None
    batch, channels, height, width = input.shape
    out_h = output_size(height, kernel_size[0], stride[0], padding[0], dilation[0])
    out_w = output_size(width, kernel_size[1], stride[1], padding[1], dilation[1])
    if batch < 1 or out_h < 1 or out_w < 1:
        return None
    geometry = (ctypes.c_int64 * 16)(
        batch, channels, height, width, crow.numel() - 1, out_h, out_w, *kernel_size, *stride,
        *padding, *dilation, groups,
    )
    words = library.lth_sparse_conv2d_plan_words(crow.data_ptr(), geometry, CACHE_BYTES)
    if words < 0:
        return None
    taps = torch.empty(max(1, words), dtype=torch.int32)
    status = library.lth_sparse_conv2d_plan(
        crow.data_ptr(), col.data_ptr(), values.data_ptr(), geometry, CACHE_BYTES, taps.data_ptr()
    )
    if status != 0:
        return None
    return _Plan(taps, geometry, (batch, crow.numel() - 1, out_h, out_w),
                 library.lth_sparse_conv2d_float32, (crow, col, values, bias))


def _kernel_takes(input: Tensor, crow: Tensor, col: Tensor, values: Tensor, bias: Tensor | None) -> bool:
    floats = [input, values] if bias is None else [input, values, bias]
    return (
        all(t.dtype == torch.float32 and t.device.type == "cpu" and t.layout == torch.strided for t in floats)
        and all(t.dtype == torch.int32 and t.device.type == "cpu" for t in (crow, col))
        and all(t.is_contiguous() for t in (crow, col, values)) and (bias is None or bias.is_contiguous())
    )


def _weight(crow: Tensor, col: Tensor, values: Tensor, kernel_size: tuple[int, int], in_per_group: int) -> Tensor:
    """The dense ``(C_out, C_in / groups, kernel_h, kernel_w)`` weight."""
    out_channels = crow.numel() - 1
    taps = in_per_group * kernel_size[0] * kernel_size[1]
    rows = torch.repeat_interleave(torch.arange(out_channels, device=values.device), crow.diff().long())
    weight = values.new_zeros(out_channels * taps)
    weight[rows * taps + col.long()] = values
    return weight.reshape(out_channels, in_per_group, *kernel_size)


def _dense(
    input: Tensor, crow: Tensor, col: Tensor, values: Tensor, bias: Tensor | None,
    kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
    dilation: tuple[int, int], groups: int,
) -> Tensor:
    weight = _weight(crow, col, values, kernel_size, input.shape[1] // groups)
    return F.conv2d(input, weight, bias, stride, padding, dilation, groups)


def _unfolded(
    input: Tensor, crow: Tensor, col: Tensor, values: Tensor, bias: Tensor | None,
    kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
    dilation: tuple[int, int], groups: int,
) -> Tensor:
    # Each group's rows of the CSR matrix times its channels' unfolded patches.
    batch, channels, height, width = input.shape
    out_channels = crow.numel() - 1
    out_h = output_size(height, kernel_size[0], stride[0], padding[0], dilation[0])
    out_w = output_size(width, kernel_size[1], stride[1], padding[1], dilation[1])
    patches = F.unfold(input, kernel_size, dilation, padding, stride)  # (N, C*kh*kw, L)
    taps = channels // groups * kernel_size[0] * kernel_size[1]
    per_group = out_channels // groups
    outputs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch flags sparse CSR as beta
        for group in range(groups):
            start, stop = int(crow[group * per_group]), int(crow[(group + 1) * per_group])
            rows = crow[group * per_group:(group + 1) * per_group + 1] - start
            matrix = torch.sparse_csr_tensor(
                rows, col[start:stop], values[start:stop], (per_group, taps), check_invariants=False
            )
            columns = patches[:, group * taps:(group + 1) * taps].transpose(0, 1).reshape(taps, -1)
            outputs.append(matrix @ columns)  # (per_group, N*L)
    out = torch.cat(outputs) if groups > 1 else outputs[0]
    if bias is not None:
        out = out + bias.reshape(-1, 1)
    return out.reshape(out_channels, batch, out_h, out_w).transpose(0, 1)


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL | None:
    library = compiled(
        "direct_conv", _SOURCE, _FLAG_SETS,
        "sparse convolutions multiply unfolded patches instead, which seldom beats the dense convolution",
    )
    if library is None:
        return None
    geometry = ctypes.POINTER(ctypes.c_int64)
    pointer = ctypes.c_void_p
    library.lth_sparse_conv2d_plan_words.argtypes = (pointer, geometry, ctypes.c_int64)
    library.lth_sparse_conv2d_plan_words.restype = ctypes.c_int64
    library.lth_sparse_conv2d_plan.argtypes = (pointer, pointer, pointer, geometry, ctypes.c_int64, pointer)
    library.lth_sparse_conv2d_plan.restype = ctypes.c_int
    library.lth_sparse_conv2d_float32.argtypes = (
        pointer, pointer, pointer, pointer, geometry, ctypes.c_int64, ctypes.c_int64,
    )
    library.lth_sparse_conv2d_float32.restype = ctypes.c_int
    return library
