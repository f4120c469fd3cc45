"""The timing cases, their inputs, and the four timed passes with their correctness checks.

Each pass is a :class:`Timed`: a ``setup`` run outside the timer before every round, a
``target`` that is timed, and a ``check`` run once on the last round's result. The checks
compare the variant with the dense reference and the masks of its pruned form (see
:mod:`benchmarks._variants`), so a benchmark fails when what it times computes the wrong thing.
"""
from __future__ import annotations

import copy
import itertools
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
import torch.nn.functional as F
from pytest_benchmark.utils import load_timer
from torch import Tensor, nn

import lth_prune
from benchmarks._variants import PASSES, VARIANTS, imp_rates, prune_imp_style, prune_to

__all__ = [
    "BLOCKS",
    "MAX_BLOCKS",
    "MIN_BLOCK_ROUNDS",
    "MODELS",
    "PASSES",
    "PRUNING",
    "WEIGHTS_REMAINING",
    "BlockRatios",
    "Case",
    "PairedBaseline",
    "PrunedCache",
    "Rounds",
    "Subject",
    "Timed",
    "blocks_for",
    "build_pruned",
    "cases",
    "input_shape",
    "make_inputs",
    "make_pass",
    "paired_baseline",
    "rounds_for",
    "time_against",
    "time_once",
]

MODELS = ("network", "conv2", "conv4", "conv6", "lenet300_100", "resnet20", "vgg16")
# How the timed models are pruned (--pruning): one shot and global (the default, as the
# figures below were measured), or as IMP's rounds prune, each layer at the paper's rate.
PRUNING = ("global", "imp")
WEIGHTS_REMAINING = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)
NUM_CLASSES = 10

# --quick: the cheapest models plus `network`, whose 23M fc weights are where sparsity would
# pay off first, at the ends and the middle of the sparsity range.
QUICK_MODELS = ("lenet300_100", "conv2", "network")
QUICK_WEIGHTS_REMAINING = (1.0, 0.2, 0.02)


@dataclass(frozen=True)
class Rounds:
    """How often a pass is run: ``warmup_rounds`` untimed, then ``rounds`` timed (median kept)."""

    rounds: int
    warmup_rounds: int


def rounds_for(seconds_per_run: float, quick: bool, span: float | None = None) -> Rounds:
    """Enough timed rounds to span 2 s (0.5 s with ``--quick``), at least 5 (3), at most 50 (20).

    Spreading a benchmark over a fixed span, rather than a fixed count, means a burst of load
    from another process spoils some rounds of a fast pass, not all of them, so the median
    survives it; a slow pass (vgg16's training step) still gets its minimum.

    Args:
        seconds_per_run: the time of one untimed run of the pass.
        quick: whether ``--quick`` was given.
        span: ``--span``: seconds to spread the rounds over instead, with up to 1,000 rounds.
    """
    default_span, fewest, most = (0.5, 3, 20) if quick else (2.0, 5, 50)
    if span is not None:
        default_span, most = span, 1000
    wanted = math.ceil(default_span / max(seconds_per_run, 1e-6))
    return Rounds(rounds=min(max(wanted, fewest), most), warmup_rounds=1)


@dataclass(frozen=True)
class Case:
    """One benchmark: a model, a variant at a sparsity level, and a pass."""

    model: str
    variant: str
    weights_remaining: float
    pass_name: str

    @property
    def id(self) -> str:
        """The pytest id, e.g. ``conv2-forward-torch-prune-0.2``."""
        return f"{self.model}-{self.pass_name}-{self.variant}-{self.weights_remaining:g}"


