"""Random re-initialization: the ticket's mask on a fresh initialization.

Does the ticket's *initialization* matter? If this trains as well as the ticket, its structure
alone explains the result. Frankle & Carbin (2019): on LeNet-300-100 these re-initialized
tickets start to lose accuracy near 21 % of weights remaining, winning tickets only below 3.6 %.
"""
from __future__ import annotations

from torch import nn

from lth_prune.imp.branches.base import BRANCHES, Branch, LevelTicket
from lth_prune.imp.seeding import derive_seed
from lth_prune.masks import set_masks

__all__ = ["RandomReinit"]


@BRANCHES.register(
    title="random reinit",
    help="the ticket's mask on a fresh initialization: does its initialization matter? (Frankle & Carbin 2019)",
)
class RandomReinit(Branch):
    """The level's masks on a new initialization from the same distribution; the full schedule."""

    name = "random_reinit"

    def network(self, ticket: LevelTicket) -> nn.Module:
        net = ticket.build(derive_seed(ticket.seed, "reinit", ticket.level))
        set_masks(net, ticket.masks)
        return net
