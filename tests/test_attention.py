"""Pruning nn.MultiheadAttention, whose projections torch keeps in ``in_proj_weight`` (a known trap
for pruning hooks): it stays pruned through forward, backward, state_dict, deepcopy and training."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.utils.prune as prune
from torch import nn

import lth_prune


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens):
        x = self.embed(tokens)
        x = self.norm(x + self.attn(x, x, x, need_weights=False)[0])
        return self.head(x.mean(1))


@pytest.fixture
def block(device):
    torch.manual_seed(0)
    return Block().to(device)


def _tokens(device):
    return torch.randint(0, 10, (4, 5), generator=torch.Generator().manual_seed(1)).to(device)


def test_prunable_covers_the_attention_projections_and_excludes_by_type(block):
    pairs = lth_prune.prunable(block)
    assert [(type(m).__name__, name) for m, name in pairs] == [
        ("MultiheadAttention", "in_proj_weight"), ("NonDynamicallyQuantizableLinear", "weight"), ("Linear", "weight")]
    assert [name for m, name in lth_prune.prunable(block, exclude=[nn.MultiheadAttention])] == ["weight"]
    assert lth_prune.prunable(block, exclude=[nn.Linear]) == [(block.attn, "in_proj_weight")]


def test_a_pruned_attention_stays_pruned_everywhere(block, device):
    prune.global_unstructured(lth_prune.prunable(block), pruning_method=lth_prune.LotteryTicket, amount=0.5)
    total = 3 * 16 * 16 + 16 * 16 + 3 * 16
    masks = lth_prune.get_masks(block)
    assert sorted(masks) == ["attn.in_proj_weight", "attn.out_proj.weight", "head.weight"]
    assert sum(int(mask.sum()) for mask in masks.values()) == total - round(0.5 * total)
    keep = masks["attn.in_proj_weight"]
    tokens = _tokens(device)
    block(tokens).sum().backward()
    assert bool((block.attn.in_proj_weight_orig.grad[~keep] == 0).all())
    assert bool((block.attn.in_proj_weight[~keep] == 0).all())
    # Eval mode without grad takes MultiheadAttention's fast path: still the pruned weights.
    block.eval()
    with torch.no_grad():
        fast = block(tokens)
        with torch.no_grad():
            dense = copy.deepcopy(block)
            prune.remove(dense.attn, "in_proj_weight")
        assert torch.allclose(fast, dense(tokens), atol=1e-6)
    copied = copy.deepcopy(block)
    assert torch.equal(lth_prune.get_masks(copied)["attn.in_proj_weight"], keep)
    fresh = Block().to(device)
    lth_prune.load_pruned_state_dict(fresh, block.state_dict())
    assert torch.equal(lth_prune.get_masks(fresh)["attn.in_proj_weight"], keep)
    assert torch.allclose(fresh.eval()(tokens), block(tokens), atol=1e-6)
    assert {row.name for row in lth_prune.sparsity_report(block)} == {"attn", "attn.out_proj", "head"}


def test_training_and_rewinding_keep_the_attention_masks(block, device):
    rewinder = lth_prune.register_rewind_hooks(block)
    prune.global_unstructured(lth_prune.prunable(block), pruning_method=lth_prune.LotteryTicket, amount=0.6)
    keep = lth_prune.get_masks(block)["attn.in_proj_weight"]
    optimizer = torch.optim.Adam(block.parameters(), lr=0.05)
    with lth_prune.masked_training(block, optimizer):
        for _ in range(5):
            optimizer.zero_grad()
            nn.functional.cross_entropy(block(_tokens(device)), torch.zeros(4, dtype=torch.long, device=device)).backward()
            optimizer.step()
    assert bool((block.attn.in_proj_weight[~keep] == 0).all())
    rewinder.rewind()
    assert torch.equal(block.attn.in_proj_weight_orig[keep], rewinder.rewind_point["attn.in_proj_weight"][keep])


def test_a_ticket_of_an_attention_block_saves_and_loads(block, tmp_path, device):
    rewinder = lth_prune.register_rewind_hooks(block)
    prune.global_unstructured(lth_prune.prunable(block), pruning_method=lth_prune.LotteryTicket, amount=0.5)
    lth_prune.save_ticket(block, tmp_path / "ticket.pt", rewinder)
    fresh = Block().to(device)
    lth_prune.load_ticket(fresh, tmp_path / "ticket.pt")
    assert torch.equal(lth_prune.get_masks(fresh)["attn.in_proj_weight"], lth_prune.get_masks(block)["attn.in_proj_weight"])
