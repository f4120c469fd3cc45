"""to_sparse and the sparse layers: same outputs as the masked dense model."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune import LotteryTicket, prunable
from lth_prune.sparse import SparseConv2d, SparseLinear, to_sparse


def _sparse_weight(shape: tuple[int, ...], density: float, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(shape, generator=generator)
    return weight * (torch.rand(shape, generator=generator) < density)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("input_shape", [(1, 30), (1, 1, 30), (7, 30), (2, 3, 30)])
def test_sparse_linear_matches_dense(bias, input_shape):
    weight = _sparse_weight((20, 30), 0.1)
    b = torch.randn(20) if bias else None
    layer = SparseLinear(weight, b)
    x = torch.randn(input_shape)
    assert torch.allclose(layer(x), F.linear(x, weight, b), atol=1e-5)
    assert layer(x).shape == (*input_shape[:-1], 20)


@pytest.mark.parametrize(("stride", "padding", "dilation", "bias"),
                         [(1, 1, 1, True), (2, 1, 1, False), (1, 0, 2, True), (2, 2, 1, True)])
def test_sparse_conv_matches_dense(stride, padding, dilation, bias):
    conv = nn.Conv2d(3, 5, 3, stride=stride, padding=padding, dilation=dilation, bias=bias)
    with torch.no_grad():
        conv.weight.copy_(_sparse_weight(tuple(conv.weight.shape), 0.2))
    x = torch.randn(2, 3, 9, 10)
    assert torch.allclose(SparseConv2d(conv)(x), conv(x), atol=1e-5)


def test_sparse_conv_rejects_groups():
    with pytest.raises(ValueError, match="conv must have groups=1"):
        SparseConv2d(nn.Conv2d(4, 4, 3, groups=2))


@pytest.mark.parametrize("name", ["network", "conv2", "lenet300_100", "resnet20"])
def test_to_sparse_models_at_two_percent(name):
    torch.manual_seed(0)
    shape = (1, 28, 28) if name == "lenet300_100" else (3, 32, 32)
    model = lth_prune.models.get(name, input_shape=shape).eval()
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.98)
    x = torch.randn(4, *shape)
    sparse = to_sparse(model, max_density=0.5)
    assert any(isinstance(m, (SparseLinear, SparseConv2d)) for m in sparse.modules())
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(sparse(x), expected, atol=1e-4, rtol=1e-4)
    assert prune.is_pruned(model), "the original must stay as it was"


def test_to_sparse_chooses_by_timing_and_keeps_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.9)
    x = torch.randn(8, 256)
    sparse = to_sparse(model, example_input=x, repeats=2)
    assert not sparse.training
    assert torch.allclose(sparse(x), model(x), atol=1e-5)


def test_without_example_input_only_linear_layers_go_sparse():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4))
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.95)
    sparse = to_sparse(model, max_density=1.0)
    assert type(sparse[0]) is nn.Conv2d
    assert isinstance(sparse[3], SparseLinear)
    x = torch.randn(3, 2, 6, 6)
    with torch.no_grad():
        assert torch.allclose(sparse(x), model(x), atol=1e-5)


def test_by_timing_every_layer_form_gives_the_same_outputs():
    torch.manual_seed(0)
    model = lth_prune.models.get("conv2", input_shape=(3, 32, 32)).eval()
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.98)
    x = torch.randn(2, 3, 32, 32)
    sparse = to_sparse(model, example_input=x, repeats=1)
    kinds = {type(module) for module in sparse.modules()}
    assert kinds & {nn.Conv2d, SparseConv2d} and kinds & {nn.Linear, SparseLinear}
    with torch.no_grad():
        assert torch.allclose(sparse(x), model(x), atol=1e-4, rtol=1e-4)


def test_dense_layers_stay_dense_and_errors():
    model = nn.Sequential(nn.Linear(4, 4))
    assert isinstance(to_sparse(model)[0], nn.Linear)
    with pytest.raises(ValueError, match="max_density must be in \\[0, 1\\], got 2"):
        to_sparse(model, max_density=2)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        to_sparse("model")


def test_sparse_layers_hold_32_bit_indices_and_survive_torch_save(tmp_path):
    layer = SparseLinear(_sparse_weight((20, 30), 0.1), torch.randn(20))
    conv = nn.Conv2d(3, 5, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(_sparse_weight(tuple(conv.weight.shape), 0.2))
    model = nn.Sequential(SparseConv2d(conv), nn.Flatten(), nn.Linear(5 * 4 * 4, 30), layer)
    for sparse in (model[0], layer):
        assert sparse.weight.crow_indices().dtype == torch.int32
        assert sparse.weight.col_indices().dtype == torch.int32
    x = torch.randn(2, 3, 4, 4)
    torch.save(model, tmp_path / "sparse.pt")
    loaded = torch.load(tmp_path / "sparse.pt", weights_only=False)
    assert torch.equal(loaded(x), model(x))
    assert torch.equal(loaded(x[:1]), model(x[:1]))
