"""The internal API over torch's pruning reparametrisation, and masks held dense on the module."""
from __future__ import annotations

import copy
import math
import pickle

import torch
import torch.nn.utils.prune as prune
from torch import nn

from lth_prune import _reparam, masked_training


def _pruned_linear(amount: float = 0.5) -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(6, 4)
    prune.l1_unstructured(layer, "weight", amount=amount)
    return layer


def test_pruned_names_and_keep_mask_read_torchs_form():
    layer = _pruned_linear()
    assert _reparam.pruned_names(layer) == ["weight"]
    keep = _reparam.keep_mask(layer, "weight")
    assert keep.dtype == torch.bool
    assert torch.equal(keep, layer.weight_mask != 0)
    assert _reparam.keep_mask(layer, "bias") is None
    assert _reparam.keep_mask(nn.Linear(2, 2), "weight") is None


def test_collapse_leaves_one_applied_mask_per_tensor():
    layer = _pruned_linear(0.2)
    prune.l1_unstructured(layer, "weight", amount=0.2)
    prune.l1_unstructured(layer, "bias", amount=1)
    _reparam.collapse(layer)
    hooks = list(layer._forward_pre_hooks.values())
    assert [type(hook) for hook in hooks] == [_reparam.AppliedMask, _reparam.AppliedMask]
    assert sorted(hook._tensor_name for hook in hooks) == ["bias", "weight"]


def test_refresh_recomputes_the_masked_tensor_at_once():
    layer = _pruned_linear()
    with torch.no_grad():
        layer.weight_orig.add_(1.0)
    _reparam.refresh(layer, "weight")
    assert torch.equal(layer.weight, layer.weight_orig * layer.weight_mask)


def test_held_dense_masks_live_on_the_module_and_go_when_released():
    layer = nn.Linear(3, 2)
    before = set(vars(layer))
    keep = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.uint8)
    _reparam.hold_dense(layer, "weight", keep)
    assert list(_reparam.dense_masks(layer)) == ["weight"]
    assert torch.equal(_reparam.keep_mask(layer, "weight"), keep.bool())
    assert _reparam.dense_masks(nn.Linear(3, 2)) == {}
    # What dense_masks returns is a copy: changing it changes nothing held.
    _reparam.dense_masks(layer).clear()
    assert list(_reparam.dense_masks(layer)) == ["weight"]
    _reparam.release_dense(layer, "weight")
    _reparam.release_dense(layer, "weight")  # a second release is harmless
    assert _reparam.dense_masks(layer) == {}
    assert _reparam.keep_mask(layer, "weight") is None
    assert set(vars(layer)) == before


def test_held_dense_masks_are_not_carried_by_a_copy_or_a_pickle_which_is_pruned_in_torchs_form():
    layer = nn.Linear(3, 2)
    keep = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.uint8)
    with torch.no_grad():
        layer.weight.mul_(keep)
    _reparam.hold_dense(layer, "weight", keep, torch.float64)
    for duplicate in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert _reparam.dense_masks(duplicate) == {} and "__getstate__" not in vars(duplicate)
        assert _reparam.pruned_names(duplicate) == ["weight"] and prune.is_pruned(duplicate)
        assert duplicate.weight_mask.dtype == torch.float64
        assert torch.equal(duplicate.weight_mask, keep.double())
        assert torch.equal(duplicate.weight_orig, layer.weight) and torch.equal(duplicate.weight, layer.weight)
    assert list(_reparam.dense_masks(layer)) == ["weight"]
    assert list(layer._parameters) == ["weight", "bias"]
    _reparam.release_dense(layer, "weight")
    assert not prune.is_pruned(copy.deepcopy(layer))


def test_rezero_zeroes_the_pruned_entries_of_tensors_held_dense():
    layer = nn.Linear(3, 2)
    keep = torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.uint8)
    _reparam.hold_dense(layer, "weight", keep)
    with torch.no_grad():
        layer.weight.fill_(2.0)
    _reparam.rezero(layer)
    assert torch.equal(layer.weight.detach(), 2.0 * keep.float())


def test_masked_training_holds_its_masks_on_the_layers_and_leaves_nothing_behind():
    model = nn.Sequential(_pruned_linear(), nn.ReLU(), nn.Linear(4, 2))
    keep = model[0].weight_mask != 0
    attributes = [set(vars(module)) for module in model]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with masked_training(model, optimizer):
        held = _reparam.dense_masks(model[0])
        assert list(held) == ["weight"] and torch.equal(held["weight"].bool(), keep)
        assert _reparam.dense_masks(model[2]) == {}
    assert [_reparam.dense_masks(module) for module in model] == [{}, {}, {}]
    # weight, the masked tensor torch recomputes, is back in the pruned layer's __dict__.
    assert [set(vars(module)) for module in model] == attributes


