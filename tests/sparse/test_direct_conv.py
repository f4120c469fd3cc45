"""The direct sparse convolution: F.conv2d's outputs from the C kernel and from its fallbacks,
for every geometry the registry's models and torchvision's ResNets use; built once, optional."""
from __future__ import annotations

import re
import shlex
import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F

from lth_prune.sparse import _direct_conv


@pytest.fixture
def fresh_library(monkeypatch, tmp_path):
    """``_direct_conv`` with its cache in ``tmp_path`` and its build not yet tried."""
    monkeypatch.setenv("LTH_PRUNE_CACHE", str(tmp_path))
    monkeypatch.delenv("LTH_PRUNE_NATIVE", raising=False)
    _direct_conv._library.cache_clear()
    yield tmp_path
    _direct_conv._library.cache_clear()


def _needs_kernel() -> None:
    if not _direct_conv.direct_conv_available():
        pytest.skip("no C compiler here: the C kernel is not built")


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


def _case(batch, channels, out_channels, size, kernel, stride=1, padding=0, dilation=1,
          groups=1, density=0.2, bias=True, seed=0):
    """A sparse weight and an input, with the weight's CSR arrays as the layers keep them."""
    generator = torch.Generator().manual_seed(seed)
    kernel = _pair(kernel)
    shape = (out_channels, channels // groups, *kernel)
    weight = torch.randn(shape, generator=generator) * (torch.rand(shape, generator=generator) < density)
    height, width = _pair(size)
    x = torch.randn(batch, channels, height, width, generator=generator)
    b = torch.randn(out_channels, generator=generator) if bias else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch flags sparse CSR as beta
        matrix = weight.reshape(out_channels, -1).to_sparse_csr()
    arrays = (matrix.crow_indices().to(torch.int32), matrix.col_indices().to(torch.int32), matrix.values())
    geometry = (kernel, _pair(stride), _pair(padding), _pair(dilation), groups)
    expected = F.conv2d(x, weight, b, _pair(stride), _pair(padding), _pair(dilation), groups)
    return x, arrays, b, geometry, expected


# (batch, channels, out_channels, size, kernel, stride, padding, dilation, groups): the layers
# of Conv-2/4/6, Network, ResNet-20, VGG-16 and torchvision's ResNets (7x7 stride-2 stem,
# 1x1 stride-1 and stride-2 projections, grouped 3x3 of ResNeXt), and odd ones.
GEOMETRIES = [
    (1, 3, 64, 32, 3, 1, 1, 1, 1),  # first layer
    (2, 64, 64, 32, 3, 1, 1, 1, 1),  # 3x3 middle layer
    (3, 64, 128, 16, 3, 1, 1, 1, 1),
    (2, 256, 256, 8, 3, 1, 1, 1, 1),
    (5, 512, 512, 2, 3, 1, 1, 1, 1),  # VGG's 2x2 maps, images side by side
    (2, 3, 64, 32, 3, 2, 1, 1, 1),  # Network's stride-2 first layer
    (2, 16, 32, 32, 3, 2, 1, 1, 1),  # ResNet-20's downsampling 3x3
    (2, 16, 32, 32, 1, 2, 0, 1, 1),  # its 1x1 stride-2 shortcut
    (2, 32, 64, 20, 1, 1, 0, 1, 1),  # a 1x1 read in place (torchvision's bottlenecks)
    (3, 32, 16, 5, 1, 1, 0, 1, 1),  # a 1x1 on a small map, images side by side
    (1, 3, 16, 40, 7, 2, 3, 1, 1),  # torchvision's 7x7 stride-2 stem
    (2, 8, 16, 12, 3, 1, 1, 1, 4),  # grouped (ResNeXt)
    (2, 8, 8, 12, 3, 1, 1, 1, 8),  # depthwise
    (2, 4, 6, 11, 3, 1, 2, 2, 1),  # dilation
    (2, 6, 6, (13, 17), (3, 5), (2, 3), (1, 2), (2, 1), 3),  # everything asymmetric
    (2, 4, 5, (9, 10), 3, 1, 0, 1, 1),  # no padding: the grid is narrower than the input
    (3, 4, 4, 7, 3, 3, 2, 1, 2),  # stride 3
    (1, 4, 4, 1, 3, 1, 1, 1, 1),  # a 1x1 map
    (70, 3, 4, 3, 3, 1, 1, 1, 1),  # many images: several window buffers, the last one smaller
]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[str(g) for g in GEOMETRIES])
@pytest.mark.parametrize("density", [0.0, 0.05, 1.0])
def test_kernel_matches_conv2d(geometry, density):
    _needs_kernel()
    batch, channels, out_channels, size, kernel, stride, padding, dilation, groups = geometry
    x, arrays, b, shape, expected = _case(batch, channels, out_channels, size, kernel, stride,
                                          padding, dilation, groups, density, bias=density != 0.05)
    plans = {}
    out = _direct_conv.conv2d_csr(x, *arrays, b, *shape, plans)
    assert len(plans) == 1, "the C kernel did not run"
    assert out.shape == expected.shape and out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
