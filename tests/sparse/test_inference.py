"""to_sparse and load_sparse_state_dict: the masked dense model's outputs, from a copy whose layers
run sparse kernels, with batch norms folded and pools vectorized; clear errors on bad inputs."""
from __future__ import annotations

import re

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune import LotteryTicket, prunable
from lth_prune.sparse import SparseConv2d, SparseLinear, load_sparse_state_dict, to_sparse
from lth_prune.sparse import inference


def _ticket(name: str, weights_remaining: float = 0.02) -> tuple[nn.Module, tuple[int, int, int]]:
    """A registry model pruned layer-wise, as IMP prunes it, with BatchNorm statistics that
    are not the identity (so that folding them is tested)."""
    torch.manual_seed(0)
    shape = (1, 28, 28) if name == "lenet300_100" else (3, 32, 32)
    model = lth_prune.models.get(name, input_shape=shape)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    # Every layer at its own rate, as IMP prunes, in one step.
    lth_prune.prune_layerwise(model, 1 - weights_remaining)
    return model.eval(), shape


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


@pytest.mark.parametrize("name", ["conv2", "network", "resnet20"])
def test_every_layer_sparse_gives_the_same_outputs(name, monkeypatch):
    # Whatever the timing says: every candidate in its sparse form, every pool vectorized.
    monkeypatch.setattr(inference, "_faster", lambda candidate, current, input, repeats: True)
    model, shape = _ticket(name)
    x = torch.randn(3, *shape)
    sparse = to_sparse(model, example_input=x)
    convs = [m for m in sparse.modules() if isinstance(m, SparseConv2d)]
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in sparse.modules()), "batch norms were not folded"
    assert all(type(m) is not nn.MaxPool2d for m in sparse.modules())
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(sparse(x), expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    torch.testing.assert_close(sparse(x[:1]), expected[:1], rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_without_a_c_compiler_to_sparse_says_so_once_and_keeps_outputs(monkeypatch, tmp_path):
    # A fresh machine without a compiler: nothing cached, no $CC, no cc or gcc on the path.
    from lth_prune.sparse import _direct_conv, _native

    monkeypatch.setenv("LTH_PRUNE_CACHE", str(tmp_path))
    monkeypatch.delenv("LTH_PRUNE_NATIVE", raising=False)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(inference, "_faster", lambda candidate, current, input, repeats: True)
    _direct_conv._library.cache_clear()
    _native._library.cache_clear()
    try:
        model, shape = _ticket("conv2")
        x = torch.randn(2, *shape)
        with pytest.warns(RuntimeWarning) as notices:
            sparse = to_sparse(model, example_input=x)
            to_sparse(model, example_input=x)
            with torch.no_grad():
                expected, got = model(x), sparse(x)
    finally:
        _direct_conv._library.cache_clear()
        _native._library.cache_clear()
    messages = [str(notice.message) for notice in notices if "C compiler" in str(notice.message)]
    assert messages == [messages[0]] and messages[0].startswith("lth_prune found no C compiler")
    assert any(isinstance(m, SparseConv2d) for m in sparse.modules())
    assert not list(tmp_path.glob("*.so"))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_batch_norm_folding_can_be_turned_off():
    model, shape = _ticket("resnet20")
    kept = to_sparse(model, fold_batchnorm=False)
    folded = to_sparse(model)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in kept.modules()) == 21
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, *shape)
    torch.testing.assert_close(folded(x), kept(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["conv2", "resnet20"])
def test_state_dict_saves_and_loads_with_weights_only(name, tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "_faster", lambda candidate, current, input, repeats: True)
    model, shape = _ticket(name)
    x = torch.randn(2, *shape)
    sparse = to_sparse(model, example_input=x)
    torch.save(sparse.state_dict(), tmp_path / "sparse.pt")
    state = torch.load(tmp_path / "sparse.pt", weights_only=True)
    fresh = lth_prune.models.get(name, input_shape=shape)  # another initialization, unpruned
    loaded = load_sparse_state_dict(fresh, state, example_input=x)
    assert [type(m) for m in loaded.modules()] == [type(m) for m in sparse.modules()]
    assert not loaded.training
    assert torch.equal(loaded(x), sparse(x))


def test_load_without_example_input_keeps_pools_as_they_are():
    model, shape = _ticket("conv2")
    sparse = to_sparse(model, example_input=torch.randn(2, *shape))
    loaded = load_sparse_state_dict(lth_prune.models.get("conv2", input_shape=shape), sparse.state_dict())
    assert type(loaded.features[4]) is nn.MaxPool2d
    x = torch.randn(2, *shape)
    torch.testing.assert_close(loaded(x), sparse(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="load_sparse_state_dict\\(\\): model must be an nn.Module, got dict"):
        load_sparse_state_dict({}, sparse.state_dict())


@pytest.mark.parametrize(("name", "bad", "match"), [
    ("conv2", (2, 1, 32, 32), r"layer 'features.0' \(Conv2d\) expects \(N, 3, H, W\), got input of shape \(2, 1, 32, 32\)"),
    ("conv2", (2, 3, 16, 16), r"layer 'classifier.0' \(Linear\) expects \(\*, 16384\), got input of shape \(2, 4096\)"),
    ("lenet300_100", (2, 1, 20, 20), r"layer 'classifier.0' \(Linear\) expects \(\*, 784\), got input of shape \(2, 400\)"),
])
def test_wrong_example_input_names_the_layer_and_the_shapes(name, bad, match):
    model, _ = _ticket(name, 0.5)
    with pytest.raises(ValueError, match=r"to_sparse\(\): the model fails on example_input of shape " + re.escape(str(bad)) + ".*" + match):
        to_sparse(model, example_input=torch.randn(bad))
    with pytest.raises(TypeError, match="example_input must be a Tensor or None, got list"):
        to_sparse(model, example_input=[1, 2])


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


def test_relus_of_fresh_outputs_run_in_place_and_no_others():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.ReLU(), nn.Linear(4 * 4 * 4, 2), nn.ReLU())
    sparse = to_sparse(model)
    # After the convolution and the output layer; not after the flatten, a view of the pool.
    assert [layer.inplace for layer in (sparse[1], sparse[3], sparse[5])] == [True, False, True]
    x = torch.randn(2, 3, 6, 6)
    kept = x.clone()
    with torch.no_grad():
        assert torch.equal(sparse(x), model(x)) and torch.equal(x, kept)
    assert not model[1].inplace, "the original must stay as it was"
    shared = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
    block = nn.Sequential(shared, shared[1])  # one ReLU called twice: left alone
    assert not to_sparse(block)[0][1].inplace
