"""Random pruning: a random mask with the ticket's per-layer sparsity, on the ticket's start.

Does *which* weights magnitude pruning kept matter, beyond how many it kept in each layer? The
network starts where the ticket starts: the seed's full rewind point (pruned positions
included, so the randomly kept weights start from the same values as in the dense network, not
from zeros) and the rewind point's schedule step.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from lth_prune.imp.branches.base import BRANCHES, Branch, LevelTicket
from lth_prune.imp.seeding import derive_seed
from lth_prune.masks import set_masks
from lth_prune.rewind import restore_state

__all__ = ["RandomPruning", "random_masks"]


@BRANCHES.register(
    title="random pruning",
    help="a random mask with the ticket's per-layer sparsity: does its structure matter? (Frankle & Carbin 2019)",
)
class RandomPruning(Branch):
    """Random masks with the level's per-layer counts, from the rewind point and its step."""

    name = "random_pruning"

    def network(self, ticket: LevelTicket) -> nn.Module:
        # The initialization drawn here is overwritten by the rewind point; it only builds the shapes.
        net = ticket.build(derive_seed(ticket.seed, "init"))
        set_masks(net, random_masks(ticket.masks, derive_seed(ticket.seed, "random_mask", ticket.level)))
        restore_state(net, ticket.rewind_point.state)  # into weight_orig, after the masks
        return net

    def start_step(self, ticket: LevelTicket) -> int:
        return ticket.rewind_point.step


def random_masks(masks: Mapping[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Boolean masks of the same shapes that keep as many entries as ``masks``, chosen at random.

    Args:
        masks: masks by weight name (nonzero meaning kept).
        seed: seed of the random choice.

    Returns:
        Masks by the same names, each with exactly as many kept entries as the given one.

    Example:
        >>> mask = torch.tensor([[1, 0], [0, 1]], dtype=torch.bool)
        >>> int(random_masks({"w": mask}, seed=0)["w"].sum())
        2
    """
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for name, mask in masks.items():
        kept = int(torch.count_nonzero(mask))
        order = torch.randperm(mask.numel(), generator=generator)
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[order[:kept]] = True
        result[name] = flat.view(mask.shape).to(mask.device)
    return result
