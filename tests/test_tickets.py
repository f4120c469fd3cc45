"""Saving and loading tickets."""
from __future__ import annotations

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune import LotteryTicket, prunable
from lth_prune.models import LeNet300_100


def _found_ticket(seed: int = 0) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    model = LeNet300_100(input_shape=(1, 8, 8))
    rewinder = lth_prune.register_rewind_hooks(model)
    start = {k: v.clone() for k, v in rewinder.rewind_point.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        for _ in range(3):
            optimizer.zero_grad()
            model(torch.randn(16, 1, 8, 8)).logsumexp(1).mean().backward()
            optimizer.step()
        prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.5)
        rewinder.rewind()
    return model, start


def test_round_trip_weights_only(tmp_path):
    model, start = _found_ticket()
    path = tmp_path / "ticket.pt"
    lth_prune.save_ticket(model, path, compact=False)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "lth_prune.ticket" and raw["rewind_step"] == 0
    assert all(mask.dtype == torch.bool for mask in raw["masks"].values())

    torch.manual_seed(123)
    fresh = LeNet300_100(input_shape=(1, 8, 8))
    rewinder = lth_prune.load_ticket(fresh, path)
    for key, mask in lth_prune.get_masks(model).items():
        assert torch.equal(lth_prune.get_masks(fresh)[key], mask)
    for key, value in start.items():
        assert torch.equal(rewinder.rewind_point[key], value)
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(fresh(x), model(x))
    assert lth_prune.sparsity(fresh) == lth_prune.sparsity(model)


def test_no_rewind_point(tmp_path):
    with pytest.raises(RuntimeError, match=r"save_ticket\(\): model has no rewind point"):
        lth_prune.save_ticket(nn.Linear(2, 2), tmp_path / "t.pt")


def test_shape_mismatch_is_rejected_before_any_change(tmp_path):
    model, _ = _found_ticket()
    path = tmp_path / "ticket.pt"
    lth_prune.save_ticket(model, path)
    other = LeNet300_100(input_shape=(1, 28, 28))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match=r"has shape \(300, 784\) in the model but \(300, 64\) in the ticket"):
        lth_prune.load_ticket(other, path)
    assert not prune.is_pruned(other)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in before.items())


def test_not_a_ticket(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"a": torch.ones(1)}, path)
    with pytest.raises(ValueError, match="must be a ticket saved by save_ticket"):
        lth_prune.load_ticket(nn.Linear(1, 1), path)


@pytest.mark.parametrize("compact", [True, False])
def test_both_formats_load_bit_for_bit(tmp_path, compact):
    model, start = _found_ticket()
    path = tmp_path / "ticket.pt"
    lth_prune.save_ticket(model, path, compact=compact)
    assert torch.load(path, weights_only=True)["version"] == (2 if compact else 1)
    fresh = LeNet300_100(input_shape=(1, 8, 8))
    rewinder = lth_prune.load_ticket(fresh, path)
    masks = lth_prune.get_masks(model)
    assert all(torch.equal(lth_prune.get_masks(fresh)[k], m) for k, m in masks.items())
    for key, value in start.items():
        kept = masks.get(key, torch.ones_like(value, dtype=torch.bool))
        assert torch.equal(rewinder.rewind_point[key][kept], value[kept])
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(fresh(x), model(x))


def test_compact_ticket_of_network_at_two_percent_is_under_five_percent(tmp_path):
    from lth_prune.models import Network

    torch.manual_seed(0)
    model = Network()
    dense_path = tmp_path / "dense.pt"
    torch.save(model.state_dict(), dense_path)
    lth_prune.register_rewind_hooks(model)
    prune.global_unstructured(prunable(model), pruning_method=LotteryTicket, amount=0.98)
    ticket_path = tmp_path / "ticket.pt"
    lth_prune.save_ticket(model, ticket_path)
    ratio = ticket_path.stat().st_size / dense_path.stat().st_size
    assert ratio <= 0.05, ratio
    fresh = Network()
    lth_prune.load_ticket(fresh, ticket_path)
    assert all(torch.equal(lth_prune.get_masks(fresh)[k], m) for k, m in lth_prune.get_masks(model).items())
