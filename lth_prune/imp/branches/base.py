"""What every branch shares: :class:`Branch`, what it is given (:class:`LevelTicket`), the registry :data:`BRANCHES`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol

from torch import Tensor, nn

from lth_prune.imp.rewinding import RewindPoint
from lth_prune.registry import Registry

__all__ = ["BRANCHES", "Batches", "Branch", "LevelTicket", "Trainer"]

Batches = Iterable[tuple[Tensor, Tensor]]


class Trainer(Protocol):
    """What a branch trains and measures its networks with: the run's schedule, data and seeding.

    Calling it trains a network: ``trainer(network, phase, start)`` trains ``network`` in place
    from schedule step ``start``, seeded by the phase's name, and returns its measurements:
    ``"test_accuracy"``, ``"test_loss"``, ``"val_accuracy"``, ``"iterations"``,
    ``"early_stop_iteration"`` and ``"early_stop_test_accuracy"``.

    Attributes:
        config: the run's :class:`~lth_prune.imp.ExperimentConfig`.
        test_batches: the test split, in evaluation batches.
    """

    config: Any
    test_batches: Batches

    def __call__(self, network: nn.Module, phase: str, start: int) -> Mapping[str, Any]:
        """Train ``network`` from step ``start`` and measure it."""

    def train_batches(self, seed: int) -> Batches:
        """The training split in training batches, shuffled by ``seed`` (one epoch per pass)."""


@dataclass(frozen=True)
class LevelTicket:
    """What a branch is given: the ticket one seed found at one level.

    Attributes:
        level: the pruning level (> 0).
        seed: the run seed.
        masks: the ticket's boolean masks by weight name (``"fc1.weight"``).
        rewind_point: the seed's full rewind point: where the ticket's survivors start, pruned
            positions included.
        build: ``init_seed -> network``: a freshly initialized, unpruned network of the run's
            architecture on the training device, built under ``torch.manual_seed(init_seed)``.
        scores: the scores the level's mask was chosen by, by weight name (the lowest were
            pruned), when the method has them (IMP: the trained weights' magnitudes; a criterion:
            its scores); ``None`` otherwise.
    """

    level: int
    seed: int
    masks: Mapping[str, Tensor]
    rewind_point: RewindPoint
    build: Callable[[int], nn.Module]
    scores: Mapping[str, Tensor] | None = None


class Branch:
    """A network trained from a level's ticket next to it, with the same schedule and data.

    A subclass sets :attr:`name`, implements :meth:`network` and may change :meth:`start_step`,
    :attr:`metrics`, :meth:`record` or :meth:`run`; registering it with
    ``@BRANCHES.register(title=..., help=...)`` makes it a valid ``ExperimentConfig.controls``
    entry, a CLI choice, a results key and a column and curve of the report, named by its title.

    Attributes:
        name: the registry name and the prefix of its metrics (``"random_reinit"``), a Python
            identifier.
        metrics: the per-level measurements it records; default ``("<name>_accuracy",)``.
        accuracy: whether its (first) metric is a test accuracy, drawn with the ticket's on the
            accuracy figure; other metrics get figures of their own.
        needs_scores: whether it needs :attr:`LevelTicket.scores` (a run refuses it up front
            where the method has none).
    """

    name: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    accuracy: ClassVar[bool] = True
    needs_scores: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name and not cls.name.isidentifier():
            raise ValueError(f"Branch: {cls.__name__}.name must be a Python identifier (it prefixes metrics), got {cls.name!r}.")
        if cls.name and not cls.metrics:
            cls.metrics = (f"{cls.name}_accuracy",)

    def network(self, ticket: LevelTicket) -> nn.Module:
        """The network this branch trains, built from the ticket (masks set, weights in place)."""
        raise NotImplementedError(f"{type(self).__name__}.network() must be implemented by the branch.")

    def start_step(self, ticket: LevelTicket) -> int:
        """The step of the learning-rate schedule the branch's training starts at; default 0."""
        return 0

    def record(self, outcome: Mapping[str, Any]) -> dict[str, Any]:
        """The measurements kept from the trained network's outcome; default its test accuracy."""
        return {self.metrics[0]: outcome["test_accuracy"]}

    def run(self, ticket: LevelTicket, train: Trainer) -> dict[str, Any]:
        """Build, train and measure: what the level loop calls."""
        return self.record(train(self.network(ticket), self.name, self.start_step(ticket)))


#: The branches by name, in registration order (the order of results' columns):
#: ``@BRANCHES.register(title=..., help=...)`` on a :class:`Branch` subclass registers it under
#: its ``name``.
BRANCHES: Registry[type[Branch]] = Registry(
    "branch", accepts=(lambda value: isinstance(value, type) and issubclass(value, Branch), "a Branch subclass")
)
