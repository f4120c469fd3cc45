"""The sparse layers: the dense layer's outputs, clear errors, state that saves and loads."""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lth_prune.sparse import SparseConv2d, SparseLinear
from lth_prune.sparse.modules import VectorizedMaxPool2d


def _sparse_weight(shape: tuple[int, ...], density: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=generator)
    return weight * (torch.rand(shape, generator=generator) < density)


def _sparse_conv(*args, density: float = 0.2, seed: int = 0, **kwargs) -> nn.Conv2d:
    conv = nn.Conv2d(*args, **kwargs)
    with torch.no_grad():
        conv.weight.copy_(_sparse_weight(tuple(conv.weight.shape), density, seed))
    return conv


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_shape", [(1, 30), (1, 1, 30), (7, 30), (2, 3, 30)])
def test_sparse_linear_matches_dense(bias, input_shape):
    weight = _sparse_weight((20, 30), 0.1)
    b = torch.randn(20) if bias else None
    layer = SparseLinear(weight, b)
    x = torch.randn(input_shape)
    assert torch.allclose(layer(x), F.linear(x, weight, b), atol=1e-5)
    assert layer(x).shape == (*input_shape[:-1], 20)


def test_sparse_linear_names_the_shape_it_expects():
    layer = SparseLinear(_sparse_weight((4, 6), 0.5), None)
    with pytest.raises(ValueError, match=r"SparseLinear\(\): input must be \(\*, in_features=6\), got \(2, 5\)"):
        layer(torch.randn(2, 5))


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups", "bias"),
                         [(1, 1, 1, 1, True), (2, 1, 1, 1, False), (1, 0, 2, 1, True), (2, 2, 1, 1, True),
                          (1, 1, 1, 3, True), (1, "valid", 1, 1, False)])
@pytest.mark.parametrize("batch", [1, 5])
def test_sparse_conv_matches_dense(stride, padding, dilation, groups, bias, batch):
    conv = _sparse_conv(6, 9, 3, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias)
    x = torch.randn(batch, 6, 9, 10)
    layer = SparseConv2d(conv)
    with torch.no_grad():
        expected = conv(x)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer(x[0]), expected[0], rtol=1e-4, atol=1e-5)  # unbatched


def test_sparse_conv_on_other_dtypes_and_strided_inputs():
    conv = _sparse_conv(4, 5, 3, padding=1)
    x = torch.randn(2, 9, 9, 4).permute(0, 3, 1, 2)  # channels-last memory
    layer = SparseConv2d(conv)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), conv(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer.double()(x.double()), conv.double()(x.double()), rtol=1e-6, atol=1e-8)


def test_sparse_conv_rejects_other_padding():
    with pytest.raises(ValueError, match="conv must pad with zeros.*padding_mode='reflect'"):
        SparseConv2d(nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(ValueError, match="padding='same'"):
        SparseConv2d(nn.Conv2d(4, 4, 3, padding="same"))


@pytest.mark.parametrize(("shape", "match"), [
    ((2, 5, 8, 8), r"input must be \(N, C_in=4, H, W\) or \(C_in=4, H, W\), got \(2, 5, 8, 8\)"),
    ((8, 8), r"got \(8, 8\)"),
    ((1, 4, 2, 2), r"input \(1, 4, 2, 2\) is smaller than the kernel \(5, 5\)"),
])
def test_sparse_conv_names_the_shape_it_expects(shape, match):
    layer = SparseConv2d(_sparse_conv(4, 4, 5))
    with pytest.raises(ValueError, match=match):
        layer(torch.randn(shape))


def test_sparse_conv_keeps_32_bit_indices_and_its_weight():
    conv = _sparse_conv(3, 5, 3, padding=1)
    layer = SparseConv2d(conv)
    assert layer.crow_indices.dtype == layer.col_indices.dtype == torch.int32
    assert torch.equal(layer.weight.to_dense(), conv.weight.detach().reshape(5, -1))
    assert "nnz=" in repr(layer) and "groups=1" in repr(layer)


def test_state_dicts_load_with_weights_only_and_any_nnz(tmp_path):
    x = torch.randn(2, 3, 4, 4)
    made = [nn.Sequential(SparseConv2d(_sparse_conv(3, 5, 3, padding=1, density=density, seed=seed)),
                          nn.Flatten(), SparseLinear(_sparse_weight((7, 80), density, seed), torch.randn(7)))
            for density, seed in ((0.2, 0), (0.6, 1))]
    torch.save(made[1].state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    made[0].load_state_dict(state)  # other nnz: the tensors are taken as they are
    assert torch.equal(made[0](x), made[1](x))
    assert made[0][0].values.numel() == made[1][0].values.numel()


def test_whole_modules_pickle_and_deep_copy(tmp_path):
    import copy
    model = nn.Sequential(SparseConv2d(_sparse_conv(3, 5, 3, padding=1)), nn.Flatten(),
                          SparseLinear(_sparse_weight((30, 80), 0.1), torch.randn(30)))
    x = torch.randn(2, 3, 4, 4)
    expected = model(x)  # leaves a plan behind, which copies must not need
    torch.save(model, tmp_path / "model.pt")
    for loaded in (torch.load(tmp_path / "model.pt", weights_only=False), copy.deepcopy(model)):
        assert loaded[0]._plans == {}
        assert torch.equal(loaded(x), expected)
        assert torch.equal(loaded(x[:1]), model(x[:1]))


def test_trace_and_export_compute_the_convolution():
    # Both follow torch operations only: the layer runs the dense convolution of its weight.
    conv = _sparse_conv(3, 8, 3, padding=1)
    layer = SparseConv2d(conv)
    x, other = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = conv(other)
    traced = torch.jit.trace(layer, x)
    torch.testing.assert_close(traced(other), expected, rtol=1e-5, atol=1e-5)
    exported = torch.export.export(layer, (x,)).module()
    torch.testing.assert_close(exported(other), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 3, 7, 9), (1, 4, 5, 5), (1, 1, 1, 1)])
@pytest.mark.parametrize("settings", [dict(kernel_size=2), dict(kernel_size=2, ceil_mode=True),
                                      dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(1, 2))])
def test_vectorized_max_pool_equals_max_pool(shape, settings):
    pool = nn.MaxPool2d(**settings)
    x = torch.randn(shape)
    x[0, 0, 0, 0] = float("nan")
    try:
        expected = pool(x)
    except RuntimeError:
        pytest.skip("torch refuses this pool on this shape")
    out = VectorizedMaxPool2d.like(pool)(x)
    assert out.is_contiguous() and torch.equal(out.isnan(), expected.isnan())
    assert torch.equal(out.nan_to_num(), expected.nan_to_num())
