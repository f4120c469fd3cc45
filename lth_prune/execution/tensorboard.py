"""TensorBoard logs of a run (``ExperimentConfig.tensorboard`` / ``--tensorboard DIR``).

The engine (:mod:`lth_prune.imp`) opens one :class:`RunLogger` per seed and hands each training
its :meth:`RunLogger.phase` observer; this module knows TensorBoard, not the engine's settings.

One TensorBoard run per seed, ``DIR/seed-<S>``, written with :mod:`torch.utils.tensorboard`:

* ``<phase>/loss`` and ``<phase>/lr`` every :data:`LOG_EVERY` steps, ``<phase>/val_accuracy``
  and ``<phase>/test_accuracy`` at each evaluation, for the ticket and every branch, on one step
  axis across levels (level ``n``'s step ``t`` is ``n * iterations + t``);
* ``level/<metric>`` at step = level: the ticket's accuracies, each branch's metric and
  ``weights_remaining``; ``vs_weights_remaining/<metric>`` at step = the number of weights
  remaining, so TensorBoard draws accuracy against sparsity;
* ``layers/<layer>`` (the fraction of weights left) and a histogram ``weights/<layer>`` of the
  surviving trained weights, at step = level;
* the config, as text.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor, nn

from lth_prune.layers import prunable_tensor, tensor_key
from lth_prune.masks import get_masks, sparsity_report
from lth_prune.training import Evaluation, TrainObserver

__all__ = ["LOG_EVERY", "RunLogger", "check_tensorboard"]

LOG_EVERY = 20


def check_tensorboard(directory: str | None, caller: str) -> None:
    """Refuse a log ``directory`` before any work if TensorBoard is not installed (``None``: no logs).

    Raises:
        ValueError: naming the extra to install.
    """
    if directory is None:
        return
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as error:
        raise ValueError(
            f"{caller}: tensorboard needs the tensorboard package ({error}); pip install 'lth_prune[tensorboard]'."
        ) from None


class RunLogger:
    """The TensorBoard run of one seed.

    Args:
        directory: the log directory (``ExperimentConfig.tensorboard``).
        settings: the run's settings as JSON-ready values, logged as text.
        seed: the seed, whose run is ``<directory>/seed-<seed>``.
        iterations: optimizer steps per training, to put levels on one step axis.
    """

    def __init__(self, directory: str, settings: Mapping[str, Any], seed: int, iterations: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if not isinstance(directory, str):
            raise TypeError(f"RunLogger(): directory must be a path (str), got {directory!r}.")
        self.writer = SummaryWriter(str(Path(directory) / f"seed-{seed}"))
        self.iterations = iterations
        self.writer.add_text("config", "```\n" + json.dumps(dict(settings), indent=2) + "\n```", 0)

    def phase(self, level: int, phase: str) -> TrainObserver:
        """The observer of one training: the ticket's (``"ticket"``) or a branch's."""
        return _PhaseLog(self, level, phase)

    def level(self, record: Mapping[str, Any], net: nn.Module, metrics: list[str]) -> None:
        """Log a finished level: its measurements, its layers' sparsity and surviving weights."""
        level = record["level"]
        remaining = sum(row.remaining for row in sparsity_report(net))
        for metric in ("test_accuracy", "no_retrain_accuracy", "early_stop_iteration", *metrics):
            value = record.get(metric)
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"level/{metric}", value, level)
                self.writer.add_scalar(f"vs_weights_remaining/{metric}", value, remaining)
        self.writer.add_scalar("level/weights_remaining", record["weights_remaining"], level)
        masks = get_masks(net)
        for name, module in _layers(net, record["layers"]):
            self.writer.add_scalar(f"layers/{name or 'model'}", record["layers"][name], level)
            weight = getattr(module, prunable_tensor(module) or "weight").detach()
            mask = masks.get(tensor_key(name, module))
            surviving = weight[mask.to(weight.device)] if mask is not None else weight.flatten()
            if surviving.numel():
                self.writer.add_histogram(f"weights/{name or 'model'}", surviving.float().cpu(), level)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


class _PhaseLog(TrainObserver):
    def __init__(self, run: RunLogger, level: int, phase: str) -> None:
        self.run, self.phase = run, phase
        self.offset = level * run.iterations

    def step(self, step: int, loss: Tensor, lr: float) -> None:
        if step % LOG_EVERY == 0:
            self.run.writer.add_scalar(f"{self.phase}/loss", float(loss), self.offset + step)
            self.run.writer.add_scalar(f"{self.phase}/lr", lr, self.offset + step)

    def evaluation(self, step: int, validation: Evaluation, test: Evaluation | None) -> None:
        self.run.writer.add_scalar(f"{self.phase}/val_accuracy", validation.accuracy, self.offset + step)
        if test is not None:
            self.run.writer.add_scalar(f"{self.phase}/test_accuracy", test.accuracy, self.offset + step)


def _layers(net: nn.Module, names: Mapping[str, float]) -> list[tuple[str, nn.Module]]:
    modules = dict(net.named_modules())
    return [(name, modules[name]) for name in names]
