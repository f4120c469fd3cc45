"""Pruning at initialization: every level prunes the freshly initialized network by a criterion.

Level ``n`` builds the seed's initialization again (the one IMP starts from), prunes it with the
criterion of ``ExperimentConfig.method`` (:mod:`lth_prune.criteria`) to the weights ``n`` IMP
rounds would leave (:func:`~lth_prune.imp.pruning.level_targets`), and trains it for the whole
schedule. Level 0 is the dense network trained, the same as IMP's level 0. The criterion scores
the network on one batch of ``10 x classes`` training examples drawn for the level.
"""
from __future__ import annotations

import torch

from lth_prune.layers import tensor_key
from lth_prune.criteria import CRITERIA, prune_at_init
from lth_prune.imp.pruning import level_targets
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.imp.searches.base import METHODS, LevelStart, Search
from lth_prune.imp.seeding import derive_seed
from lth_prune.imp.setup import Setup
from lth_prune.rewind import Rewinder, register_rewind_hooks

__all__ = ["AtInitialization"]

# Examples a criterion scores the network on, per class (GraSP's and Synaptic-Flow's choice).
EXAMPLES_PER_CLASS = 10


class AtInitialization(Search):
    """Prune the initialization by a criterion to each level's count; train from step 0."""

    default_pruning = "global"

    def __init__(self, setup: Setup, seed: int) -> None:
        super().__init__(setup, seed)
        self.criterion = CRITERIA.get(setup.config.method)
        self._rewinder = self._fresh()[1]
        self._point = RewindPoint(self._rewinder.rewind_point, 0)

    def level(self, level: int) -> LevelStart:
        net, self._rewinder = self._fresh()
        start = LevelStart(net)
        if level > 0:
            config, data = self.setup.config, self.setup.data
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "score_batch", level))
            chosen = torch.randperm(len(data.train_y), generator=generator)[: EXAMPLES_PER_CLASS * data.num_classes]
            index = chosen.to(data.train_y.device)
            scores = prune_at_init(
                net, self.criterion, level_targets(net, config, level),
                batches=[(data.train_x[index], data.train_y[index])], exclude=config.exclude,
                input_shape=tuple(data.input_shape), seed=derive_seed(self.seed, "random_scores", level),
            )
            names = {id(module): name for name, module in net.named_modules()}
            start.scores = {
                tensor_key(names[id(module)], module): value
                for (module, _), value in scores.items()
            }
        return start

    def _fresh(self) -> tuple[torch.nn.Module, Rewinder]:
        net = self.setup.build(derive_seed(self.seed, "init"))
        return net, register_rewind_hooks(net)

    @property
    def rewind_point(self) -> RewindPoint:
        return self._point

    @property
    def rewinder(self) -> Rewinder:
        return self._rewinder


# Every criterion, registered now or later, is a method this search runs.
METHODS.follow(CRITERIA, lambda criterion: AtInitialization)