def test_named_tensors_give_pruned_tensors_their_dense_names():
    model = nn.Sequential(_pruned_linear(), nn.BatchNorm1d(4))
    named = {name: (tensor, module) for name, tensor, module in _reparam.named_tensors(model)}
    assert sorted(named) == [
        "0.bias", "0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean",
        "1.running_var", "1.weight",
    ]
    assert named["0.weight"][0] is model[0].weight_orig
    assert named["0.weight"][1] is model[0]


def test_to_dense_and_back_keep_the_parameter_its_mask_and_zero_at_pruned_entries():
    layer = _pruned_linear()
    parameter, mask = layer.weight_orig, layer.weight_mask.clone()
    with torch.no_grad():
        parameter[mask == 0] = float("nan")  # whatever a pruned entry held
    same, keep, mask_dtype = _reparam.to_dense(layer, "weight")
    assert same is parameter and layer.weight is parameter and mask_dtype == mask.dtype
    assert keep.dtype == torch.uint8 and torch.equal(keep, (mask != 0).to(torch.uint8))
    assert not prune.is_pruned(layer) and "weight_mask" not in layer._buffers
    assert torch.equal(parameter[mask == 0], torch.zeros(int((mask == 0).sum())))
    _reparam.to_pruned(layer, "weight", keep, mask_dtype)
    assert prune.is_pruned(layer) and layer.weight_orig is parameter and torch.equal(layer.weight_mask, mask)
    assert torch.equal(layer.weight, torch.where(mask != 0, parameter, 0.0))


def test_dense_state_selects_so_a_nan_at_a_pruned_entry_stays_out():
    layer = _pruned_linear()
    with torch.no_grad():
        layer.weight_orig[layer.weight_mask == 0] = float("nan")
    state = layer.state_dict()
    assert _reparam.pruned_state_keys(state) == ["weight"]
    dense = _reparam.dense_state(state)
    assert sorted(dense) == ["bias", "weight"] and sorted(state) == ["bias", "weight_mask", "weight_orig"]
    assert torch.isfinite(dense["weight"]).all() and int((dense["weight"] == 0).sum()) == int((layer.weight_mask == 0).sum())
    fresh = nn.Linear(*reversed(layer.weight_orig.shape))
    fresh.load_state_dict(dense)
    assert torch.equal(fresh.weight, torch.where(layer.weight_mask != 0, layer.weight_orig, 0.0))


def test_applied_mask_selects_so_a_nan_in_weight_orig_at_a_pruned_entry_never_reaches_the_output(device):
    layer = _pruned_linear().to(device)
    _reparam.collapse(layer)
    keep = layer.weight_mask.bool()
    with torch.no_grad():
        layer.weight_orig[~keep] = torch.tensor([float("nan"), float("inf"), -float("inf")] * 4, device=device)
    out = layer(torch.randn(3, 6, device=device))
    assert bool(out.isfinite().all())
    assert bool((layer.weight[~keep] == 0).all())
    # Its gradient at pruned entries is exactly 0 whatever flows back: no NaN * 0.
    layer.weight.backward(torch.full((4, 6), float("nan"), device=device))
    assert bool((layer.weight_orig.grad[~keep] == 0).all())
    assert bool(layer.weight_orig.grad[keep].isnan().all())


def test_refresh_and_remove_select_too(device):
    layer = _pruned_linear().to(device)
    _reparam.collapse(layer)
    keep = layer.weight_mask.bool()
    with torch.no_grad():
        layer.weight_orig[~keep] = float("nan")
    _reparam.refresh(layer, "weight")
    assert bool((layer.weight[~keep] == 0).all())
    prune.remove(layer, "weight")
    assert bool((layer.weight[~keep] == 0).all()) and bool(layer.weight.isfinite().all())


def test_rezero_turns_nan_and_inf_at_pruned_entries_into_zero(device):
    layer = nn.Linear(3, 2).to(device)
    keep = torch.tensor([[1, 0, 1], [0, 1, 0]], dtype=torch.uint8, device=device)
    _reparam.hold_dense(layer, "weight", keep)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, float("nan"), float("nan")], [float("inf"), 2.0, -0.0]]))
    _reparam.rezero(layer)
    expected = torch.tensor([[1.0, 0.0, float("nan")], [0.0, 2.0, 0.0]], device=device)
    assert torch.equal(layer.weight.detach().isnan(), expected.isnan())
    assert torch.equal(torch.nan_to_num(layer.weight.detach()), torch.nan_to_num(expected))
    assert math.copysign(1.0, float(layer.weight.detach()[1, 2])) == 1.0  # a pruned -0.0 is +0.0
