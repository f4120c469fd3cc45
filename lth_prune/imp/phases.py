"""Training one network of a level (a phase): what the ticket, every branch and a transfer share.

A phase seeds itself from the run seed, its name and the level (:func:`derive_seed`), so its
outcome does not depend on what ran before it. Where training starts on the schedule and which
schedule it follows are the caller's: the rewind policy's for the ticket, the branch's for a
branch, step 0 of the full schedule for a transfer.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lth_prune import distributed
from lth_prune.execution.tensorboard import RunLogger
from lth_prune.imp.branches import Trainer
from lth_prune.imp.seeding import derive_seed
from lth_prune.imp.setup import Setup, make_optimizer
from lth_prune.masks import sparsity_report
from lth_prune.sparse import masked_training
from lth_prune.training import DivergenceError, LearningRateSchedule, TrainObserver, evaluate, train

__all__ = ["BranchTrainer", "sparsity_record", "train_network", "trainer"]


def train_network(
    setup: Setup,
    net: nn.Module,
    *,
    seed: int,
    level: int,
    phase: str,
    start: int = 0,
    schedule: LearningRateSchedule | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    masked: bool = True,
    end: int | None = None,
    observer: TrainObserver | None = None,
) -> dict[str, Any]:
    """Train ``net`` in place from step ``start`` to the end of the schedule, and measure it.

    Args:
        setup: the run's shared setup.
        net: the network, masks set, on the setup's device.
        seed: the run seed.
        level: the level, for seeding and progress.
        phase: the phase's name (``"ticket"``, a branch's name, ...), for seeding and progress.
        start: the schedule step training starts at.
        schedule: the learning-rate schedule; default the setup's.
        optimizer: an optimizer over ``net`` made by the caller (e.g. with rewind hooks on it);
            default a fresh one from the config.
        masked: train inside :func:`lth_prune.masked_training` when the config says so;
            ``False`` when the masks change during training (gradual pruning).
        end: the schedule step training stops at; default the schedule's end.
        observer: told of every step and evaluation (the run's TensorBoard log).

    Returns:
        ``iterations``, ``test_accuracy``, ``test_loss``, ``val_accuracy``,
        ``early_stop_iteration`` and ``early_stop_test_accuracy``.
    """
    config = setup.config
    torch.manual_seed(derive_seed(seed, phase, "train", level))
    train_loader = setup.train_loader(derive_seed(seed, phase, "batches", level))
    optimizer = optimizer or make_optimizer(net, config)
    masking = (
        masked_training(net, optimizer, sparse_density=config.sparse_density)
        if config.masked_training and masked else contextlib.nullcontext()
    )
    with masking:
        trained = net
        if distributed.world_size() > 1:
            # Each rank trains on its shard of every batch; DDP averages the gradients.
            device_ids = [setup.device] if setup.device.type == "cuda" else None
            trained = DistributedDataParallel(net, device_ids=device_ids)
        try:
            outcome = train(
                trained, optimizer, train_loader, schedule or setup.schedule,
                iterations=setup.iterations if end is None else end, start_iteration=start, val_batches=setup.val_loader,
                test_batches=setup.test_loader, eval_every=setup.eval_every, progress=setup.progress,
                description=f"level {level} {phase.replace('_', ' ')}", observer=observer,
            )
        except DivergenceError as error:
            kept = "nothing had finished" if level == 0 else f"levels 0 to {level - 1} of seed {seed} are finished"
            advice = (
                "fix the data, then resume (--resume) to train this level again" if error.bad_inputs else
                "start it again with other settings (a run with no finished level takes them; "
                "one with finished levels needs another directory)"
            )
            raise DivergenceError(
                f"run(): level {level} ({phase.replace('_', ' ')}) of seed {seed} stopped: "
                f"{str(error).removeprefix('train(): ')} {kept.capitalize()}; {advice}.",
                error.step, error.loss, error.bad_inputs,
            ) from error
    test = evaluate(net, setup.test_loader)
    return {
        "iterations": outcome.iterations,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "val_accuracy": outcome.final.accuracy,
        "early_stop_iteration": outcome.early_stop_iteration,
        "early_stop_test_accuracy": outcome.early_stop_test.accuracy if outcome.early_stop_test else None,
    }


class BranchTrainer:
    """The :class:`~lth_prune.imp.branches.Trainer` of one level of one seed."""

    def __init__(self, setup: Setup, seed: int, level: int, log: RunLogger | None = None) -> None:
        self.setup, self.seed, self.level, self.log = setup, seed, level, log
        self.config = setup.config
        self.test_batches = setup.test_loader

    def __call__(self, net: nn.Module, phase: str, start: int) -> dict[str, Any]:
        observer = None if self.log is None else self.log.phase(self.level, phase)
        return train_network(self.setup, net, seed=self.seed, level=self.level, phase=phase, start=start, observer=observer)

    def train_batches(self, seed: int) -> Any:
        return self.setup.train_loader(seed)


def trainer(setup: Setup, seed: int, level: int, log: RunLogger | None = None) -> Trainer:
    """What a branch trains its networks with at ``level``: the full schedule from its start step
    (logged to ``log``, the seed's TensorBoard run, if given)."""
    return BranchTrainer(setup, seed, level, log)


def sparsity_record(net: nn.Module) -> dict[str, Any]:
    """``weights_remaining`` (fraction of prunable weights) and ``layers`` (the fraction per layer)."""
    rows = sparsity_report(net)
    total = sum(row.total for row in rows)
    return {
        "weights_remaining": sum(row.remaining for row in rows) / total,
        "layers": {row.name: row.fraction_remaining for row in rows},
    }
