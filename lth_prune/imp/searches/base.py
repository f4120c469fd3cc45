"""What every search shares: :class:`Search`, what it hands the level loop (:class:`LevelStart`),
and the registry of methods, :data:`METHODS`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import torch
from torch import Tensor, nn

from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.registry import Registry
from lth_prune.rewind import Rewinder
from lth_prune.training import LearningRateSchedule

# The settings (lth_prune.imp.config) ask METHODS when they are checked, and the setup and the
# run store are built on the settings: so this module names their types without importing them.
Setup = Any  # lth_prune.imp.setup.Setup
RunStore = Any  # lth_prune.imp.store.RunStore
ExperimentConfig = Any  # lth_prune.imp.config.ExperimentConfig
DataSplits = Any  # lth_prune.data.DataSplits

__all__ = ["METHODS", "LevelStart", "Search"]


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
        phase: the name its training is seeded by (``"ticket"``).
    """

    network: nn.Module
    measured: dict[str, Any] = field(default_factory=dict)
    start: int = 0
    schedule: LearningRateSchedule | None = None
    optimizer: torch.optim.Optimizer | None = None
    masked: bool = True
    scores: Mapping[str, Tensor] | None = None
    phase: str = "ticket"


class Search:
    """How one seed's tickets are found, level after level.

    The level loop (:mod:`lth_prune.imp.experiment`) asks :meth:`level` for each level's network,
    trains it, tells :meth:`trained`, then trains the branches from :attr:`rewind_point`.

    A subclass registered in :data:`METHODS` (``@METHODS.register("name", title=..., help=...)``)
    is an ``ExperimentConfig.method``, a ``--method`` choice and a title in the report.

    Attributes:
        gives_scores: whether :meth:`level` gives the scores its masks were chosen by.
        default_pruning: the ``ExperimentConfig.pruning`` it uses where the config leaves it
            ``None``: ``"layerwise"`` (each layer at its rate) or ``"global"``.
        rewinds: whether it prunes a trained network and rewinds it, so that the rewind mode
            names its tickets in tables and figures (IMP only).
        settings: the ``ExperimentConfig`` fields only this method reads (IMP: ``rewind``,
            ``rewind_step``, ``one_shot``); every other method needs them at their defaults.
        metrics: measurements its :meth:`level` records that results average over seeds
            (transfer: ``source_test_accuracy``).
    """

    gives_scores: ClassVar[bool] = True
    default_pruning: ClassVar[str] = "layerwise"
    rewinds: ClassVar[bool] = False
    settings: ClassVar[tuple[str, ...]] = ()
    metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, setup: Setup, seed: int) -> None:
        self.setup = setup
        self.seed = seed

    @classmethod
    def validate(cls, config: ExperimentConfig, method: str) -> None:
        """Refuse settings this method cannot mean, when the config is made: those another method
        owns (its :attr:`settings`) must be at their defaults.

        Raises:
            ValueError: with ``ExperimentConfig``'s wording.
        """
        defaults = {setting.name: setting.default for setting in dataclasses.fields(config)}
        for owner in METHODS.names():
            search = METHODS.get(owner)
            if search is cls or not search.settings:
                continue
            given = [name for name in search.settings if getattr(config, name) != defaults[name]]
            if given:
                shown = ", ".join(f"{name}={getattr(config, name)!r}" for name in given)
                wanted = ", ".join(f"{name}={defaults[name]!r}" for name in given)
                raise ValueError(
                    f"ExperimentConfig: {', '.join(search.settings)} describe method {owner!r}; method {method!r} "
                    f"does not use them, so it needs {wanted}, got {shown}."
                )

    @classmethod
    def plan(cls, config: ExperimentConfig, data: DataSplits) -> tuple[Any, DataSplits]:
        """What the whole run needs from this method before any work, and the data it trains on.

        Called once per process by :func:`lth_prune.imp.setup.prepare`, before the model is
        built; the result is ``Setup.plan``. Default: nothing, and the data as they are
        (transfer: the source's tickets fitted to the data, and the data resized to them).

        Raises:
            ValueError: if the settings cannot run (named before anything is trained).
        """
        return None, data

    @classmethod
    def begin(cls, setup: Setup, writer: RunStore | None) -> None:
        """Called once a run's settings are written, before its first level; ``writer`` is the
        run store (``None`` in memory, or on a rank that does not write)."""

    @classmethod
    def check(cls, setup: Setup) -> None:
        """Refuse, before any work, settings this search cannot run (e.g. a branch it cannot feed).

        Raises:
            ValueError: naming the setting.
        """
        needing = [name for name in setup.config.controls if BRANCHES.get(name).needs_scores]
        if needing and not cls.gives_scores:
            raise ValueError(
                f"run(): controls {needing} need the scores a level's mask was chosen by, and method "
                f"{setup.config.method!r} has none; drop them or choose another method."
            )

    @property
    def levels(self) -> list[int]:
        """The levels this seed trains, in order: ``0`` to ``config.rounds`` by default."""
        return list(range(self.setup.config.rounds + 1))

    def resume(self, store: RunStore, finished: int) -> None:
        """Take up a run whose first ``finished`` levels (of :attr:`levels`) are done."""

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


#: How each level's ticket is found, by ``ExperimentConfig.method``: the searches registered
#: here (``"imp"``, ``"gmp"``) and, through :mod:`~lth_prune.imp.searches.at_init`, every pruning
#: criterion of :data:`lth_prune.criteria.CRITERIA` (``"snip"``, ...), now or later registered.
METHODS: Registry[type[Search]] = Registry(
    "method", accepts=(lambda value: isinstance(value, type) and issubclass(value, Search), "a Search subclass")
)