# 9 small maps: two window buffers, whose tiles the threads share; 8 large maps: one buffer
# per image, and each thread takes whole buffers.
@pytest.mark.parametrize(("batch", "size"), [(9, 14), (8, 32)])
def test_threads_give_the_same_outputs(threads, batch, size):
    _needs_kernel()
    x, arrays, b, shape, expected = _case(batch, 32, 48, size, 3, 1, 1, density=0.3)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = _direct_conv.conv2d_csr(x, *arrays, b, *shape, {})
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("geometry", GEOMETRIES[:3] + GEOMETRIES[10:15], ids=str)
def test_fallbacks_match_conv2d(geometry):
    batch, channels, out_channels, size, kernel, stride, padding, dilation, groups = geometry
    x, arrays, b, shape, expected = _case(batch, channels, out_channels, size, kernel, stride,
                                          padding, dilation, groups)
    # The product over unfolded patches (no compiler), and the dense convolution of the
    # rebuilt weight (under tracing and export).
    torch.testing.assert_close(_direct_conv._unfolded(x, *arrays, b, *shape), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(_direct_conv._dense(x, *arrays, b, *shape), expected, rtol=1e-5, atol=1e-5)


def test_compiled_and_fallback_agree():
    _needs_kernel()
    x, arrays, b, shape, _ = _case(4, 16, 32, 16, 3, 1, 1, density=0.1)
    compiled = _direct_conv.conv2d_csr(x, *arrays, b, *shape, {})
    torch.testing.assert_close(compiled, _direct_conv._unfolded(x, *arrays, b, *shape), rtol=1e-5, atol=1e-5)


def test_other_dtypes_take_the_fallback():
    x, arrays, b, shape, expected = _case(2, 4, 6, 8, 3, 1, 1)
    plans = {}
    out = _direct_conv.conv2d_csr(x.double(), arrays[0], arrays[1], arrays[2].double(), b.double(), *shape, plans)
    assert out.dtype == torch.float64 and not plans
    torch.testing.assert_close(out.float(), expected, rtol=1e-4, atol=1e-4)


def test_plan_is_reused_and_renewed_when_the_weights_change():
    _needs_kernel()
    x, (crow, col, values), b, shape, expected = _case(2, 8, 8, 10, 3, 1, 1)
    plans = {}
    _direct_conv.conv2d_csr(x, crow, col, values, b, *shape, plans)
    first = plans[x.shape]
    _direct_conv.conv2d_csr(x, crow, col, values, b, *shape, plans)
    assert plans[x.shape] is first
    values.mul_(2)  # the plan holds a copy of the weights: it must be made again
    out = _direct_conv.conv2d_csr(x, crow, col, values, b, *shape, plans)
    assert plans[x.shape] is not first
    shift = b.reshape(1, -1, 1, 1)
    torch.testing.assert_close(out - shift, 2 * (expected - shift), rtol=1e-4, atol=1e-4)


def test_built_once_and_reused(fresh_library):
    _needs_kernel()
    built = list(fresh_library.glob("direct_conv-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    _direct_conv._library.cache_clear()
    assert _direct_conv.direct_conv_available()
    assert built[0].stat().st_mtime_ns == stamp, "a cached library was rebuilt"
    assert not list(fresh_library.glob(".*partial")), "a partial build was left behind"


def test_disabled_by_environment(fresh_library, monkeypatch):
    monkeypatch.setenv("LTH_PRUNE_NATIVE", "0")
    assert not _direct_conv.direct_conv_available()
    x, arrays, b, shape, expected = _case(2, 4, 6, 8, 3, 1, 1)
    plans = {}
    torch.testing.assert_close(_direct_conv.conv2d_csr(x, *arrays, b, *shape, plans), expected, rtol=1e-4, atol=1e-4)
    assert not plans and not list(fresh_library.iterdir()), "nothing may be built when disabled"


def test_failing_compiler_warns_and_falls_back(fresh_library, monkeypatch):
    failing = fresh_library / "failing-cc"
    failing.write_text("#!/bin/sh\necho 'cc: fatal error: broken' >&2\nexit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("CC", str(failing))
    with pytest.warns(RuntimeWarning, match=r"could not build _direct_conv\.c .*fatal error: broken.*unfolded patches"):
        assert not _direct_conv.direct_conv_available()
    x, arrays, b, shape, expected = _case(2, 4, 6, 8, 3, 2, 1)
    torch.testing.assert_close(_direct_conv.conv2d_csr(x, *arrays, b, *shape, {}), expected, rtol=1e-4, atol=1e-4)
    assert not list(fresh_library.glob("*.so")) and not list(fresh_library.glob(".*partial"))


def test_no_compiler_says_so_once_and_falls_back(fresh_library, monkeypatch, recwarn):
    # A machine without a compiler: no $CC, no cc or gcc on the path.
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(fresh_library))
    assert not _direct_conv.direct_conv_available()
    assert not _direct_conv.direct_conv_available()
    notices = [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert len(notices) == 1 and "\n" not in notices[0]
    assert re.match(r"lth_prune found no C compiler \(\$CC, cc or gcc\); sparse convolutions multiply unfolded "
                    r"patches instead.*set LTH_PRUNE_NATIVE=0", notices[0]), notices[0]
    x, arrays, b, shape, expected = _case(2, 4, 6, 8, 3, 1, 1)
    torch.testing.assert_close(_direct_conv.conv2d_csr(x, *arrays, b, *shape, {}), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("flag", ["-DLTH_PRUNE_PORTABLE", "-fopenmp"])
def test_portable_and_serial_builds(fresh_library, monkeypatch, flag):
    # Without ifunc support (musl) the clones fail and the portable build is used; without
    # OpenMP the serial one.
    real = shutil.which("cc") or shutil.which("gcc")
    if real is None:
        pytest.skip("no C compiler here")
    wrapper = fresh_library / "picky-cc"
    if flag == "-DLTH_PRUNE_PORTABLE":
        rule = f'case "$*" in *{flag}*) ;; *) echo "error: ifunc not supported" >&2; exit 1;; esac\n'
    else:
        rule = f'case "$*" in *{flag}*) echo "error: no OpenMP" >&2; exit 1;; esac\n'
    wrapper.write_text(f"#!/bin/sh\n{rule}exec {shlex.quote(real)} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    assert _direct_conv.direct_conv_available()
    for geometry in (GEOMETRIES[1], GEOMETRIES[5], GEOMETRIES[4]):
        batch, channels, out_channels, size, kernel, stride, padding, dilation, groups = geometry
        x, arrays, b, shape, expected = _case(batch, channels, out_channels, size, kernel, stride, padding, dilation, groups)
        plans = {}
        torch.testing.assert_close(_direct_conv.conv2d_csr(x, *arrays, b, *shape, plans), expected, rtol=1e-4, atol=1e-4)
        assert plans
