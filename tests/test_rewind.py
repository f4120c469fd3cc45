"""Rewind points, rewinding, late rewinding and the rewind hooks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune import LotteryTicket, prunable, register_rewind_hooks
from lth_prune.rewind import registered_rewinder


def _bn_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 8 * 8, 16), nn.ReLU(), nn.Linear(16, 3),
    )


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model(torch.randn(8, 1, 8, 8)).logsumexp(dim=1).mean()
        loss.backward()
        optimizer.step()


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer by dense name, masks left out."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("_mask"):
            continue
        state[key.removesuffix("_orig")] = value.clone()
    return state


def test_rewind_restores_every_parameter_and_buffer_bit_for_bit():
    model = _bn_net()
    rewinder = register_rewind_hooks(model)
    start = _snapshot(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ids = {id(p) for p in model.parameters()}
    _train(model, optimizer, 5)
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.3)
    masks = lth_prune.get_masks(model)
    rewinder.rewind()
    after = _snapshot(model)
    assert after.keys() == start.keys()
    for key in start:
        assert torch.equal(after[key], start[key]), key
    assert "1.running_mean" in after and "1.num_batches_tracked" in after
    assert {id(p) for p in model.parameters()} == ids
    for key, mask in lth_prune.get_masks(model).items():
        assert torch.equal(mask, masks[key])
    # the optimizer still drives the model's parameters after the rewind
    _train(model, optimizer, 1)
    assert not torch.equal(model[4].weight_orig, start["4.weight"])


def test_masked_weight_is_up_to_date_immediately():
    model = _bn_net()
    rewinder = register_rewind_hooks(model)
    _train(model, torch.optim.SGD(model.parameters(), lr=0.1), 3)
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
    rewinder.rewind()
    for module, _ in prunable(model):
        assert torch.equal(module.weight, module.weight_orig * module.weight_mask)


def test_rewind_through_the_model():
    model = _bn_net()
    register_rewind_hooks(model)
    start = _snapshot(model)
    _train(model, torch.optim.Adam(model.parameters(), lr=0.01), 2)
    lth_prune.rewind(model)
    assert all(torch.equal(_snapshot(model)[k], v) for k, v in start.items())


def test_late_rewinding_captures_after_exactly_k_steps():
    model = _bn_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    rewinder = register_rewind_hooks(model, at_step=3, optimizer=optimizer)
    assert not rewinder.has_rewind_point
    _train(model, optimizer, 2)
    with pytest.raises(RuntimeError, match="no rewind point yet.*step 3 and 2 steps"):
        rewinder.rewind()
    _train(model, optimizer, 1)
    at_three = _snapshot(model)
    _train(model, optimizer, 4)
    assert rewinder.steps_seen == 3
    rewinder.rewind()
    assert all(torch.equal(_snapshot(model)[k], v) for k, v in at_three.items())


def test_rewind_without_hooks_or_point():
    with pytest.raises(RuntimeError, match=r"rewind\(\): model has no rewind hooks"):
        lth_prune.rewind(nn.Linear(2, 2))


def test_bad_arguments():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="at_step must be >= 0, got -1"):
        register_rewind_hooks(model, at_step=-1)
    with pytest.raises(TypeError, match="at_step must be an int, got 1.5"):
        register_rewind_hooks(model, at_step=1.5)
    with pytest.raises(ValueError, match="optimizer must be given when at_step > 0"):
        register_rewind_hooks(model, at_step=2)
    with pytest.raises(TypeError, match="model must be an nn.Module, got str"):
        register_rewind_hooks("model")
    other = torch.optim.SGD(nn.Linear(3, 3).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="optimizer must optimize parameters of model"):
        register_rewind_hooks(model, at_step=2, optimizer=other)


def test_remove_detaches_hooks_and_registering_again_replaces():
    model = _bn_net()
    first = register_rewind_hooks(model)
    hooks = sum(len(m._forward_pre_hooks) for m in model.modules())
    assert hooks == 3
    second = register_rewind_hooks(model)
    assert sum(len(m._forward_pre_hooks) for m in model.modules()) == 3
    with pytest.raises(RuntimeError, match="no rewind point"):
        first.rewind()
    second.remove()
    assert sum(len(m._forward_pre_hooks) for m in model.modules()) == 0
    with pytest.raises(RuntimeError, match="no rewind hooks"):
        lth_prune.rewind(model)


def test_registered_rewinder_is_the_latest_registration_until_removed():
    model = _bn_net()
    assert registered_rewinder(model) is None
    assert registered_rewinder("not a model") is None
    first = register_rewind_hooks(model)
    assert registered_rewinder(model) is first
    second = register_rewind_hooks(model)
    assert registered_rewinder(model) is second
    first.remove()  # an earlier, replaced registration does not unregister the current one
    assert registered_rewinder(model) is second
    second.remove()
    assert registered_rewinder(model) is None


def test_rewind_point_mismatch_is_reported():
    model = _bn_net()
    rewinder = register_rewind_hooks(model)
    with pytest.raises(RuntimeError, match=r"4.weight has shape \(16, 256\) in the model but \(2, 2\)"):
        rewinder.set_rewind_point({**rewinder.rewind_point, "4.weight": torch.zeros(2, 2)})
    with pytest.raises(RuntimeError, match=r"missing \['6.bias'\]"):
        rewinder.set_rewind_point({k: v for k, v in rewinder.rewind_point.items() if k != "6.bias"})


def test_imp_rounds_keep_masks_and_rewind_each_time():
    model = _bn_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    rewinder = register_rewind_hooks(model)
    start = _snapshot(model)
    previous = None
    for _ in range(3):
        _train(model, optimizer, 2)
        prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.2)
        rewinder.rewind()
        masks = lth_prune.get_masks(model)
        if previous is not None:
            for key in masks:
                assert bool((masks[key] <= previous[key]).all())
        previous = masks
        for module, _ in prunable(model):
            live = module.weight_mask.bool()
            assert torch.equal(module.weight[live], start[_name(model, module)][live])
            assert bool((module.weight[~live] == 0).all())


def _name(model: nn.Module, module: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is module) + ".weight"
