"""Ticket transfer (Morcos et al., "One ticket to win them all", 2019): the ``"transfer"`` search.

Each level is a ticket another run found (``ExperimentConfig.transfer_from``), fitted to this
run's data (:mod:`lth_prune.imp.transfer.fitting`: the output layer kept or made new, the images
resized where asked) and trained here from step 0 with this run's schedule, next to the
branches. Level 0 is the source's dense network at its rewind point, trained here. The level
loop is IMP's, so a transfer checkpoints, resumes and reports as any run does.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lth_prune.data import DataSplits
from lth_prune.imp.branches.random_pruning import random_masks
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.imp.store import RunStore
from lth_prune.imp.searches.base import METHODS, LevelStart, Search
from lth_prune.imp.seeding import derive_seed
from lth_prune.imp.setup import Setup
from lth_prune.imp.transfer.fitting import TransferPlan, plan_transfer
from lth_prune.masks import set_masks
from lth_prune.rewind import Rewinder, capture_state, register_rewind_hooks, restore_state

__all__ = ["TransferredTickets"]


@METHODS.register(
    "transfer", title="transferred tickets",
    help="the tickets of another run (--transfer-from), fitted to this data set and trained on it (Morcos et al. 2019)",
)
class TransferredTickets(Search):
    """Train another run's tickets, fitted to this data, level after level."""

    gives_scores = False
    settings = ("transfer_from", "transfer_levels", "transfer_seed", "resize")
    metrics = ("source_test_accuracy",)

    @classmethod
    def validate(cls, config: ExperimentConfig, method: str) -> None:
        super().validate(config, method)
        if config.transfer_from is None:
            raise ValueError(
                "ExperimentConfig: method 'transfer' trains the tickets of another run; set transfer_from "
                "(--transfer-from) to its run directory, got None."
            )

    @classmethod
    def plan(cls, config: ExperimentConfig, data: DataSplits) -> tuple[TransferPlan, DataSplits]:
        source = RunStore(config.transfer_from)
        source_config = source.read_config()
        if source_config is None:
            raise FileNotFoundError(
                f"transfer(): source must be a run directory written by lth-prune run (with config.json), "
                f"got {config.transfer_from!r}."
            )
        if _normalized(config.model) != _normalized(source_config.model):
            raise ValueError(
                f"transfer(): the model must be the source run's model {source_config.model!r}, got {config.model!r}."
            )
        return plan_transfer(
            source, source_config, config, data, config.transfer_levels or None, config.transfer_seed, config.resize,
        )

    @classmethod
    def begin(cls, setup: Setup, writer: RunStore | None) -> None:
        if writer is not None:
            writer.write_transfer(setup.plan.info)

    def __init__(self, setup: Setup, seed: int) -> None:
        super().__init__(setup, seed)
        self.plan: TransferPlan = setup.plan
        self.source_seed = self.plan.source_seeds[seed]
        # One fresh initialization per seed: a new output layer starts from the same values at
        # every level, as an IMP run's ticket does.
        self._fresh = capture_state(setup.build(self._init_seed))
        self._point = RewindPoint({**self._fresh, **self.plan.rewind_points[self.source_seed]}, 0)
        self._rewinder: Rewinder | None = None

    @property
    def levels(self) -> list[int]:
        return list(self.plan.levels)

    def level(self, level: int) -> LevelStart:
        fitted = self.plan.tickets[(self.source_seed, level)]
        masks = dict(fitted.masks)
        if fitted.output_fraction < 1.0 and self.plan.output_layer == "new":
            # A new output layer keeps the source output layer's fraction, at random.
            shape = self._fresh[self.plan.output_name].shape
            kept = torch.zeros(shape, dtype=torch.bool).flatten()
            kept[: round(fitted.output_fraction * kept.numel())] = True
            masks.update(random_masks({self.plan.output_name: kept.view(shape)}, derive_seed(self.seed, "output_mask", level)))
        net = self._network(masks)
        self._rewinder = register_rewind_hooks(net)  # the transferred start, saved as the level's ticket
        measured: dict[str, Any] = {
            "source_seed": self.source_seed, "output_layer": self.plan.output_layer,
            "source_test_accuracy": fitted.source_test_accuracy,
        }
        return LevelStart(net, measured=measured, phase="transferred_ticket")

    @property
    def rewind_point(self) -> RewindPoint:
        return self._point

    @property
    def rewinder(self) -> Rewinder:
        if self._rewinder is None:
            raise RuntimeError("TransferredTickets.rewinder: no level has been started yet.")
        return self._rewinder

    @property
    def _init_seed(self) -> int:
        return derive_seed(self.seed, "transfer_init")

    def _network(self, masks: dict[str, torch.Tensor]) -> nn.Module:
        net = self.setup.build(self._init_seed)
        set_masks(net, masks)
        restore_state(net, self._point.state)  # into weight_orig, after the masks, so pruned entries read zero
        return net


def _normalized(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")
