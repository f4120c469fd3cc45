"""Gradual magnitude pruning (Zhu & Gupta, 2017), the baseline that prunes during training: ``"gmp"``.

Level ``n`` trains the seed's initialization once, pruning it by magnitude on the cubic schedule
of :class:`lth_prune.GradualMagnitudePruning` from 10 % to 75 % of the steps, in 20 jumps, to the
weights ``n`` IMP rounds would leave; it trains on to the end with that mask. Level 0 is the
dense network trained. The masks change during training, so these phases train with
``torch.nn.utils.prune``'s hooks rather than :func:`lth_prune.masked_training`.
"""
from __future__ import annotations

from lth_prune.layers import prunable_layers
from lth_prune.criteria import GradualMagnitudePruning
from lth_prune.imp.pruning import level_targets
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.imp.searches.base import METHODS, LevelStart, Search
from lth_prune.imp.seeding import derive_seed
from lth_prune.imp.setup import Setup, make_optimizer
from lth_prune.masks import sparsity_report
from lth_prune.rewind import Rewinder, register_rewind_hooks

__all__ = ["GradualMagnitude"]

START, END, JUMPS = 0.10, 0.75, 20


@METHODS.register("gmp", title="GMP", help="gradual magnitude pruning during training, 10 % to 75 % of the steps (Zhu & Gupta 2017)")
class GradualMagnitude(Search):
    """Prune during training, on Zhu & Gupta's schedule, to each level's count."""

    gives_scores = False

    def __init__(self, setup: Setup, seed: int) -> None:
        super().__init__(setup, seed)
        net = setup.build(derive_seed(seed, "init"))
        self._rewinder = register_rewind_hooks(net)
        self._point = RewindPoint(self._rewinder.rewind_point, 0)
        self._schedule: GradualMagnitudePruning | None = None

    @classmethod
    def check(cls, setup: Setup) -> None:
        super().check(setup)
        if setup.iterations < 2:
            raise ValueError(f"run(): method 'gmp' prunes during training and needs at least 2 steps a level, got {setup.iterations}.")

    def level(self, level: int) -> LevelStart:
        config = self.setup.config
        net = self.setup.build(derive_seed(self.seed, "init"))
        self._rewinder = register_rewind_hooks(net)
        start = LevelStart(net, optimizer=make_optimizer(net, config), masked=False)
        if level > 0:
            iterations = self.setup.iterations
            first = int(START * iterations)
            last = max(first + 1, int(END * iterations))
            targets = level_targets(net, config, level)
            pruned = {name for name, _ in prunable_layers(net, config.exclude, "run()")}
            totals = {row.name: row.total for row in sparsity_report(net) if row.name in pruned}
            if isinstance(targets, int):
                final: float | dict[str, float] = 1.0 - targets / sum(totals.values())
            else:
                final = {name: 1.0 - targets[name] / totals[name] for name in targets}
            self._schedule = GradualMagnitudePruning(
                net, final, start_step=first, end_step=last, every=max(1, (last - first) // JUMPS),
                exclude=config.exclude, optimizer=start.optimizer,
            )
        return start

    def trained(self, level: int) -> None:
        if self._schedule is not None:
            self._schedule.remove()
            self._schedule = None

    @property
    def rewind_point(self) -> RewindPoint:
        return self._point

    @property
    def rewinder(self) -> Rewinder:
        return self._rewinder
