"""Time dense and masked passes: forward, backward, a training step, and inference.

For every model, sparsity level and pass, pytest-benchmark times the pass of each variant in
:data:`benchmarks._variants.VARIANTS`, grouped per model and pass (``conv2-forward``) so that
dense and masked sit side by side. Every benchmark then checks what its last round computed
against a dense copy of the model that holds the masked weights; no timing is asserted.
"""
from __future__ import annotations

from typing import Any

import pytest
import torch

import lth_prune
from benchmarks._timing import (
    Case,
    PrunedCache,
    Subject,
    Timed,
    cases,
    make_inputs,
    make_pass,
    paired_baseline,
    rounds_for,
    time_against,
    time_once,
)
from benchmarks._variants import VARIANTS, dense_reference, param_bytes


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The cases depend on --quick, which a parametrize decorator cannot see.
    if "case" in metafunc.fixturenames:
        selected = cases(quick=metafunc.config.getoption("quick"))
        metafunc.parametrize("case", selected, ids=[case.id for case in selected])


@pytest.fixture(scope="module")
def pruned_cache(pytestconfig: pytest.Config) -> PrunedCache:
    """Pruned models (``--pruning``), shared by the passes and variants of one (model, level)."""
    return PrunedCache(pytestconfig.getoption("pruning"))


def test_timing(
    benchmark: Any,
    case: Case,
    device: torch.device,
    batch_size: int,
    quick: bool,
    span: float | None,
    pruned_cache: PrunedCache,
    timing_results: list[dict[str, Any]],
    pytestconfig: pytest.Config,
) -> None:
    variant = VARIANTS[case.variant]
    pruned = pruned_cache.get(case, device)
    _assert_weights_remaining(pruned, case.weights_remaining, pruned_cache.pruning)
    masks = lth_prune.get_masks(pruned)
    reference = dense_reference(pruned)
    images, labels = make_inputs(case.model, batch_size, device)
    model = variant.convert(pruned, images)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    # Set before timing: pytest-benchmark copies the group when the run starts.
    benchmark.group = f"{case.model}-{case.pass_name}"
    with variant.context(model, optimizer):
        benchmark.extra_info.update(
            {
                "model": case.model,
                "weights_remaining": case.weights_remaining,
                "variant": case.variant,
                "pass": case.pass_name,
                "batch_size": batch_size,
                "device": str(device),
                "torch_version": torch.__version__,
                "num_threads": torch.get_num_threads(),
                "param_bytes": param_bytes(model),
                "pruning": pruned_cache.pruning,
                "weights_remaining_exact": 1.0 - lth_prune.sparsity(pruned),
            }
        )
        timed = make_pass(
            case.pass_name, Subject(model, reference, masks, optimizer, images, labels)
        )
        # Under --benchmark-disable the pass runs once, for its checks: nothing to time.
        baseline = None
        if benchmark.enabled and variant.prunes:
            baseline = paired_baseline(
                _dense_pass(case, pruned_cache, device, images, labels), pytestconfig
            )
        rounds = rounds_for(time_once(timed) if benchmark.enabled else 1.0, quick, span)
        timed.check(time_against(benchmark, timed, rounds, baseline))

    if benchmark.enabled and benchmark.stats:
        timing_results.append({**benchmark.extra_info, "median": benchmark.stats.stats.median})


def _dense_pass(
    case: Case,
    pruned_cache: PrunedCache,
    device: torch.device,
    images: torch.Tensor,
    labels: torch.Tensor,
) -> Timed:
    """The dense model's pass of ``case``, the baseline timed next to the variant's."""
    dense = pruned_cache.get(Case(case.model, "dense", 1.0, case.pass_name), device)
    optimizer = torch.optim.SGD(dense.parameters(), lr=0.01, momentum=0.9)
    return make_pass(case.pass_name, Subject(dense, dense, {}, optimizer, images, labels))


def _assert_weights_remaining(model: torch.nn.Module, weights_remaining: float, pruning: str) -> None:
    total = sum(row.total for row in lth_prune.sparsity_report(model))
    remaining = 1.0 - lth_prune.sparsity(model)
    if pruning == "imp":
        # Whole rounds: at most the level, and the round before was above it (at most one
        # round's worth of pruning, 20 %, below).
        assert weights_remaining * 0.7 < remaining <= weights_remaining or weights_remaining == 1.0, (
            f"the model keeps {remaining:.6f} of its weights, not at most {weights_remaining}"
        )
        return
    # Pruning rounds to a whole number of weights.
    assert abs(remaining - weights_remaining) <= 1 / total, (
        f"the model keeps {remaining:.6f} of its weights, not {weights_remaining}"
    )