def cases(quick: bool) -> list[Case]:
    """Every case, dense first in each (model, pass), then each variant from dense to sparse.

    A variant that does not prune (``dense``) appears once per model, at 1.0: its timings are
    the baseline of every sparsity level of that model. The cases of one (model, pass) run
    back to back, so that a change in the machine's load between a ratio's numerator and its
    denominator is as unlikely as it can be.
    """
    model_names = QUICK_MODELS if quick else MODELS
    levels = QUICK_WEIGHTS_REMAINING if quick else WEIGHTS_REMAINING
    return [
        Case(model_name, variant_name, weights_remaining, pass_name)
        for model_name in model_names
        for pass_name in PASSES
        for variant_name, variant in VARIANTS.items()
        if pass_name in variant.passes
        for weights_remaining in (levels if variant.prunes else (1.0,))
    ]


def input_shape(model_name: str) -> tuple[int, int, int]:
    """(C, H, W) of one input: MNIST-sized for LeNet-300-100, CIFAR-10-sized otherwise."""
    return (1, 28, 28) if model_name == "lenet300_100" else (3, 32, 32)


def make_inputs(model_name: str, batch_size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """A fixed random batch: images of shape (N, C, H, W) and integer labels of shape (N,)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, *input_shape(model_name), generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (batch_size,), generator=generator)
    return images.to(device), labels.to(device)


def build_pruned(
    model_name: str, weights_remaining: float | None, device: torch.device, pruning: str = "global"
) -> nn.Module:
    """The model, seeded, on ``device``, pruned to ``weights_remaining`` (``None``: dense).

    ``pruning`` is ``"global"`` (:func:`benchmarks._variants.prune_to`: one shot, one ranking
    over all layers, exactly ``weights_remaining``) or ``"imp"``
    (:func:`benchmarks._variants.prune_imp_style`: each layer at the paper's rate per round,
    until at most ``weights_remaining`` is left).
    """
    torch.manual_seed(0)
    model = lth_prune.models.get(
        model_name, num_classes=NUM_CLASSES, input_shape=input_shape(model_name)
    )
    # Moved before pruning: a pruned layer's `weight` is a plain attribute .to() leaves behind.
    model = model.to(device)
    if weights_remaining is None:
        return model
    if pruning == "imp":
        prune_imp_style(model, weights_remaining, imp_rates(model_name))
        return model
    return prune_to(model, weights_remaining)


class PrunedCache:
    """Prunes each model once per sparsity level and hands out deep copies.

    Pruning `network`'s 23M weights takes seconds; every pass and every variant at that level
    starts from a pristine copy of the same pruned model. Only the current model's levels are
    kept (:func:`cases` runs one model after the other): about 2 GB for `network`.
    """

    def __init__(self, pruning: str = "global") -> None:
        self.pruning = pruning
        self._model_key: tuple[str, str] | None = None
        self._built: dict[float | None, nn.Module] = {}

    def get(self, case: Case, device: torch.device) -> nn.Module:
        """A fresh copy of the pruned form of ``case`` (dense for a variant that does not prune)."""
        if self._model_key != (case.model, str(device)):
            self._built.clear()
            self._model_key = (case.model, str(device))
        level = case.weights_remaining if VARIANTS[case.variant].prunes else None
        if level not in self._built:
            self._built[level] = build_pruned(case.model, level, device, self.pruning)
        return copy.deepcopy(self._built[level])


@dataclass(frozen=True)
class Timed:
    """A pass ready for ``benchmark.pedantic``: ``check(target(*setup()[0]))`` must not raise."""

    target: Callable[..., Any]
    check: Callable[[Any], None]
    setup: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]] | None = None


class PairedBaseline:
    """The dense model's pass, timed in blocks interleaved with a variant's rounds.

    On a shared or virtual machine the speed of the same pass drifts by 20 % or more within
    seconds to minutes, so a dense median measured once per model, minutes before a variant,
    can make two identical computations differ by a quarter, and even dense blocks just before
    and just after a variant's rounds left identical computations 0.8-1.3x apart. Here the
    variant's rounds are cut into blocks (:func:`blocks_for`) with a dense block before each and one
    after the last; each variant block is divided by the dense rounds on either side of it,
    and the median of those ratios is what the summary reports. Blocks rather than alternate
    rounds, so that each block keeps its caches warm as repeated calls of one model do
    (alternating round by round timed the sparse ``network`` fc part at batch 1 with caches
    the dense weights had just flushed).

    Args:
        dense: the dense model's pass (its ``check`` is not run: the dense benchmark checks it).
        timer: the clock pytest-benchmark uses (``--benchmark-timer``).
    """

    def __init__(self, dense: Timed, timer: Callable[[], float]) -> None:
        self.dense = dense
        self.timer = timer
        self.blocks: list[list[float]] = []

    @property
    def seconds(self) -> list[float]:
        """Every timed dense round so far, in order."""
        return [elapsed for block in self.blocks for elapsed in block]

    def measure(self, rounds: Rounds) -> None:
        """Run ``rounds.warmup_rounds`` untimed, then time ``rounds.rounds`` dense passes as a block."""
        block = []
        for index in range(rounds.warmup_rounds + rounds.rounds):
            args, kwargs = self.dense.setup() if self.dense.setup is not None else ((), {})
            start = self.timer()
            self.dense.target(*args, **kwargs)
            elapsed = self.timer() - start
            if index >= rounds.warmup_rounds:
                block.append(elapsed)
        self.blocks.append(block)

    def median(self) -> float:
        """The median dense time over every block measured so far."""
        if not self.seconds:
            raise RuntimeError("PairedBaseline.median(): measure() has not run yet.")
        return statistics.median(self.seconds)

    def ratio(self, variant_seconds: list[float], block_rounds: int) -> BlockRatios:
        """Each variant block's median over its two dense neighbours', summarized.

        Args:
            variant_seconds: the variant's timed rounds in order, ``block_rounds`` per block,
                block ``i`` run between dense blocks ``i`` and ``i + 1``.
            block_rounds: rounds per variant block.

        Returns:
            The median of the block ratios (the summary's ratio), their quartiles and count.
        """
        ratios = []
        for index in range(len(self.blocks) - 1):
            block = variant_seconds[index * block_rounds:(index + 1) * block_rounds]
            if block:
                neighbours = self.blocks[index] + self.blocks[index + 1]
                ratios.append(statistics.median(block) / statistics.median(neighbours))
        if not ratios:
            raise RuntimeError("PairedBaseline.ratio(): no variant block lies between two dense blocks.")
        if len(ratios) == 1:
            low = high = ratios[0]
        else:
            low, _, high = statistics.quantiles(ratios, n=4, method="inclusive")
        return BlockRatios(statistics.median(ratios), low, high, len(ratios))


@dataclass(frozen=True)
class BlockRatios:
    """The ratios of a variant's blocks to their dense neighbours (see :class:`PairedBaseline`).

    Attributes:
        median: the median block ratio: what the summary reports.
        lower_quartile: the 25th percentile of the block ratios.
        upper_quartile: the 75th percentile; the spread between the two says how much the
            machine's speed moved the ratio during this benchmark.
        blocks: how many block ratios there are.
    """

    median: float
    lower_quartile: float
    upper_quartile: float
    blocks: int


# Variant blocks per benchmark, each between two dense blocks (see PairedBaseline): at least
# BLOCKS, and with many rounds (--span) one per MIN_BLOCK_ROUNDS rounds, up to MAX_BLOCKS. With
# 8, the same LeNet-300-100 training step (1.5 ms) read 1.06 in one run and 1.09 in the next;
# with 32 blocks of about 30 rounds, its seven sparsity levels fell within 1.01-1.04.
BLOCKS = 8
MAX_BLOCKS = 32
MIN_BLOCK_ROUNDS = 20


def blocks_for(rounds: int) -> int:
    """How many variant blocks ``rounds`` timed rounds are cut into (see :data:`BLOCKS`)."""
    return max(BLOCKS, min(MAX_BLOCKS, rounds // MIN_BLOCK_ROUNDS))


def paired_baseline(dense: Timed, config: pytest.Config) -> PairedBaseline:
    """A :class:`PairedBaseline` of ``dense`` timed with ``--benchmark-timer``'s clock."""
    # The option holds the timer's dotted name, e.g. "time.perf_counter".
    timer = load_timer(str(config.getoption("benchmark_timer"))).target
    return PairedBaseline(dense, timer)


def time_against(
    benchmark: Any, timed: Timed, rounds: Rounds, baseline: PairedBaseline | None
) -> Any:
    """``benchmark.pedantic`` of ``timed``, its rounds interleaved with ``baseline``'s in blocks.

    With a baseline, ``benchmark.extra_info`` receives ``paired_ratio`` (see
    :meth:`PairedBaseline.ratio`: the summary's ratio), ``paired_ratio_q1`` and
    ``paired_ratio_q3`` (the quartiles of the block ratios), ``paired_blocks`` and
    ``dense_median`` (the median of every dense round).

    Returns:
        What the last timed round of ``timed.target`` returned.
    """
    if baseline is None:
        return benchmark.pedantic(
            timed.target, setup=timed.setup, rounds=rounds.rounds, warmup_rounds=rounds.warmup_rounds
        )
    block_rounds = max(1, math.ceil(rounds.rounds / blocks_for(rounds.rounds)))
    variant_seconds: list[float] = []
    calls = itertools.count()

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # pytest-benchmark calls this before every round, outside its timer.
        round_index = next(calls) - rounds.warmup_rounds
        if round_index >= 0 and round_index % block_rounds == 0:
            warmup = rounds.warmup_rounds if round_index == 0 else 0
            baseline.measure(Rounds(rounds=block_rounds, warmup_rounds=warmup))
        return timed.setup() if timed.setup is not None else ((), {})

    def target(*args: Any, **kwargs: Any) -> Any:
        start = baseline.timer()
        result = timed.target(*args, **kwargs)
        variant_seconds.append(baseline.timer() - start)
        return result

    result = benchmark.pedantic(target, setup=setup, rounds=rounds.rounds, warmup_rounds=rounds.warmup_rounds)
    baseline.measure(Rounds(rounds=block_rounds, warmup_rounds=0))
    ratios = baseline.ratio(variant_seconds[rounds.warmup_rounds:], block_rounds)
    benchmark.extra_info.update({
        "paired_ratio": ratios.median,
        "paired_ratio_q1": ratios.lower_quartile,
        "paired_ratio_q3": ratios.upper_quartile,
        "paired_blocks": ratios.blocks,
        "dense_median": baseline.median(),
    })
    return result


def time_once(timed: Timed) -> float:
    """Run ``timed`` once, untimed by pytest-benchmark, and return the seconds it took."""
    args, kwargs = timed.setup() if timed.setup is not None else ((), {})
    start = time.perf_counter()
    timed.target(*args, **kwargs)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Subject:
    """What a pass runs on and is checked against.

    Attributes:
        model: the timed model (the variant).
        reference: the dense model holding the masked weights, what ``model`` must compute.
        masks: boolean masks of the pruned form, by dotted weight name (``"fc1.weight"``),
            ``True`` where a weight is kept; empty for a dense variant.
        optimizer: SGD with momentum over ``model``'s parameters, for the training step.
        images: a batch of shape (N, C, H, W).
        labels: class indices of shape (N,).
    """

    model: nn.Module
    reference: nn.Module
    masks: dict[str, Tensor]
    optimizer: torch.optim.Optimizer
    images: Tensor
    labels: Tensor


def make_pass(pass_name: str, subject: Subject) -> Timed:
    """The timed pass ``pass_name`` (one of ``PASSES``) of ``subject.model``, with its check."""
    builders = {
        "forward": _forward,
        "backward": _backward,
        "train_step": _train_step,
        "inference": _inference,
    }
    return builders[pass_name](subject)


def _forward(subject: Subject) -> Timed:
    model, reference, images = subject.model, subject.reference, subject.images
    # Training mode with autograd recording: the forward half of a training step.
    model.train()
    reference.train()

    def target() -> Tensor:
        output = model(images)
        _sync(images.device)
        return output

    def check(output: Tensor) -> None:
        with torch.no_grad():
            _assert_close(output.detach(), reference(images), "forward output")

    return Timed(target, check)


def _backward(subject: Subject) -> Timed:
    model, reference, images, labels = (
        subject.model, subject.reference, subject.images, subject.labels
    )
    model.train()
    reference.train()

    def setup() -> tuple[tuple[Tensor], dict[str, Any]]:
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        _sync(images.device)
        return (loss,), {}

    def target(loss: Tensor) -> None:
        loss.backward()
        _sync(images.device)

    def check(_: None) -> None:
        reference.zero_grad(set_to_none=True)
        F.cross_entropy(reference(images), labels).backward()
        _assert_gradients_match(model, reference, subject.masks)

    return Timed(target, check, setup)


def _train_step(subject: Subject) -> Timed:
    model, optimizer, images, labels = (
        subject.model, subject.optimizer, subject.images, subject.labels
    )
    model.train()
    before = {name: param.detach().clone() for name, param in model.named_parameters()}

    def target() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        _sync(images.device)
        return loss.detach()

    def check(loss: Tensor) -> None:
        assert torch.isfinite(loss), f"train_step: the loss is {loss.item()}"
        # A pruned layer's `weight` is recomputed from the stepped `weight_orig` only by a
        # forward pass.
        with torch.no_grad():
            model(images)
        for name, kept in subject.masks.items():
            weight = model.get_submodule(name.rpartition(".")[0]).weight
            revived = int(torch.count_nonzero(weight[~kept]))
            assert revived == 0, f"train_step: {revived} pruned weights of {name} are nonzero"
        moved = [name for name, param in model.named_parameters() if not param.equal(before[name])]
        assert moved, "train_step: no parameter changed, the optimizer step did not happen"

    return Timed(target, check)


def _inference(subject: Subject) -> Timed:
    model, reference, images = subject.model, subject.reference, subject.images
    model.eval()
    reference.eval()

    def target() -> Tensor:
        with torch.inference_mode():
            output = model(images)
        _sync(images.device)
        return output

    def check(output: Tensor) -> None:
        with torch.inference_mode():
            _assert_close(output, reference(images), "inference output")

    return Timed(target, check)


def _assert_gradients_match(
    model: nn.Module, reference: nn.Module, masks: dict[str, Tensor]
) -> None:
    """Pruned weights get exactly zero gradient; every other gradient is the reference's."""
    params = dict(model.named_parameters())
    for name, expected in reference.named_parameters():
        # Under torch.nn.utils.prune a masked weight is trained through its `_orig` parameter.
        grad = params[name].grad if name in params else params[name + "_orig"].grad
        assert grad is not None, f"backward: {name} got no gradient"
        if name in masks:
            kept = masks[name]
            leaked = int(torch.count_nonzero(grad[~kept]))
            assert leaked == 0, f"backward: {leaked} pruned weights of {name} got a gradient"
            _assert_close(grad[kept], expected.grad[kept], f"gradient of live {name}")
        else:
            _assert_close(grad, expected.grad, f"gradient of {name}")


def _assert_close(actual: Tensor, expected: Tensor, what: str) -> None:
    # The two models hold the same values, so on CPU they agree to rounding; on CUDA, TF32
    # convolutions and cuDNN's choice of algorithm leave more. The absolute tolerance scales
    # with the tensor, as gradients of wide layers are tiny.
    rtol = 1e-3 if actual.device.type == "cuda" else 1e-5
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(
        actual, expected, rtol=rtol, atol=rtol * scale, msg=lambda message: f"{what}: {message}"
    )


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously: without this the timer stops before they finish.
    if device.type == "cuda":
        torch.cuda.synchronize(device)
