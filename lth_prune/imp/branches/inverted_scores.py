"""Inverted scores: keep in each layer the weights the method would prune (Frankle et al., ICLR 2021).

A sanity check of "Pruning neural networks at initialization: why are we missing the mark?": if
a method's choice of *which* weights matters, keeping the lowest-scored ones instead, as many in
each layer as the ticket keeps, must hurt. The network starts where the ticket starts (the
seed's rewind point and its step). The other two checks of that paper are the existing branches:
layer-wise shuffling is ``random_pruning`` and re-initialization is ``random_reinit``.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from lth_prune.imp.branches.base import BRANCHES, Branch, LevelTicket
from lth_prune.imp.seeding import derive_seed
from lth_prune.masks import set_masks
from lth_prune.rewind import restore_state

__all__ = ["InvertedScores", "inverted_masks"]


@BRANCHES.register(
    title="inverted scores",
    help="keep what the method would prune (Frankle et al. 2021)",
)
class InvertedScores(Branch):
    """The lowest-scored weights of each layer, as many as the ticket keeps there, from its start."""

    name = "inverted_scores"
    needs_scores = True

    def network(self, ticket: LevelTicket) -> nn.Module:
        if ticket.scores is None:
            raise RuntimeError(
                "inverted_scores: the level's ticket carries no scores; this branch needs a method that has them."
            )
        net = ticket.build(derive_seed(ticket.seed, "init"))  # its values are overwritten below
        set_masks(net, inverted_masks(ticket.masks, ticket.scores))
        restore_state(net, ticket.rewind_point.state)
        return net

    def start_step(self, ticket: LevelTicket) -> int:
        return ticket.rewind_point.step


def inverted_masks(masks: Mapping[str, Tensor], scores: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """For each mask, one that keeps as many entries, those of *lowest* score (ties: lower index first).

    Example:
        >>> kept = {"w": torch.tensor([True, True, False, False])}
        >>> inverted_masks(kept, {"w": torch.tensor([4.0, 3.0, 1.0, 2.0])})["w"].tolist()
        [False, False, True, True]
    """
    result = {}
    for name, mask in masks.items():
        kept = int(torch.count_nonzero(mask))
        score = scores[name].detach().flatten().to(torch.float64).cpu()
        order = torch.sort(torch.nan_to_num(score, nan=float("inf")), stable=True).indices
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[order[:kept]] = True
        result[name] = flat.view(mask.shape).to(mask.device)
    return result
