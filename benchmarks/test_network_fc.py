"""Network's fully connected part at 2 % of its weights per layer: dense against ``to_sparse``.

The question of the issue that asked for sparse inference: once a lottery ticket keeps 2 % of
each of ``Network``'s fully connected layers (1024 -> 4096 -> 4096 -> 10, 21M weights), how
much faster does ``lth_prune.to_sparse`` run them than the dense layers holding the masked
weights, at batch 128 and at batch 1? Every layer is pruned to 2 % on its own (layer-wise), so
none is emptied, unlike one-shot global pruning of the whole net. The dense form is timed in
blocks interleaved with the sparse form's (:class:`benchmarks._timing.PairedBaseline`); the summary
reports the pass ``fc_inference`` and its fraction of the ideal 50x. Each benchmark checks
that the sparse layers compute the dense layers' outputs.
"""
from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

import lth_prune
from benchmarks._timing import Timed, paired_baseline, rounds_for, time_against, time_once
from benchmarks._variants import dense_reference, param_bytes
from lth_prune.models import Network

WEIGHTS_REMAINING = 0.02
CASE_NAME = "network-fc"


@pytest.fixture(scope="module")
def pruned_fc(device: torch.device) -> nn.Module:
    """``Network().classifier`` (seed 0) with each linear layer pruned to 2 %, in eval mode."""
    torch.manual_seed(0)
    classifier = Network().classifier.to(device).eval()
    for layer in classifier:
        if isinstance(layer, nn.Linear):
            lth_prune.lottery_ticket_unstructured(layer, "weight", amount=1 - WEIGHTS_REMAINING)
    return classifier


@pytest.mark.parametrize("batch", [128, 1], ids=["batch128", "batch1"])
def test_network_fc_inference(
    benchmark: Any,
    batch: int,
    pruned_fc: nn.Module,
    device: torch.device,
    quick: bool,
    span: float | None,
    pytestconfig: pytest.Config,
    timing_results: list[dict[str, Any]],
) -> None:
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, pruned_fc[0].in_features, generator=generator).to(device)
    dense = dense_reference(pruned_fc)
    sparse = lth_prune.to_sparse(pruned_fc, example_input=inputs)
    kinds = [type(layer).__name__ for layer in sparse if not isinstance(layer, nn.ReLU)]
    timed = _inference(sparse, inputs)
    baseline = paired_baseline(_inference(dense, inputs), pytestconfig) if benchmark.enabled else None

    benchmark.group = f"{CASE_NAME}-batch{batch}"
    benchmark.extra_info.update({
        "model": f"{CASE_NAME}-batch{batch}",
        "weights_remaining": WEIGHTS_REMAINING,
        "variant": "to-sparse",
        "pass": "fc_inference",
        "layers": kinds,
        "batch_size": batch,
        "device": str(device),
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "param_bytes": param_bytes(sparse),
        "dense_param_bytes": param_bytes(dense),
    })
    rounds = rounds_for(time_once(timed) if benchmark.enabled else 1.0, quick, span)
    output = time_against(benchmark, timed, rounds, baseline)

    with torch.inference_mode():
        expected = dense(inputs)
    torch.testing.assert_close(output, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    for layer in dense:
        if isinstance(layer, nn.Linear):
            kept = float(torch.count_nonzero(layer.weight)) / layer.weight.numel()
            assert kept == pytest.approx(WEIGHTS_REMAINING, abs=1 / layer.weight.numel())
    if benchmark.enabled and benchmark.stats:
        timing_results.append({**benchmark.extra_info, "median": benchmark.stats.stats.median})


def _inference(model: nn.Module, inputs: Tensor) -> Timed:
    def target() -> Tensor:
        with torch.inference_mode():
            output = model(inputs)
        if inputs.is_cuda:
            torch.cuda.synchronize(inputs.device)
        return output

    return Timed(target, lambda _: None)
