"""What every search shares: :class:`Search`, what it hands the level loop (:class:`LevelStart`),
and the registry of methods."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, TypeVar

import torch
from torch import Tensor, nn

from lth_prune.criteria import CRITERIA
from lth_prune.imp.branches import get_branch
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.imp.rundir import RunStore
from lth_prune.imp.setup import Setup
from lth_prune.rewind import Rewinder
from lth_prune.training import LearningRateSchedule

__all__ = ["AT_INIT", "LevelStart", "Search", "register_search", "search_for"]


@dataclass
class LevelStart:
    """A level's network, ready to train, and how to train it.

    Attributes:
        network: the pruned (at level 0 dense) network, on the training device.
        measured: measurements taken before training (IMP: ``no_retrain_accuracy``).
        start: the schedule step training starts at.
        schedule: the learning-rate schedule; ``None``: the run's.
        optimizer: an optimizer the search needs (hooks on its steps); ``None``: a fresh one.
        masked: train inside :func:`lth_prune.masked_training` (``False`` when the masks change
            during training).
        scores: what the level's mask was chosen by, by weight name (the lowest pruned first);
            ``None`` if the search has none.
    """

    network: nn.Module
    measured: dict[str, Any] = field(default_factory=dict)
    start: int = 0
    schedule: LearningRateSchedule | None = None
    optimizer: torch.optim.Optimizer | None = None
    masked: bool = True
    scores: Mapping[str, Tensor] | None = None


class Search:
    """How one seed's tickets are found, level after level.

    The level loop (:mod:`lth_prune.imp.experiment`) asks :meth:`level` for each level's network,
    trains it, tells :meth:`trained`, then trains the branches from :attr:`rewind_point`.

    Attributes:
        gives_scores: whether :meth:`level` gives the scores its masks were chosen by.
    """

    gives_scores: ClassVar[bool] = True

    def __init__(self, setup: Setup, seed: int) -> None:
        self.setup = setup
        self.seed = seed

    @classmethod
    def check(cls, setup: Setup) -> None:
        """Refuse, before any work, settings this search cannot run (e.g. a branch it cannot feed).

        Raises:
            ValueError: naming the setting.
        """
        needing = [name for name in setup.config.controls if get_branch(name).needs_scores]
        if needing and not cls.gives_scores:
            raise ValueError(
                f"run(): controls {needing} need the scores a level's mask was chosen by, and method "
                f"{setup.config.method!r} has none; drop them or choose another method."
            )

    def resume(self, store: RunStore, finished: int) -> None:
        """Take up a run whose first ``finished`` levels are done."""

    def level(self, level: int) -> LevelStart:
        """The network of ``level``, pruned, and how to train it."""
        raise NotImplementedError(f"{type(self).__name__}.level() must be implemented by the search.")

    def trained(self, level: int) -> None:
        """Called once ``level``'s network has trained."""

    @property
    def rewind_point(self) -> RewindPoint:
        """Where the branches start (the ticket's survivors' start); known once level 0 trained."""
        raise NotImplementedError

    @property
    def rewinder(self) -> Rewinder:
        """The rewind hooks whose point the level's ticket file records."""
        raise NotImplementedError


_REGISTRY: dict[str, type[Search]] = {}
# The key of the search that runs every criterion of lth_prune.criteria's registry.
AT_INIT = "criteria"
SearchT = TypeVar("SearchT", bound=type[Search])


def register_search(name: str) -> Any:
    """Class decorator: register a :class:`Search` for the ``ExperimentConfig.method`` ``name``
    (:data:`AT_INIT`: for every registered criterion)."""

    def register(cls: SearchT) -> SearchT:
        _REGISTRY[name] = cls
        return cls

    return register


def search_for(method: str) -> type[Search]:
    """The search of an ``ExperimentConfig.method``.

    Raises:
        ValueError: if no search runs that method (the message lists those that do).
    """
    if method in CRITERIA:
        return _REGISTRY[AT_INIT]
    if method not in _REGISTRY:
        names = [name for name in _REGISTRY if name != AT_INIT] + list(CRITERIA)
        raise ValueError(f"search_for(): method must be one of {names}, got {method!r}.")
    return _REGISTRY[method]
