"""One C kernel, compiled on first use: zero the pruned entries of a tensor in one pass.

The pruned entries are selected to ``+0.0``, not multiplied by 0: ``NaN * 0`` is NaN, and a
NaN or infinite gradient at a pruned entry would move a pruned weight. torch's fallback
(:func:`lth_prune._reparam.zero_pruned_`, an integer multiply over the floats' bits) gives
bit-for-bit the same result but, like ``grad.mul_(keep)``, makes torch widen the 1-byte mask
into a temporary as large as the gradient before it multiplies: three passes over the memory
instead of one. On the 2-core benchmark machine that made :func:`lth_prune.masked_training`'s LeNet-300-100
step 1.05-1.08x the dense one (a float mask: 1.04x, at four times the mask memory). The loop in
``_native.c`` reads the byte mask directly, compiled for AVX-512 and AVX2 where the processor
has them: 1.02-1.04x at every sparsity level in the latest benchmark run (1.02-1.09x in the two
runs before, with the baseline SSE2 loop alone).

It is built with the system C compiler (``$CC``, else ``cc``) the first time a contiguous
float32 or float64 CPU tensor is masked, and cached as a shared library under
``$LTH_PRUNE_CACHE``, else ``$XDG_CACHE_HOME/lth_prune``, else ``~/.cache/lth_prune``, named
by a hash of its source, compiler and platform; with OpenMP where the compiler has it (torch's
own ``libgomp`` is the one loaded), and on x86-64 with AVX-512, AVX2 and baseline versions of
each loop, of which the loader picks the widest the processor runs. Where there is no
compiler, the build fails, the tensor is of another kind (another dtype or device, strided),
or ``LTH_PRUNE_NATIVE=0`` is set, :func:`mask_` falls back to
:func:`lth_prune._reparam.zero_pruned_`, which gives bit-for-bit the same result.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from lth_prune._reparam import zero_pruned_
from lth_prune.sparse._compile import compiled

__all__ = ["mask_", "masker", "native_available"]

_SOURCE = Path(__file__).with_name("_native.c")
_KERNELS = {torch.float32: "lth_mask_float32", torch.float64: "lth_mask_float64"}
# Flags to try in order: OpenMP splits a large tensor over torch's threads; without it the
# loop still beats torch's three passes on one thread. LTH_PRUNE_PORTABLE drops the
# per-instruction-set clones of _native.c, for a C library without ifunc support (musl).
_FLAG_SETS = (
    ("-O3", "-fopenmp"),
    ("-O3", "-fopenmp", "-DLTH_PRUNE_PORTABLE"),
    ("-O3",),
    ("-O3", "-DLTH_PRUNE_PORTABLE"),
)

# Entries per in-place multiply in the fallback. ``mul_`` widens the uint8 mask into a
# temporary of the operand's width as large as the operand: for a 4096 x 4096 layer a fresh 64 MiB buffer each step,
# whose page faults cost more than the multiply (28 ms against 7 ms in 2**18-entry slices on
# the 2-core benchmark machine). Slices keep that temporary at 1 MiB.
_MASK_SLICE = 1 << 18


def mask_(values: Tensor, keep: Tensor) -> None:
    """``values = where(keep, values, 0)`` in place, ``keep`` a uint8 or bool tensor of 0 and 1.

    Pruned entries become ``+0.0`` whatever they held (NaN and infinity included); kept
    entries keep their bits. Writes through the tensor's memory, bypassing autograd's version
    counter: for gradients and other tensors no graph has saved.
    """
    kernel = _kernel_for(values, keep)
    if kernel is not None:
        kernel(values.data_ptr(), keep.data_ptr(), values.numel())
        return
    if values.numel() <= _MASK_SLICE or not values.is_contiguous() or values.device.type != "cpu":
        zero_pruned_(values, keep)
        return
    flat, flat_keep = values.view(-1), keep.reshape(-1)
    for start in range(0, flat.numel(), _MASK_SLICE):
        zero_pruned_(flat[start:start + _MASK_SLICE], flat_keep[start:start + _MASK_SLICE])


def masker(like: Tensor, keep: Tensor) -> Callable[[Tensor], None]:
    """``mask_(values, keep)`` for tensors of ``like``'s shape, dtype and device, set up once.

    For a hook that runs every step on a gradient (autograd gives a parameter's gradient the
    parameter's shape, dtype and device): the checks of :func:`mask_` took 10-14 us per call on
    the benchmark machine, as long as the C loop over a 30,000-entry gradient. What is left per
    call are the cheap checks that keep the C loop off a tensor it was not set up for (the
    model moved to another device or dtype after the hook was made).
    """
    kernel = _kernel_for(like, keep)
    if kernel is None:
        return functools.partial(mask_, keep=keep)
    keep_address, count, dtype = keep.data_ptr(), keep.numel(), like.dtype

    def apply(values: Tensor) -> None:
        if values.dtype == dtype and values.is_cpu and values.numel() == count and values.is_contiguous():
            kernel(values.data_ptr(), keep_address, count)
        else:
            mask_(values, keep)

    apply.keep = keep  # type: ignore[attr-defined]  # the memory keep_address points into
    return apply


def native_available() -> bool:
    """Whether the C kernel is built and loaded (building it now if it has not been tried)."""
    return _library() is not None


def _kernel_for(values: Tensor, keep: Tensor) -> Callable[[int, int, int], None] | None:
    name = _KERNELS.get(values.dtype)
    if (
        name is None
        or values.device.type != "cpu"
        or keep.device.type != "cpu"
        or values.layout != torch.strided
        or keep.dtype not in (torch.uint8, torch.bool)
        or keep.shape != values.shape
        or not values.is_contiguous()
        or not keep.is_contiguous()
    ):
        return None
    library = _library()
    return None if library is None else getattr(library, name)


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL | None:
    library = compiled(
        "native", _SOURCE, _FLAG_SETS,
        "masked gradients use torch's in-place multiply instead (the same bits, a few percent slower)",
    )
    if library is None:
        return None
    for name in _KERNELS.values():
        kernel = getattr(library, name)
        kernel.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
        kernel.restype = None
    return library
