"""Time of one IMP training round against its weights remaining, per training path.

Late IMP rounds train a network with few weights left: does such a round cost less than the
dense one? LeNet-300-100 on the built-in digits data is pruned with the paper's per-layer
rates (fully connected 20 %, output 10 % per round) to the sparsity of IMP round ``k``, then
one round trains a fixed number of Adam steps (the paper's lr 1.2e-3, batch 60) as
``lth_prune.imp`` does: ``lth_prune.training.train`` inside the training path's context,
entered anew each round. The dense network's round of the same steps is timed in blocks
interleaved with the variant's (:class:`benchmarks._timing.PairedBaseline`), and the summary prints the
ratio as pass ``imp_round``. Every benchmark checks that the round kept its masks and its pruned weights at
exactly zero, and that it trained.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager

import pytest
import torch
from torch import nn

import lth_prune
from benchmarks._timing import Timed, paired_baseline, rounds_for, time_against, time_once
from benchmarks._variants import param_bytes
from lth_prune.data import load_dataset
from lth_prune.training import evaluate, train

MODEL = "lenet300_100"
# Its own name in the summary: these rows must not share a dense baseline with the timing
# benchmarks' MNIST-sized LeNet-300-100 at batch 128.
CASE_NAME = "lenet300_100-digits"
INPUT_SHAPE = (1, 8, 8)
BATCH_SIZE = 60
LEARNING_RATE = 1.2e-3
# IMP rounds whose sparsity is timed: 100, 51, 21, 11, 4.4 and 2.3 % of the weights left.
LEVELS = (0, 3, 7, 10, 14, 17)
QUICK_LEVELS = (0, 10, 17)
# Training path -> masked_training's sparse_density (None: torch.nn.utils.prune's hooks).
PATHS: dict[str, float | None] = {
    "torch-prune": None,
    "masked-training": 0.0,
    "sparse-kernels": 0.1,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "path" not in metafunc.fixturenames:
        return
    levels = QUICK_LEVELS if metafunc.config.getoption("quick") else LEVELS
    cases = [("dense", 0)] + [(path, level) for path in PATHS for level in levels]
    metafunc.parametrize(
        ("path", "level"), cases, ids=[f"{CASE_NAME}-imp_round-{p}-level{lv}" for p, lv in cases]
    )


@pytest.fixture(scope="module")
def digits_batches(device: torch.device) -> Any:
    """The digits training batches (batch 60), on the device."""
    data = load_dataset("digits")
    assert data.input_shape == INPUT_SHAPE, f"digits images are {data.input_shape}"
    return data.loaders(BATCH_SIZE, device=device, seed=0)[0]


def test_imp_round(
    benchmark: Any,
    path: str,
    level: int,
    quick: bool,
    span: float | None,
    device: torch.device,
    digits_batches: Any,
    pytestconfig: pytest.Config,
    timing_results: list[dict[str, Any]],
) -> None:
    iterations = 10 if quick else 50
    model = _pruned_lenet(level, device)
    masks = lth_prune.get_masks(model)
    weights_remaining = 1.0 - lth_prune.sparsity(model) if masks else 1.0
    before = evaluate(model, digits_batches).loss
    timed, context = _round(model, PATHS.get(path), digits_batches, iterations)
    with context():
        held_bytes = param_bytes(model)  # in the form the round trains
    baseline = None
    if benchmark.enabled and path != "dense":
        dense, _ = _round(_pruned_lenet(0, device), None, digits_batches, iterations)
        baseline = paired_baseline(dense, pytestconfig)

    benchmark.group = f"{CASE_NAME}-imp_round"
    benchmark.extra_info.update({
        "model": CASE_NAME,
        "weights_remaining": weights_remaining,
        "variant": path,
        "pass": "imp_round",
        "level": level,
        "iterations": iterations,
        "batch_size": BATCH_SIZE,
        "device": str(device),
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "param_bytes": held_bytes,
    })
    rounds = rounds_for(time_once(timed) if benchmark.enabled else 1.0, quick, span)
    time_against(benchmark, timed, rounds, baseline)

    after = lth_prune.get_masks(model)
    assert after.keys() == masks.keys()
    for name, kept in masks.items():
        assert torch.equal(after[name], kept), f"the round changed the mask of {name}"
        weight = model.get_submodule(name.rpartition(".")[0]).weight
        revived = int(torch.count_nonzero(weight[~kept]))
        assert revived == 0, f"{revived} pruned weights of {name} are nonzero after the round"
    assert evaluate(model, digits_batches).loss < before, "the round did not train the model"
    if benchmark.enabled and benchmark.stats:
        timing_results.append({**benchmark.extra_info, "median": benchmark.stats.stats.median})


def _pruned_lenet(level: int, device: torch.device) -> nn.Module:
    """LeNet-300-100 (seed 0) pruned as ``level`` rounds of the paper's per-layer rates do."""
    torch.manual_seed(0)
    model = lth_prune.models.get(MODEL, num_classes=10, input_shape=INPUT_SHAPE).to(device)
    for _ in range(level):
        lth_prune.prune_layerwise(model, lth_prune.PruningRates(linear=0.2))
    return model


def _round(
    model: nn.Module, sparse_density: float | None, batches: Any, iterations: int
) -> tuple[Timed, Callable[[], ContextManager[object]]]:
    """One IMP training round of ``model`` (its context entered, ``iterations`` Adam steps),
    and the context alone."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)

    def context() -> ContextManager[object]:
        if sparse_density is None:
            return contextlib.nullcontext()
        return lth_prune.masked_training(model, optimizer, sparse_density=sparse_density)

    def target() -> None:
        with context():
            train(model, optimizer, batches, lambda step: LEARNING_RATE, iterations=iterations,
                  eval_every=iterations)

    return Timed(target, lambda _: None), context
