"""Part ``imp`` of ``benchmarks/gpu_check.py``: one IMP level on one model, dense training
against masked training, timed, with its correctness checks (:func:`imp_level`).
"""
from __future__ import annotations

import contextlib
import copy
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

import lth_prune
from benchmarks._variants import imp_rates
from lth_prune.data import InMemoryLoader, make_synthetic
from lth_prune.training import LearningRateSchedule, train

__all__ = ["Deadline", "LevelResult", "PartTimeout", "imp_level"]

NUM_CLASSES = 10
INPUT_SHAPE = (3, 32, 32)
# SGD with momentum, as the timing suite's training step: its update is linear in the gradient,
# so the rounding differences between two devices stay as small as they start.
LEARNING_RATE = 0.01
MOMENTUM = 0.9
# Distinct batches the training cycles through (same batches, same order on every device).
DISTINCT_BATCHES = 4


class PartTimeout(RuntimeError):
    """A part ran past its time budget."""


class Deadline:
    """A part's time budget; :meth:`check` between steps of work raises :class:`PartTimeout`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    def check(self, doing: str) -> None:
        elapsed = time.monotonic() - self.start
        if elapsed > self.seconds:
            raise PartTimeout(f"stopped after {elapsed:.0f} s (budget {self.seconds:.0f} s), in {doing}")


@dataclass
class LevelResult:
    """One IMP level of one model: speed of dense and masked training, and the checks.

    Attributes:
        weights_remaining: fraction of the prunable weights left after pruning the level.
        dense_images_per_second, masked_images_per_second: batch * steps / median block time.
        time_ratio: median masked block time / median dense block time (blocks interleaved).
        syncs_per_step: host syncs per training step (``dense``, ``masked``); ``None`` off CUDA.
        pruned: weights the masks prune; revived: how many of them were nonzero after training.
        masks_kept: whether training left the masks exactly as pruning set them.
        cpu_masks_identical: whether pruning copies of the same weights on the CPU and on the
            device gave the same masks.
        cpu_difference: per phase (``dense``, ``masked``), the largest ``max |device - cpu|``
            of a tensor over its ``max |cpu|``, after the same steps on the same batches.
        tolerance: the largest ``cpu_difference`` accepted.
    """

    model: str
    weights_remaining: float = 1.0
    dense_images_per_second: float = 0.0
    masked_images_per_second: float = 0.0
    time_ratio: float = float("nan")
    syncs_per_step: dict[str, float] | None = None
    pruned: int = 0
    revived: int = 0
    masks_kept: bool = False
    cpu_masks_identical: bool = False
    cpu_difference: dict[str, float] = field(default_factory=dict)
    tolerance: float = 0.0
    peak_memory_bytes: int | None = None

    @property
    def correct(self) -> bool:
        """Whether every check passed."""
        agree = bool(self.cpu_difference) and all(value <= self.tolerance for value in self.cpu_difference.values())
        return self.revived == 0 and self.masks_kept and self.cpu_masks_identical and agree


def imp_level(
    name: str, device: torch.device, batch_size: int, steps: int, blocks: int, tolerance: float, deadline: Deadline
) -> LevelResult:
    """Train, prune at the paper's per-layer rates, rewind and train masked, on ``device`` and the CPU.

    The level's training runs ``steps`` steps on both devices (CUDA: full float32 and
    deterministic cuDNN, see :func:`exact_float32`) and the results are compared. Then a dense
    copy and a masked copy are timed on ``device`` in ``blocks`` interleaved blocks of ``steps``
    :func:`lth_prune.training.train` steps each, after one untimed block each.
    """
    result = LevelResult(name, tolerance=tolerance)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cpu = torch.device("cpu")
    images, labels = synthetic_data(batch_size)
    loaders = {where: InMemoryLoader(images, labels, batch_size, shuffle=False, device=where)
               for where in (cpu, device)}
    torch.manual_seed(0)
    cpu_model = lth_prune.models.get(name, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE)
    dense = copy.deepcopy(cpu_model).to(device)
    model = copy.deepcopy(cpu_model).to(device)
    rewinder = lth_prune.register_rewind_hooks(model)

    with exact_float32():
        for net, where in ((cpu_model, cpu), (model, device)):
            _train(net, loaders[where], steps)
    result.cpu_difference["dense"] = relative_difference(model, cpu_model)
    deadline.check("the dense training")

    # Prune copies of the same trained weights on both devices, then rewind both.
    cpu_model = copy.deepcopy(model).to(cpu)
    for net in (model, cpu_model):
        lth_prune.prune_layerwise(net, imp_rates(name))
    masks = _masks_on_cpu(model)
    result.cpu_masks_identical = _same_masks(_masks_on_cpu(cpu_model), masks)
    rewinder.rewind()
    lth_prune.register_rewind_hooks(cpu_model).set_rewind_point(rewinder.rewind_point)
    lth_prune.rewind(cpu_model)
    result.weights_remaining = 1.0 - lth_prune.sparsity(model)
    result.pruned = sum(int((~mask).sum()) for mask in masks.values())
    masked = copy.deepcopy(model)

    with exact_float32():
        for net, where in ((cpu_model, cpu), (model, device)):
            optimizer = _optimizer(net)
            with lth_prune.masked_training(net, optimizer):
                _train(net, loaders[where], steps, optimizer)
                result.revived += revived_weights(net, masks)
    result.cpu_difference["masked"] = relative_difference(model, cpu_model)
    deadline.check("the masked training")

    dense_optimizer, masked_optimizer = _optimizer(dense), _optimizer(masked)
    seconds: dict[str, list[float]] = {"dense": [], "masked": []}
    with lth_prune.masked_training(masked, masked_optimizer):
        runs = {
            "dense": lambda count: _train(dense, loaders[device], count, dense_optimizer),
            "masked": lambda count: _train(masked, loaders[device], count, masked_optimizer),
        }
        for run in runs.values():
            run(steps)  # warm-up: the first calls' set-up, the optimizer's state, the allocator
        for _ in range(blocks):
            deadline.check("the timed blocks")
            for kind, run in runs.items():
                seconds[kind].append(_timed(lambda: run(steps), device))
        if device.type == "cuda":
            result.syncs_per_step = {kind: syncs_per_step(run, steps, device) for kind, run in runs.items()}
        result.revived += revived_weights(masked, masks)
    result.masks_kept = _same_masks(_masks_on_cpu(masked), masks)
    dense_time, masked_time = statistics.median(seconds["dense"]), statistics.median(seconds["masked"])
    result.dense_images_per_second = batch_size * steps / dense_time
    result.masked_images_per_second = batch_size * steps / masked_time
    result.time_ratio = masked_time / dense_time
    if device.type == "cuda":
        result.peak_memory_bytes = torch.cuda.max_memory_allocated(device)
    return result


def synthetic_data(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:data:`DISTINCT_BATCHES` batches of CIFAR-shaped synthetic images (N, 3, 32, 32), 10 classes."""
    wanted = batch_size * DISTINCT_BATCHES
    # make_synthetic holds 20 % out as its test split.
    splits = make_synthetic(wanted * 5 // 4 + 2 * NUM_CLASSES, num_classes=NUM_CLASSES, input_shape=INPUT_SHAPE,
                            val_size=0)
    return splits.train_x[:wanted].contiguous(), splits.train_y[:wanted].contiguous()


