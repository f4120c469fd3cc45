"""A plugin: one model, data set, method, branch and rewind mode, registered from outside lth_prune.

Importing this module registers them; then they are settings like the built-in ones::

    lth-prune run --plugin docs/examples/my_extensions.py --model tiny-mlp --dataset stripes \\
        --method iterative-snip --controls signed_reinit
    lth-prune run --plugin docs/examples/my_extensions.py --dataset stripes --rewind lr-half

or, from Python, ``ExperimentConfig(plugins=("docs/examples/my_extensions.py",), ...)``. The run
stores the plugin, so ``--resume``, ``lth-prune report`` and ``compare`` import it again.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from lth_prune.criteria import SNIP, prune_at_init
from lth_prune.data import DATASETS, DatasetSource, RawData
from lth_prune.imp import BRANCHES, METHODS, REWIND_POLICIES
from lth_prune.imp.branches import Branch, LevelTicket
from lth_prune.imp.pruning import level_targets
from lth_prune.imp.rewinding import RewindPoint, RewindPolicy
from lth_prune.imp.searches import LevelStart, Search
from lth_prune.imp.seeding import derive_seed
from lth_prune.layers import prunable_layers, stored_tensor, tensor_key
from lth_prune.masks import set_masks
from lth_prune.models import MODELS
from lth_prune.rewind import Rewinder, register_rewind_hooks
from lth_prune.training import LearningRateSchedule


# -- A model: a builder that takes the data's classes and image shape. --------------------------
@MODELS.register("tiny-mlp", title="Tiny MLP", help="one hidden layer of 32 units")
def tiny_mlp(*, num_classes: int = 10, input_shape: tuple[int, int, int] = (1, 8, 8)) -> nn.Module:
    channels, height, width = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, 32), nn.ReLU(), nn.Linear(32, num_classes))


# -- A data set: how to read its training and test images and labels. --------------------------
def read_stripes(data_dir: object, download: bool) -> RawData:
    """Horizontal against vertical stripes, 8x8, in noise: 320 training and 80 test images."""
    rng = np.random.default_rng(0)
    labels = np.arange(400) % 2
    lines = (np.arange(8) % 2 == 0).astype(np.float32)
    patterns = np.stack([np.tile(lines[:, None], (1, 8)), np.tile(lines[None, :], (8, 1))])
    images = (patterns[labels] + 0.8 * rng.standard_normal((400, 8, 8))).astype(np.float32)
    return RawData(images[:320], labels[:320], images[320:], labels[320:], num_classes=2, pixel_scale=1.0,
                   class_names=("horizontal", "vertical"), source="docs/examples/my_extensions.py")


DATASETS.register("stripes", DatasetSource(read_stripes, default_val_size=0.1), title="Stripes",
                  help="horizontal against vertical stripes in noise, 8x8, two classes")


# -- A method: how each level's network is found. ------------------------------------------------
@METHODS.register("iterative-snip", title="iterative SNIP",
                  help="SNIP scored again after each of 10 rounds at initialization (de Jorge et al. 2021)")
class IterativeSNIP(Search):
    """Prune the initialization to each level's count in 10 rounds of SNIP, then train it."""

    default_pruning = "global"
    gives_scores = False

    def __init__(self, setup, seed: int) -> None:
        super().__init__(setup, seed)
        self._initialization()

    def level(self, level: int) -> LevelStart:
        net = self._initialization()
        if level > 0:
            data, config = self.setup.data, self.setup.config
            batch = (data.train_x[:100], data.train_y[:100])
            prune_at_init(net, SNIP, level_targets(net, config, level), batches=batch, rounds=10, exclude=config.exclude)
        return LevelStart(net)

    def _initialization(self) -> nn.Module:
        net = self.setup.build(derive_seed(self.seed, "init"))
        self._rewinder = register_rewind_hooks(net)
        return net

    @property
    def rewind_point(self) -> RewindPoint:
        return RewindPoint(self._rewinder.rewind_point, 0)

    @property
    def rewinder(self) -> Rewinder:
        return self._rewinder


# -- A branch: a network trained from each level's ticket beside it. -----------------------------
@BRANCHES.register(title="signed reinit", help="the ticket's mask and signs on fresh magnitudes (Zhou et al. 2019)")
class SignedReinit(Branch):
    """The ticket's mask and rewind-point signs on freshly drawn magnitudes (Zhou et al. 2019)."""

    name = "signed_reinit"

    def network(self, ticket: LevelTicket) -> nn.Module:
        net = ticket.build(derive_seed(ticket.seed, "signed_reinit", ticket.level))
        set_masks(net, ticket.masks)
        with torch.no_grad():
            for layer, module in prunable_layers(net):
                key, weights = tensor_key(layer, module), stored_tensor(module)  # weight_orig, pruned
                if key in ticket.masks:
                    weights.copy_(weights.abs() * torch.sign(ticket.rewind_point.state[key]).to(weights.device))
        return net


# -- A rewind mode: what the survivors keep, and the schedule they train on. ----------------------
@REWIND_POLICIES.register(title="half-rate rewinding",
                          help="survivors keep their trained values; the schedule is replayed at half its rate")
class HalfRateRewind(RewindPolicy):
    """Learning-rate rewinding (Renda et al. 2020) at half the peak learning rate."""

    name = "lr-half"
    resets_weights = False

    def schedule(self, base: LearningRateSchedule, level: int) -> LearningRateSchedule:
        return base if level == 0 else dataclasses.replace(base, lr=base.lr / 2)

    @property
    def description(self) -> str:
        return "half-rate rewinding"

    @property
    def ticket_label(self) -> str:
        return "IMP, half-rate rewinding"
