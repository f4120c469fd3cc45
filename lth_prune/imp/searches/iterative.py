"""Iterative magnitude pruning (Frankle & Carbin, 2019): the ``"imp"`` search.

One network goes from level to level: level ``n`` prunes the network trained at ``n - 1`` (one
more round, or one shot from the dense trained network), measures it before retraining, lets the
rewind policy reset it, and trains it again.
"""
from __future__ import annotations

from torch import Tensor

from lth_prune import distributed
from lth_prune.layers import prunable_layers, prunable_tensor, tensor_key
from lth_prune.imp.pruning import prune_level
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.imp.store import RunStore
from lth_prune.imp.searches.base import METHODS, LevelStart, Search
from lth_prune.imp.seeding import derive_seed
from lth_prune.imp.setup import Setup, make_optimizer
from lth_prune.masks import get_masks, set_masks
from lth_prune.rewind import Rewinder, capture_state, register_rewind_hooks, restore_state
from lth_prune.training import evaluate

__all__ = ["IterativeMagnitude"]


@METHODS.register("imp", title="IMP", help="iterative magnitude pruning of the trained network, rewound (Frankle & Carbin 2019)")
class IterativeMagnitude(Search):
    """Prune the trained network by magnitude, reset it as the rewind policy says, train again."""

    rewinds = True
    settings = ("rewind", "rewind_step", "one_shot")

    def __init__(self, setup: Setup, seed: int) -> None:
        super().__init__(setup, seed)
        self.net = setup.build(derive_seed(seed, "init"))
        self._rewinder = register_rewind_hooks(self.net)
        distributed.check_identical(self._rewinder.rewind_point, f"the initial weights of seed {seed}")
        self._point = RewindPoint(self._rewinder.rewind_point, 0)
        self.dense_trained: dict[str, Tensor] | None = None

    def resume(self, store: RunStore, finished: int) -> None:
        state, masks = store.trained(finished - 1, self.seed)
        set_masks(self.net, masks)
        restore_state(self.net, state)
        self._point = store.rewind_point(self.seed)
        self._rewinder.set_rewind_point(self._point.state)
        self._rewinder.rewind_step = self._point.step
        if self.setup.config.one_shot:
            self.dense_trained = store.trained(0, self.seed)[0]

    def level(self, level: int) -> LevelStart:
        config, policy, net = self.setup.config, self.setup.policy, self.net
        start = LevelStart(net, start=policy.start_step(level), schedule=policy.schedule(self.setup.schedule, level))
        if level > 0:
            if self.setup.needs_scores:
                # The magnitudes this level's mask was chosen by: the trained weights, masked.
                start.scores = {
                    tensor_key(name, module): getattr(module, prunable_tensor(module) or "weight").detach().abs().clone()
                    for name, module in prunable_layers(net, config.exclude, "imp")
                }
            prune_level(net, config, level, self.dense_trained)
            distributed.check_identical(get_masks(net), f"the masks of seed {self.seed} at level {level}")
            start.measured["no_retrain_accuracy"] = evaluate(net, self.setup.test_loader).accuracy
            if policy.resets_weights:
                self._rewinder.rewind()
        start.optimizer = make_optimizer(net, config)
        if level == 0 and policy.point_step > 0:
            self._rewinder = register_rewind_hooks(net, at_step=policy.point_step, optimizer=start.optimizer)
        return start

    def trained(self, level: int) -> None:
        if level > 0:
            return
        self._point = RewindPoint(self._rewinder.rewind_point, self._rewinder.rewind_step)
        distributed.check_identical(self._point.state, f"the rewind point of seed {self.seed}")
        if self.setup.config.one_shot:
            self.dense_trained = capture_state(self.net)

    @property
    def rewind_point(self) -> RewindPoint:
        return self._point

    @property
    def rewinder(self) -> Rewinder:
        return self._rewinder