@contextlib.contextmanager
def exact_float32() -> Iterator[None]:
    """Full float32 and deterministic algorithms on CUDA inside the block.

    With TF32 (cuDNN's default for convolutions) a convolution keeps about 10 bits of mantissa,
    and 20 steps drift away from the CPU by more than any useful tolerance; cuDNN's fastest
    weight-gradient kernels add in a different order on every run.
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = True, False, False, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved


def relative_difference(model: nn.Module, reference: nn.Module) -> float:
    """The largest ``max |model - reference| / max |reference|`` over the state dicts' float tensors.

    Any other tensor (a mask, a batch count) that differs at all, or a key missing from one of
    them, makes it infinite.
    """
    ours, theirs = model.state_dict(), reference.state_dict()
    if ours.keys() != theirs.keys():
        return float("inf")
    worst = 0.0
    for key, expected in theirs.items():
        actual = ours[key].detach().to(expected.device)
        if not expected.is_floating_point():
            worst = max(worst, 0.0 if torch.equal(actual, expected) else float("inf"))
            continue
        scale = float(expected.abs().max()) if expected.numel() else 0.0
        difference = float((actual - expected).abs().max()) if expected.numel() else 0.0
        worst = max(worst, difference / scale if scale else difference)
    return worst


def revived_weights(model: nn.Module, masks: dict[str, torch.Tensor]) -> int:
    """How many pruned entries (``masks``: ``True`` = kept) of ``model``'s weights are nonzero."""
    revived = 0
    for key, keep in masks.items():
        module_name, _, tensor_name = key.rpartition(".")
        value = getattr(model.get_submodule(module_name), tensor_name).detach()
        revived += int(torch.count_nonzero(value[~keep.to(value.device)]))
    return revived


def syncs_per_step(run: Callable[[int], object], steps: int, device: torch.device) -> float:
    """Host syncs per training step, from the syncs of ``run(steps)`` and ``run(2 * steps)``.

    The difference leaves out what a call does once (the loss read at its end).
    """
    counts = []
    for count in (steps, 2 * steps):
        torch.cuda.synchronize(device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                run(count)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts.append(sum("synchroniz" in str(warning.message) for warning in caught))
    return (counts[1] - counts[0]) / steps


def _masks_on_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: mask.cpu() for key, mask in lth_prune.get_masks(model).items()}


def _same_masks(masks: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> bool:
    return masks.keys() == expected.keys() and all(torch.equal(mask, expected[key]) for key, mask in masks.items())


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)


def _train(
    model: nn.Module, batches: InMemoryLoader, steps: int, optimizer: torch.optim.Optimizer | None = None
) -> None:
    train(model, optimizer or _optimizer(model), batches, LearningRateSchedule(LEARNING_RATE, steps), iterations=steps)


def _timed(run: Callable[[], object], device: torch.device) -> float:
    # CUDA kernels run asynchronously: without the syncs the clock stops before they finish.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start
