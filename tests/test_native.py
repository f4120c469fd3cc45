"""The C kernel behind masked gradients: bit-for-bit torch's mul_, built once, optional."""
from __future__ import annotations

import math
import shlex
import shutil

import pytest
import torch

from lth_prune.sparse import _native


@pytest.fixture
def fresh_library(monkeypatch, tmp_path):
    """``_native`` with its cache in ``tmp_path`` and its build not yet tried."""
    monkeypatch.setenv("LTH_PRUNE_CACHE", str(tmp_path))
    monkeypatch.delenv("LTH_PRUNE_NATIVE", raising=False)
    _native._library.cache_clear()
    yield tmp_path
    _native._library.cache_clear()


def _needs_kernel() -> None:
    if not _native.native_available():
        pytest.skip("no C compiler here: the C kernel is not built")


def _special_values(count: int, dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(count, generator=generator, dtype=dtype)
    values[:6] = torch.tensor([math.nan, math.inf, -math.inf, -0.0, 0.0, -1.5], dtype=dtype)
    return values


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
# 7, 33, 1000: vector widths and remainders of the SSE2, AVX2 and AVX-512 loops; 70,001:
# past the threshold for threads.
@pytest.mark.parametrize("count", [7, 33, 1000, 70_001])
@pytest.mark.parametrize("keep_dtype", [torch.uint8, torch.bool])
def test_kernel_equals_torch_mul_bit_for_bit(dtype, count, keep_dtype):
    _needs_kernel()
    values = _special_values(count, dtype)
    keep = (torch.rand(count, generator=torch.Generator().manual_seed(1)) < 0.3).to(keep_dtype)
    keep[:6] = torch.tensor([0, 0, 1, 0, 1, 0]).to(keep_dtype)
    expected = values.clone().mul_(keep)
    assert _native._kernel_for(values, keep) is not None
    _native.mask_(values, keep)
    # Same bits, NaN for NaN * 0 and -0.0 for -x * 0 included.
    assert torch.equal(values.view(torch.int64 if dtype == torch.float64 else torch.int32),
                       expected.view(torch.int64 if dtype == torch.float64 else torch.int32))


def test_kernel_writes_a_view_at_its_offset_only():
    _needs_kernel()
    base = torch.ones(3, 100)
    row = base[1]
    _native.mask_(row, torch.zeros(100, dtype=torch.uint8))
    assert base[0].eq(1).all() and base[2].eq(1).all() and base[1].eq(0).all()


@pytest.mark.parametrize("case", ["half", "strided", "shape", "int_mask"])
def test_other_tensors_take_torch_mul(case):
    values, keep = torch.randn(8, 6), (torch.rand(8, 6) < 0.5).to(torch.uint8)
    if case == "half":
        values = values.half()
    elif case == "strided":
        values, keep = values.t(), keep.t()
    elif case == "shape":
        keep = keep[:1].clone()  # broadcasts in torch, so mask_ must not read past it
    else:
        keep = keep.to(torch.int32)
    assert _native._kernel_for(values, keep) is None
    expected = values * keep
    _native.mask_(values, keep)
    assert torch.equal(values, expected)


def test_built_once_and_reused(fresh_library):
    _needs_kernel()
    built = list(fresh_library.glob("native-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    _native._library.cache_clear()
    assert _native.native_available()
    assert built[0].stat().st_mtime_ns == stamp, "a cached library was rebuilt"
    assert not list(fresh_library.glob(".*partial")), "a partial build was left behind"


def test_disabled_by_environment(fresh_library, monkeypatch):
    monkeypatch.setenv("LTH_PRUNE_NATIVE", "0")
    assert not _native.native_available()
    values, keep = torch.randn(100), torch.zeros(100, dtype=torch.uint8)
    _native.mask_(values, keep)
    assert values.eq(0).all()
    assert not list(fresh_library.iterdir()), "nothing may be built when disabled"


def test_failed_build_warns_and_falls_back(fresh_library, monkeypatch):
    monkeypatch.setenv("CC", str(fresh_library / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="could not build its C kernel.*LTH_PRUNE_NATIVE=0"):
        assert not _native.native_available()
    values, keep = torch.randn(100), torch.ones(100, dtype=torch.uint8)
    expected = values.clone()
    _native.mask_(values, keep)
    assert torch.equal(values, expected)


def test_compiler_errors_are_reported(fresh_library, monkeypatch):
    failing = fresh_library / "failing-cc"
    failing.write_text("#!/bin/sh\necho 'cc: fatal error: broken' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CC", str(failing))
    with pytest.warns(RuntimeWarning, match="fatal error: broken"):
        assert not _native.native_available()
    assert not list(fresh_library.glob("*.so")) and not list(fresh_library.glob(".*partial"))


def test_portable_build_where_clones_fail(fresh_library, monkeypatch):
    # A C library without ifunc support rejects target_clones: the build is tried again
    # with one baseline loop, and that library is used.
    real = shutil.which("cc") or shutil.which("gcc")
    if real is None:
        pytest.skip("no C compiler here")
    wrapper = fresh_library / "no-ifunc-cc"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *-DLTH_PRUNE_PORTABLE*) ;; *) echo "error: ifunc not supported" >&2; exit 1;; esac\n'
        f'exec {shlex.quote(real)} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    assert _native.native_available()
    values, keep = _special_values(1000, torch.float32), (torch.arange(1000) % 3 == 0).to(torch.uint8)
    expected = values.clone().mul_(keep)
    _native.mask_(values, keep)
    assert torch.equal(values.view(torch.int32), expected.view(torch.int32))


def test_masker_leaves_the_c_loop_for_tensors_it_was_not_made_for():
    _needs_kernel()
    keep = (torch.rand(50, generator=torch.Generator().manual_seed(2)) < 0.5).to(torch.uint8)
    apply = _native.masker(torch.empty(50), keep)
    for values in (torch.randn(50, dtype=torch.float64), torch.randn(100)[::2], torch.randn(50)):
        expected = values * keep
        apply(values)
        assert torch.equal(values, expected)
    with pytest.raises(RuntimeError):
        apply(torch.randn(60))  # a wrong size goes to torch, which refuses it
