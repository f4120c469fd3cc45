"""Stability to SGD noise (Frankle, Dziugaite, Roy & Carbin, ICML 2020): is the ticket's start stable?

Two copies of the level's ticket start where the ticket starts (its masks, the seed's rewind
point and its step) and train with different SGD noise: their own data order and augmentation.
The branch records the test error along the straight line between them
(:func:`lth_prune.interpolation_path`, 30 points) and the instability: the largest error on the
path minus the mean of the endpoints'. The paper finds IMP's tickets match the dense network
only where this is near 0: at initialization for LeNet on MNIST, only after a short stretch of
training (rewinding to step k) for deeper networks.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from lth_prune.connectivity import interpolation_path
from lth_prune.imp.branches.base import BRANCHES, Branch, LevelTicket, Trainer
from lth_prune.imp.seeding import derive_seed
from lth_prune.masks import set_masks
from lth_prune.rewind import capture_state, restore_state

__all__ = ["Stability"]

POINTS = 30


@BRANCHES.register(
    title="instability",
    help="two copies from the rewind point, the error along the line between them (Frankle et al. 2020)",
)
class Stability(Branch):
    """Two copies of the ticket from its start with different SGD noise; the error between them."""

    name = "stability"
    metrics = ("stability_instability",)
    accuracy = False

    def network(self, ticket: LevelTicket) -> nn.Module:
        net = ticket.build(derive_seed(ticket.seed, "init"))  # its values are overwritten below
        set_masks(net, ticket.masks)
        restore_state(net, ticket.rewind_point.state)
        return net

    def start_step(self, ticket: LevelTicket) -> int:
        return ticket.rewind_point.step

    def run(self, ticket: LevelTicket, train: Trainer) -> dict[str, Any]:
        levels = train.config.stability_levels
        if levels and ticket.level not in levels:
            return {}
        first, second = self.network(ticket), self.network(ticket)
        # Different phase names: each copy draws its own batch order and augmentation.
        train(first, "stability_a", self.start_step(ticket))
        train(second, "stability_b", self.start_step(ticket))
        reestimate = (
            train.train_batches(derive_seed(ticket.seed, "stability_batchnorm", ticket.level))
            if train.config.stability_batchnorm == "reestimate" else None
        )
        path = interpolation_path(first, capture_state(first), capture_state(second), train.test_batches,
                                  points=POINTS, reestimate=reestimate)
        return {"stability_instability": path.instability, "stability_errors": list(path.errors)}
