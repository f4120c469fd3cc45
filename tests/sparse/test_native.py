"""The C kernel behind masked gradients: a select, bit-for-bit its torch fallback, built once, optional."""
from __future__ import annotations

import math
import shlex
import shutil

import pytest
import torch

from lth_prune._reparam import zero_pruned_
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
    # The same specials again at entries that are kept below.
    values[6:12] = torch.tensor([math.nan, math.inf, -math.inf, -0.0, 0.0, -1.5], dtype=dtype)
    return values


# The pruned and kept pattern of the first 12 entries: each special value once pruned, once kept.
_SPECIAL_KEEP = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]


def _bits(values: torch.Tensor) -> torch.Tensor:
    return values.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[values.element_size()])


def _selected(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The reference: kept entries as they are, pruned ones +0.0."""
    return torch.where(keep.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
# 13, 33, 1000: vector widths and remainders of the SSE2, AVX2 and AVX-512 loops; 70,001:
# past the threshold for threads.
@pytest.mark.parametrize("count", [13, 33, 1000, 70_001])
@pytest.mark.parametrize("keep_dtype", [torch.uint8, torch.bool])
def test_kernel_equals_the_forced_torch_fallback_bit_for_bit(dtype, count, keep_dtype, monkeypatch):
    _needs_kernel()
    values = _special_values(count, dtype)
    keep = (torch.rand(count, generator=torch.Generator().manual_seed(1)) < 0.3).to(keep_dtype)
    keep[:12] = torch.tensor(_SPECIAL_KEEP).to(keep_dtype)
    fallback = values.clone()
    with monkeypatch.context() as patched:
        patched.setattr(_native, "_kernel_for", lambda values, keep: None)
        _native.mask_(fallback, keep)
    assert _native._kernel_for(values, keep) is not None
    _native.mask_(values, keep)
    # Same bits: NaN, infinity and -0.0 become +0.0 where pruned, and keep their bits where kept.
    assert torch.equal(_bits(values), _bits(fallback))
    assert torch.equal(_bits(values), _bits(_selected(_special_values(count, dtype), keep)))
    assert _bits(values[:6]).eq(0).all()
    assert torch.isnan(values[6]) and values[7] == math.inf and values[8] == -math.inf
    assert math.copysign(1.0, float(values[9])) == -1.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("keep_dtype", [torch.uint8, torch.bool])
def test_torch_fallback_selects_on_any_device(dtype, keep_dtype, device):
    values = _special_values(1000, torch.float64).to(dtype).to(device)
    keep = (torch.arange(1000) % 3 == 0).to(keep_dtype)
    keep[:12] = torch.tensor(_SPECIAL_KEEP).to(keep_dtype)
    keep = keep.to(device)
    expected = _selected(values, keep)
    zero_pruned_(values, keep)
    assert torch.equal(_bits(values), _bits(expected))
    assert _bits(values[:6]).eq(0).all() and torch.isnan(values[6])


def test_torch_fallback_in_slices_equals_the_whole_tensor(monkeypatch):
    values = _special_values(1000, torch.float32)
    keep = (torch.arange(1000) % 4 == 0).to(torch.uint8)
    keep[:12] = torch.tensor(_SPECIAL_KEEP, dtype=torch.uint8)
    monkeypatch.setattr(_native, "_kernel_for", lambda values, keep: None)
    monkeypatch.setattr(_native, "_MASK_SLICE", 7)  # slices that split the tensor unevenly
    expected = _selected(values, keep)
    _native.mask_(values, keep)
    assert torch.equal(_bits(values), _bits(expected))


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
    values[0, 0], values[0, 1] = math.nan, math.inf
    expected = _selected(values, keep)
    _native.mask_(values, keep)
    assert torch.equal(_bits(values), _bits(expected))


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
    with pytest.warns(RuntimeWarning, match=r"could not build _native\.c .*in-place multiply.*LTH_PRUNE_NATIVE=0"):
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
    keep[:12] = torch.tensor(_SPECIAL_KEEP, dtype=torch.uint8)
    expected = _selected(values, keep)
    _native.mask_(values, keep)
    assert torch.equal(values.view(torch.int32), expected.view(torch.int32))


def test_masker_leaves_the_c_loop_for_tensors_it_was_not_made_for():
    _needs_kernel()
    keep = (torch.rand(50, generator=torch.Generator().manual_seed(2)) < 0.5).to(torch.uint8)
    apply = _native.masker(torch.empty(50), keep)
    for values in (torch.randn(50, dtype=torch.float64), torch.randn(100)[::2], torch.randn(50)):
        values[:2] = math.nan
        expected = _selected(values, keep)
        apply(values)
        assert torch.equal(_bits(values), _bits(expected))
    with pytest.raises(RuntimeError):
        apply(torch.randn(60))  # a wrong size goes to torch, which refuses it
