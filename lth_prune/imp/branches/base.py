"""What every branch shares: :class:`Branch`, what it is given (:class:`LevelTicket`), the registry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Mapping, Protocol, TypeVar

from torch import Tensor, nn

from lth_prune.imp.rewinding import RewindPoint

__all__ = ["Batches", "Branch", "LevelTicket", "Trainer", "branch_names", "get_branch", "register_branch"]

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

    A subclass sets :attr:`name` and :attr:`label`, implements :meth:`network` and may change
    :meth:`start_step`, :attr:`metrics`, :meth:`record` or :meth:`run`; registering it with
    :func:`register_branch` makes it a valid ``ExperimentConfig.controls`` entry, a CLI choice,
    a results key and a column and curve of the report.

    Attributes:
        name: the registry name and the prefix of its metrics (``"random_reinit"``).
        label: how tables and figures name it (``"random reinit"``).
        metrics: the per-level measurements it records; default ``("<name>_accuracy",)``.
        accuracy: whether its (first) metric is a test accuracy, drawn with the ticket's on the
            accuracy figure; other metrics get figures of their own.
        needs_scores: whether it needs :attr:`LevelTicket.scores` (a run refuses it up front
            where the method has none).
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    accuracy: ClassVar[bool] = True
    needs_scores: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
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


_REGISTRY: dict[str, type[Branch]] = {}
BranchT = TypeVar("BranchT", bound=type[Branch])


def register_branch(cls: BranchT) -> BranchT:
    """Class decorator: register a :class:`Branch` subclass under its ``name``.

    Raises:
        TypeError: if ``cls`` is not a Branch subclass.
        ValueError: if its name is empty or already taken.
    """
    if not (isinstance(cls, type) and issubclass(cls, Branch)):
        raise TypeError(f"register_branch(): cls must be a Branch subclass, got {cls!r}.")
    if not cls.name or not cls.name.isidentifier():
        raise ValueError(f"register_branch(): {cls.__name__}.name must be a Python identifier, got {cls.name!r}.")
    if cls.name in _REGISTRY:
        raise ValueError(f"register_branch(): name must be new, got {cls.name!r}, which {_REGISTRY[cls.name].__name__} has.")
    _REGISTRY[cls.name] = cls
    return cls


def branch_names() -> list[str]:
    """The registered branches' names, in registration order."""
    return list(_REGISTRY)


def get_branch(name: str) -> Branch:
    """The branch registered as ``name``.

    Raises:
        ValueError: if no branch has that name (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise ValueError(f"get_branch(): name must be one of {branch_names()}, got {name!r}.")
    return _REGISTRY[name]()
