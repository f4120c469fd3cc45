"""Rewind policies: what happens to the survivors between pruning and retraining.

One object per value of ``ExperimentConfig.rewind``. A policy decides whether the surviving
weights are reset and to what (the rewind point, taken at optimizer step :attr:`point_step` of
level 0), at which step of the learning-rate schedule the ticket's training starts, and which
schedule it replays. The level loop asks the policy; nothing else interprets ``config.rewind``.

Adding a rewind mode is one :class:`RewindPolicy` subclass, here or in a user's ``--plugin``
module, registered with ``@REWIND_POLICIES.register(title=..., help=...)``.

Example:
    >>> from lth_prune.training import LearningRateSchedule
    >>> policy = REWIND_POLICIES.get("step")(rewind_step=100)
    >>> policy.resets_weights, policy.point_step, policy.start_step(level=3)
    (True, 100, 100)
    >>> round(REWIND_POLICIES.get("finetune")().schedule(LearningRateSchedule(0.1, 1000, decay="step"), level=2).lr, 6)
    0.001
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from lth_prune.registry import Registry
from lth_prune.training import LearningRateSchedule

__all__ = ["REWIND_POLICIES", "RewindPoint", "RewindPolicy"]


@dataclass(frozen=True)
class RewindPoint:
    """Where the networks of a seed start: the full state at the rewind point, and its step.

    The run store keeps one per seed; every branch, a resumed run and a transfer start from it.
    Unlike a compact ticket it holds the values at pruned positions too, so a network given
    another mask (random pruning) starts from the same distribution as the ticket.

    Attributes:
        state: every parameter and buffer by dense name (``"fc.weight"``), as
            :func:`lth_prune.rewind.capture_state` returns.
        step: the optimizer step it was taken at (0: the initialization).
    """

    state: dict[str, Tensor]
    step: int


class RewindPolicy:
    """The base policy: survivors reset to the initialization, the full schedule from step 0.

    Args:
        rewind_step: the optimizer step of the rewind point; only :class:`StepRewind` uses it.

    Attributes:
        name: the ``ExperimentConfig.rewind`` value it is registered under.
        resets_weights: whether the survivors go back to the rewind point after pruning.
    """

    name: ClassVar[str] = ""
    resets_weights: ClassVar[bool] = True

    def __init__(self, rewind_step: int = 0) -> None:
        self.rewind_step = rewind_step

    @classmethod
    def validate(cls, rewind_step: int, one_shot: bool) -> None:
        """Check the settings this mode depends on.

        Raises:
            ValueError: with ``ExperimentConfig``'s message wording.
        """
        if rewind_step != 0:
            raise ValueError(
                f"ExperimentConfig: rewind_step is only used with rewind='step', got rewind={cls.name!r} "
                f"and rewind_step={rewind_step}."
            )
        if one_shot and not cls.resets_weights:
            resetting = [name for name in REWIND_POLICIES.names() if REWIND_POLICIES.get(name).resets_weights]
            raise ValueError(
                f"ExperimentConfig: one_shot needs a rewind to weights (rewind={' or '.join(map(repr, resetting))}), "
                f"got {cls.name!r}."
            )

    @property
    def point_step(self) -> int:
        """The optimizer step of level 0 at which the rewind point is taken (0: at initialization)."""
        return 0

    def check_length(self, iterations: int, caller: str) -> None:
        """Check the policy fits a training of ``iterations`` steps.

        Raises:
            ValueError: if the rewind point lies at or beyond the end of training.
        """

    def start_step(self, level: int) -> int:
        """The schedule step the ticket's training starts at on ``level``."""
        return 0

    def schedule(self, base: LearningRateSchedule, level: int) -> LearningRateSchedule:
        """The learning-rate schedule the ticket trains with on ``level``."""
        return base

    @property
    def description(self) -> str:
        """How the report's titles name the mode (``"rewind to initialization"``)."""
        return "rewind to initialization"

    @property
    def ticket_label(self) -> str:
        """What the report's legend calls the retrained pruned network."""
        return "winning ticket"



#: The rewind modes by ``ExperimentConfig.rewind`` value: ``@REWIND_POLICIES.register(title=...,
#: help=...)`` on a :class:`RewindPolicy` subclass registers it under its ``name``.
REWIND_POLICIES: Registry[type[RewindPolicy]] = Registry(
    "rewind", accepts=(lambda value: isinstance(value, type) and issubclass(value, RewindPolicy), "a RewindPolicy subclass")
)

@REWIND_POLICIES.register(
    title="rewind to initialization",
    help="survivors back to their initial values; the full schedule (Frankle & Carbin 2019)",
)
class InitRewind(RewindPolicy):
    """``"init"``: survivors back to their initial values; the full schedule (Frankle & Carbin, 2019)."""

    name = "init"


@REWIND_POLICIES.register(
    title="late rewinding",
    help="survivors back to their values after --rewind-step; the schedule resumes there (Frankle et al. 2020)",
)
class StepRewind(RewindPolicy):
    """``"step"``: survivors back to their values after step k; the schedule resumes at k
    (late rewinding, Frankle et al., 2020)."""

    name = "step"

    @classmethod
    def validate(cls, rewind_step: int, one_shot: bool) -> None:
        if rewind_step < 1:
            raise ValueError(f"ExperimentConfig: rewind_step must be >= 1 when rewind='step', got {rewind_step}.")

    @property
    def point_step(self) -> int:
        return self.rewind_step

    @property
    def description(self) -> str:
        return f"rewind to step {self.rewind_step}"

    def check_length(self, iterations: int, caller: str) -> None:
        if self.rewind_step >= iterations:
            raise ValueError(
                f"{caller}: rewind_step must be smaller than the iterations per round ({iterations}), "
                f"got {self.rewind_step}."
            )

    def start_step(self, level: int) -> int:
        return self.rewind_step if level > 0 else 0

    @property
    def ticket_label(self) -> str:
        return f"winning ticket (rewind to step {self.rewind_step})"


@REWIND_POLICIES.register(
    title="learning-rate rewinding",
    help="survivors keep their trained values; the whole schedule is replayed (Renda et al. 2020)",
)
class LearningRateRewind(RewindPolicy):
    """``"lr"``: survivors keep their trained values; the whole schedule is replayed from step 0
    (Renda et al., 2020)."""

    name = "lr"
    resets_weights = False

    @property
    def description(self) -> str:
        return "learning-rate rewinding"

    @property
    def ticket_label(self) -> str:
        return "IMP, learning-rate rewinding"


@REWIND_POLICIES.register(
    title="fine-tuning",
    help="survivors keep their trained values and train at the schedule's final learning rate",
)
class FineTune(RewindPolicy):
    """``"finetune"``: survivors keep their trained values and train on at the schedule's final
    learning rate."""

    name = "finetune"
    resets_weights = False

    @property
    def description(self) -> str:
        return "fine-tuning"

    def schedule(self, base: LearningRateSchedule, level: int) -> LearningRateSchedule:
        if level == 0:
            return base
        return LearningRateSchedule(base(base.iterations - 1), base.iterations)

    @property
    def ticket_label(self) -> str:
        return "IMP, fine-tuning"
