"""Sparsity reports, get/set masks, lean masks and copying pruned models."""
from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune import LotteryTicket, prunable


def _net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 20), nn.Linear(20, 4))


def _pruned(rounds: int = 3, hooks: bool = True, seed: int = 0) -> nn.Sequential:
    model = _net(seed)
    if hooks:
        lth_prune.register_rewind_hooks(model)
    for _ in range(rounds):
        prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.3)
    return model


def test_sparsity_and_report():
    model = _net()
    assert lth_prune.sparsity(model) == 0.0
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=500)
    rows = lth_prune.sparsity_report(model)
    assert [row.name for row in rows] == ["0", "3", "4"]
    assert [row.shape for row in rows] == [(3, 1, 3, 3), (20, 108), (4, 20)]
    assert [row.total for row in rows] == [27, 2160, 80]
    assert sum(row.remaining for row in rows) == 2267 - 500
    assert all(row.fraction_remaining == row.remaining / row.total for row in rows)
    assert lth_prune.sparsity(model) == 500 / 2267


def test_one_mask_per_tensor_after_many_global_rounds():
    model = _pruned(rounds=6, hooks=False)
    lth_prune.collapse_masks(model)
    for module, _ in prunable(model):
        methods = [h for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
        assert len(methods) == 1
        held = [v for v in vars(methods[0]).values() if isinstance(v, torch.Tensor)]
        assert held == []
    # the pickled model no longer carries per-round copies of the global mask, which torch's
    # own rounds stack up (prunable() collapses them each round, so the layers are listed here)
    uncollapsed = _net()
    layers = [(module, "weight") for module in uncollapsed if isinstance(module, (nn.Conv2d, nn.Linear))]
    for _ in range(6):
        prune.global_unstructured(layers, pruning_method=LotteryTicket, amount=0.3)
    assert len(pickle.dumps(model)) < len(pickle.dumps(uncollapsed)) / 3


def test_rewind_hooks_collapse_on_forward():
    model = _pruned(rounds=4)
    model(torch.randn(1, 1, 8, 8))
    for module, _ in prunable(model):
        assert sum(isinstance(h, prune.BasePruningMethod) for h in module._forward_pre_hooks.values()) == 1


@pytest.mark.parametrize("hooks", [True, False])
def test_deepcopy_of_a_pruned_and_trained_model(hooks):
    model = _pruned(rounds=2, hooks=hooks)
    if not hooks:
        lth_prune.collapse_masks(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    optimizer.step()
    model(torch.randn(4, 1, 8, 8))  # leaves a non-leaf `weight` behind, as training does
    clone = copy.deepcopy(model)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(clone(x), model(x))
    assert clone[3].weight_orig is not model[3].weight_orig
    clone(x).sum().backward()
    assert clone[3].weight_orig.grad is not None


def test_pickle_and_torch_save_round_trip():
    model = _pruned(rounds=2)
    x = torch.randn(2, 1, 8, 8)
    restored = pickle.loads(pickle.dumps(model))
    assert torch.equal(restored(x), model(x))
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert torch.equal(loaded(x), model(x))


def test_state_dict_round_trip_into_a_fresh_model():
    model = _pruned(rounds=2)
    state = model.state_dict()
    assert "3.weight_orig" in state and "3.weight_mask" in state and "3.weight" not in state
    fresh = _net(seed=1)
    lth_prune.load_pruned_state_dict(fresh, state)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(fresh(x), model(x))
    assert prune.is_pruned(fresh)
    prune.global_unstructured(prunable(fresh), pruning_method=LotteryTicket, amount=0.1)


def test_get_and_set_masks():
    model = _pruned(rounds=2)
    masks = lth_prune.get_masks(model)
    assert set(masks) == {"0.weight", "3.weight", "4.weight"}
    assert all(mask.dtype == torch.bool for mask in masks.values())
    other = _net(seed=5)
    lth_prune.set_masks(other, masks)
    for key, mask in lth_prune.get_masks(other).items():
        assert torch.equal(mask, masks[key])
    module = other[3]
    assert torch.equal(module.weight, module.weight_orig * module.weight_mask)


def test_set_masks_errors():
    with pytest.raises(ValueError, match=r"not a prunable weight of the model, got 'fc.weight'"):
        lth_prune.set_masks(_net(), {"fc.weight": torch.ones(2, 2)})
    with pytest.raises(ValueError, match=r"mask for 4.weight must have shape \(4, 20\), got \(2, 2\)"):
        lth_prune.set_masks(_net(), {"4.weight": torch.ones(2, 2)})
