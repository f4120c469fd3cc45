"""Training and evaluation loops, with the paper's early-stopping measurement.

:func:`train` runs a fixed number of optimizer steps (iterations), evaluates on validation
data every ``eval_every`` steps and reports the early-stopping iteration (the step of minimum
validation loss, as Frankle & Carbin 2019 do) and the test accuracy there. It takes any
re-iterable of ``(inputs, targets)`` batches: a :class:`torch.utils.data.DataLoader` or
:class:`lth_prune.data.InMemoryLoader`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lth_prune import distributed

__all__ = ["DivergenceError", "Evaluation", "LearningRateSchedule", "TrainObserver", "TrainResult", "evaluate", "train"]

Batches = Iterable[tuple[Tensor, Tensor]]
# On an accelerator the loss is checked every this many steps (one device sync each), on the CPU
# at every step (reading a scalar there costs about a microsecond).
_CHECK_EVERY = 100
# Devices whose evaluation sums are read batch by batch: on the CPU reading costs nothing; MPS
# has no float64 to sum them in.
_READ_EACH_BATCH = ("cpu", "mps")


class TrainObserver:
    """Watches a :func:`train` run: override the hooks you need (TensorBoard, a progress log).

    Every hook is called in the training process after the step or evaluation it reports.
    """

    def step(self, step: int, loss: Tensor, lr: float) -> None:
        """After optimizer step ``step`` (counted from the schedule's start): its loss (detached,
        on the device; read it only when you log, as reading syncs an accelerator) and learning rate."""

    def evaluation(self, step: int, validation: Evaluation, test: Evaluation | None) -> None:
        """After a validation evaluation at ``step``; ``test`` when validation loss improved."""


class DivergenceError(RuntimeError):
    """Training stopped because the loss became NaN or infinite.

    Attributes:
        step: the schedule step whose loss was not finite.
        loss: that loss (``nan``, ``inf`` or ``-inf``).
        bad_inputs: whether that step's input batch itself held non-finite values.
    """

    def __init__(self, message: str, step: int, loss: float, bad_inputs: bool) -> None:
        super().__init__(message)
        self.step = step
        self.loss = loss
        self.bad_inputs = bad_inputs


@dataclass(frozen=True)
class Evaluation:
    """Mean cross-entropy loss and accuracy (fraction in [0, 1]) over a data set."""

    loss: float
    accuracy: float


@dataclass(frozen=True)
class LearningRateSchedule:
    """A learning rate as a function of the optimizer step: linear warm-up, then a decay.

    Args:
        lr: the peak learning rate.
        iterations: the length of the whole schedule, in optimizer steps.
        warmup: steps of linear warm-up from ``lr / warmup`` to ``lr``.
        decay: ``"constant"``, ``"cosine"`` (to 0 at ``iterations``) or ``"step"`` (x0.1 at 50 %
            and again at 75 % of ``iterations``).

    Example:
        >>> schedule = LearningRateSchedule(lr=0.1, iterations=100, warmup=10, decay="cosine")
        >>> schedule(0), schedule(9), round(schedule(55), 4)
        (0.01, 0.1, 0.05)
    """

    lr: float
    iterations: int
    warmup: int = 0
    decay: str = "constant"

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.decay == "constant":
            return self.lr
        if self.decay == "cosine":
            span = max(1, self.iterations - self.warmup)
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup) / span)))
        if self.decay == "step":
            return self.lr * 0.1 ** sum(step >= self.iterations * f for f in (0.5, 0.75))
        raise ValueError(
            f"LearningRateSchedule(): decay must be 'constant', 'cosine' or 'step', got {self.decay!r}."
        )


@dataclass(frozen=True)
class TrainResult:
    """What one training run measured.

    Attributes:
        iterations: optimizer steps taken in this run.
        final: validation loss and accuracy at the end.
        early_stop_iteration: the step (counted from the schedule's start) of minimum
            validation loss.
        early_stop: validation loss and accuracy at that step.
        early_stop_test: test loss and accuracy at that step (``None`` without test data).
    """

    iterations: int
    final: Evaluation
    early_stop_iteration: int
    early_stop: Evaluation
    early_stop_test: Evaluation | None


def evaluate(model: nn.Module, batches: Batches, device: torch.device | str | None = None) -> Evaluation:
    """Mean cross-entropy and accuracy of ``model`` over ``batches``, in eval mode, no grad.

    Example:
        >>> model = torch.nn.Linear(2, 2)
        >>> result = evaluate(model, [(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))])
        >>> result.accuracy in (0.0, 1.0)
        True
    """
    was_training = model.training
    model.eval()
    loss_sum: float | Tensor = 0.0
    correct: int | Tensor = 0
    count = 0
    with torch.no_grad():
        for inputs, targets in batches:
            if device is not None:
                inputs, targets = inputs.to(device), targets.to(device)
            logits = model(inputs)
            batch_loss = F.cross_entropy(logits, targets, reduction="sum")
            batch_correct = (logits.argmax(dim=1) == targets).sum()
            if logits.device.type in _READ_EACH_BATCH:
                loss_sum += float(batch_loss)
                correct += int(batch_correct)
            else:
                # Summed where they are and read once below: reading each batch's sums waits
                # for the accelerator twice per batch. In float64, as Python sums the floats
                # read above, so the result is the same either way.
                loss_sum = loss_sum + batch_loss.double()
                correct = correct + batch_correct
            count += targets.numel()
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate(): batches must hold at least one example, got none.")
    return Evaluation(loss=float(loss_sum) / count, accuracy=int(correct) / count)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_batches: Batches,
    schedule: Callable[[int], float],
    *,
    iterations: int,
    start_iteration: int = 0,
    val_batches: Batches | None = None,
    test_batches: Batches | None = None,
    eval_every: int = 100,
    device: torch.device | str | None = None,
    progress: bool = False,
    description: str = "train",
    observer: TrainObserver | None = None,
) -> TrainResult:
    """Train ``model`` from step ``start_iteration`` to step ``iterations`` of ``schedule``.

    Starting later than 0 is how late rewinding resumes the schedule at the rewind step. Under
    ``torch.distributed`` (``model`` wrapped in ``DistributedDataParallel``) each rank trains on
    its shard of every batch.

    Args:
        model: the model; trained in place.
        optimizer: its optimizer; the learning rate of every group is set from ``schedule``.
        train_batches: re-iterable ``(inputs, targets)`` batches; re-iterated for each epoch.
        schedule: learning rate as a function of the step (e.g. :class:`LearningRateSchedule`).
        iterations: the step at which training ends (> ``start_iteration``).
        start_iteration: the step at which training starts.
        val_batches: validation data for early stopping; default: no early-stopping record
            beyond the final step.
        test_batches: test data, evaluated only when validation loss reaches a new minimum.
        eval_every: steps between validation evaluations.
        device: where batches are moved; ``None`` leaves them where they are.
        progress: show a tqdm bar.
        description: the bar's label.
        observer: told of every step and evaluation (see :class:`TrainObserver`).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: if ``iterations <= start_iteration`` or ``eval_every < 1``, or a batch
            source yields nothing.
        DivergenceError: if the loss becomes NaN or infinite; training stops there (on the
            CPU before that step changes the weights) and the message names the step, the
            learning rate and whether the inputs were at fault.
    """
    if iterations <= start_iteration:
        raise ValueError(
            f"train(): iterations must be greater than start_iteration ({start_iteration}), got {iterations}."
        )
    if eval_every < 1:
        raise ValueError(f"train(): eval_every must be >= 1, got {eval_every}.")
    best: tuple[float, int, Evaluation, Evaluation | None] | None = None
    last: Evaluation | None = None
    model.train()
    bar = tqdm(total=iterations - start_iteration, desc=description, disable=not progress, leave=False)
    step = start_iteration
    guard = _FiniteLoss()
    for inputs, targets in _forever(train_batches):
        if device is not None:
            inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = schedule(step)
        optimizer.zero_grad(set_to_none=True)
        loss = _loss(model, inputs, targets)
        guard.watch(loss, step, inputs, schedule)
        loss.backward()
        optimizer.step()
        step += 1
        bar.update(1)
        if observer is not None:
            observer.step(step, loss.detach(), optimizer.param_groups[0]["lr"])
        if step % _CHECK_EVERY == 0 or step % eval_every == 0 or step >= iterations:
            guard.check()
        if val_batches is not None and (step % eval_every == 0 or step == iterations):
            last = evaluate(model, val_batches, device)
            test = None
            if best is None or last.loss < best[0]:
                test = evaluate(model, test_batches, device) if test_batches is not None else None
                best = (last.loss, step, last, test)
            if observer is not None:
                observer.evaluation(step, last, test)
            model.train()
        if step >= iterations:
            break
    bar.close()
    if best is None:
        final = Evaluation(loss=float(loss.detach()), accuracy=float("nan"))
        return TrainResult(step - start_iteration, final, step, final, None)
    assert last is not None  # set together with best
    return TrainResult(step - start_iteration, last, best[1], best[2], best[3])


class _FiniteLoss:
    """Stops training at the first non-finite loss.

    On the CPU each step's loss is read at once. Elsewhere the first bad step is kept in a
    device tensor and read every :data:`_CHECK_EVERY` steps, so steps need no sync; under
    ``torch.distributed`` every rank learns when any one diverged, so all stop together.
    """

    def __init__(self) -> None:
        self.first_bad: Tensor | None = None
        self.bad_inputs: dict[int, bool] = {}
        self.rates: dict[int, float] = {}

    def watch(self, loss: Tensor, step: int, inputs: Tensor, schedule: Callable[[int], float]) -> None:
        if loss.device.type == "cpu" and distributed.world_size() == 1:
            value = loss.item()
            if not math.isfinite(value):
                self._raise(step, value, not bool(torch.isfinite(inputs).all()), schedule(step))
            return
        self.first_bad = _mark_first_bad(self.first_bad, loss, step)
        self.rates[step] = schedule(step)

    def check(self) -> None:
        if self.first_bad is None:
            return
        flag = self.first_bad.clone()
        if distributed.world_size() > 1:
            # -1 on every rank that is fine: the largest is the step some rank failed at, if any.
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        step = int(flag)
        if step >= 0:
            self._raise(step, None, False, self.rates.get(step, float("nan")))
        self.rates.clear()

    @staticmethod
    def _raise(step: int, loss: float | None, bad_inputs: bool, lr: float) -> None:
        cause = (
            "the input batch of that step holds NaN or infinite values: check the data"
            if bad_inputs else
            f"the network diverged at learning rate {lr:g}: lower lr (or lengthen the warm-up)"
        )
        value = "not finite" if loss is None else str(loss)
        raise DivergenceError(
            f"train(): the loss is {value} at step {step}; {cause}.", step, float("nan") if loss is None else loss,
            bad_inputs,
        )


def _mark_first_bad(first_bad: Tensor | None, loss: Tensor, step: int) -> Tensor:
    """The step of the first non-finite loss so far, or -1: a 0-d int64 tensor on ``loss``'s device.

    Nothing waits for the device: ``torch.where`` writes the Python numbers into device scalars
    as ``torch.full`` does, where ``torch.tensor(step, device=...)`` copies each from the host
    and waits for every kernel queued before it (twice a step, before this was moved here).
    """
    marker = torch.where(torch.isfinite(loss.detach()), -1, step)
    return marker if first_bad is None else torch.where(first_bad >= 0, first_bad, marker)


def _loss(model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    ranks = distributed.world_size()
    if ranks == 1:
        return F.cross_entropy(model(inputs), targets)
    # Each rank sums the loss over its shard and divides by the whole batch; DDP's average over
    # ranks then yields exactly the one-process gradient, even for uneven shards.
    batch = targets.shape[0]
    shard_loss = F.cross_entropy(model(distributed.shard(inputs)), distributed.shard(targets), reduction="sum")
    return shard_loss * (ranks / batch)


def _forever(batches: Batches) -> Iterator[tuple[Tensor, Tensor]]:
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("train(): train_batches must yield at least one batch, got none.")
