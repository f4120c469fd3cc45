"""Saving and loading tickets."""
from __future__ import annotations

import io

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune
from lth_prune import LotteryTicket, prunable
from lth_prune.models import LeNet300_100
from lth_prune.tickets import read_ticket


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


def _saved_ticket(tmp_path) -> tuple[nn.Module, bytes]:
    model = nn.Linear(4, 3)
    lth_prune.register_rewind_hooks(model)
    prune.random_unstructured(model, "weight", amount=5)
    path = tmp_path / "good.pt"
    lth_prune.save_ticket(model, path)
    return model, path.read_bytes()


def _not_a_ticket(tmp_path, kind: str):
    """A file in ``tmp_path`` that is not a ticket, of the given kind, and its path."""
    path = tmp_path / f"{kind}.pt"
    _, good = _saved_ticket(tmp_path)
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"not a torch file at all" * 3)
    elif kind == "state-dict":
        torch.save(nn.Linear(4, 3).state_dict(), path)
    elif kind == "module":
        torch.save(nn.Linear(4, 3), path)
    elif kind == "none":
        torch.save(None, path)
    elif kind == "ticket-without-masks":
        torch.save({"format": "lth_prune.ticket", "version": 2}, path)
    elif kind == "future-version":
        torch.save({"format": "lth_prune.ticket", "version": 9, "masks": {}, "rewind_point": {},
                    "rewind_step": 0}, path)
    elif kind == "bad-packed-mask":
        torch.save({"format": "lth_prune.ticket", "version": 2, "masks": {"weight": {"shape": [3, 4]}},
                    "rewind_point": {"weight": torch.zeros(3)}, "rewind_step": 0}, path)
    elif kind == "negative-step":
        payload = torch.load(io.BytesIO(good), weights_only=True)
        payload["rewind_step"] = -1
        torch.save(payload, path)
    return path


# (kind, words the message must contain after the file name)
NOT_TICKETS = [
    ("truncated", "cannot read (truncated, or not a torch file"),
    ("empty", "cannot read (truncated, or not a torch file"),
    ("garbage", "must be a ticket saved by save_ticket()"),
    ("state-dict", "got a dict with keys ['bias', 'weight']"),
    ("module", "holds something else (a pickled module or other object"),
    ("none", "got a NoneType"),
    ("ticket-without-masks", "is a damaged ticket: its masks and rewind_point must be dicts of tensors"),
    ("future-version", "must be a ticket of format version 1 or 2, got version 9"),
    ("bad-packed-mask", "is a damaged ticket: the mask of weight cannot be decoded (KeyError"),
    ("negative-step", "is a damaged ticket: its rewind_step must be an int >= 0, got -1"),
]


@pytest.mark.parametrize("reader", ["load_ticket", "read_ticket"])
@pytest.mark.parametrize(("kind", "words"), NOT_TICKETS, ids=[kind for kind, _ in NOT_TICKETS])
def test_a_file_that_is_not_a_ticket_is_a_value_error_naming_it(tmp_path, kind, words, reader):
    path = _not_a_ticket(tmp_path, kind)
    model = nn.Linear(4, 3)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ValueError) as error:
        if reader == "load_ticket":
            lth_prune.load_ticket(model, path)
        else:
            read_ticket(path)
    message = str(error.value)
    assert message.startswith(f"{reader}(): "), message
    assert repr(str(path)) in message, message
    assert words in message, message
    assert not prune.is_pruned(model)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in before.items())


@pytest.mark.parametrize("reader", ["load_ticket", "read_ticket"])
def test_a_missing_file_is_a_file_not_found_error_naming_it(tmp_path, reader):
    path = tmp_path / "absent.pt"
    with pytest.raises(FileNotFoundError, match=rf"^{reader}\(\): path must be an existing ticket file, got "
                       rf"'{path}', which does not exist\.$"):
        lth_prune.load_ticket(nn.Linear(2, 2), path) if reader == "load_ticket" else read_ticket(path)


def test_wrong_argument_types(tmp_path):
    with pytest.raises(TypeError, match=r"^load_ticket\(\): path must be a file name \(str or os.PathLike\), got NoneType\.$"):
        lth_prune.load_ticket(nn.Linear(2, 2), None)
    with pytest.raises(TypeError, match=r"^read_ticket\(\): path must be a file name or a binary file object, got NoneType\.$"):
        read_ticket(None)
    with pytest.raises(TypeError, match=r"^load_ticket\(\): model must be an nn.Module, got str\.$"):
        lth_prune.load_ticket("model", tmp_path / "t.pt")


def test_read_ticket_from_a_file_object(tmp_path):
    model, good = _saved_ticket(tmp_path)
    masks, state, step = read_ticket(io.BytesIO(good))
    assert torch.equal(masks["weight"], lth_prune.get_masks(model)["weight"]) and step == 0
    with pytest.raises(ValueError, match=r"^read_ticket\(\): the file object BytesIO must be a ticket"):
        read_ticket(io.BytesIO(good[:40]))
