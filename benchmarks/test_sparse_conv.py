"""Sparse convolutions that pay: ``to_sparse`` on lottery tickets of the convolutional models.

The question of the issue that asked for a direct sparse convolution: for every convolutional
model of the registry, pruned as IMP prunes (each layer at the paper's rate per round, see
:func:`benchmarks._variants.prune_imp_style`) to 5, 2 and 1 % of its weights, how much faster
does ``lth_prune.to_sparse(model, x)`` run whole-model inference than the dense model holding
the masked weights, at batch 1 and 64, against the FLOP ideal (dense multiply-adds /
multiply-adds of the nonzero weights)? ``to_sparse`` also folds batch norms, makes ReLUs in
place and vectorizes max pooling, which is no sparsity: each ticket is timed a second time
against its ``to_sparse`` copy with every sparse layer turned back into the dense layer
(pass ``ticket_sparse_layers``), which says how much the sparse layers alone buy. And, so
that a regression in one kind of layer shows,
how much faster is one :class:`lth_prune.SparseConv2d` than its dense ``nn.Conv2d`` for one
layer of each shape class (first layer, 3x3 middle layers on large and small maps, strided
3x3, 1x1 shortcut)?

The sparse and dense forms are timed in blocks interleaved with each other
(:class:`benchmarks._timing.PairedBaseline`); the summary reports the passes
``ticket_inference``, ``ticket_sparse_layers`` and ``conv_layer`` with their FLOP ideal. Each benchmark checks that the
sparse form computes the dense form's outputs; none asserts a timing.
"""
from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import lth_prune
from benchmarks._timing import Timed, paired_baseline, rounds_for, time_against, time_once
from benchmarks._variants import dense_reference, imp_rates, param_bytes, prune_imp_style
from lth_prune.sparse._direct_conv import direct_conv_available

MODELS = ("conv2", "conv4", "conv6", "network", "resnet20", "vgg16")
LEVELS = (0.05, 0.02, 0.01)
BATCHES = (1, 64)
# One layer of each shape class: (model, layer name).
LAYERS = {
    "first": ("conv2", "features.0"),  # 3 -> 64, 3x3, 32x32
    "3x3-32x32": ("conv2", "features.2"),  # 64 -> 64
    "3x3-4x4": ("vgg16", "features.27"),  # 512 -> 512
    "3x3-stride2": ("resnet20", "blocks.3.conv1"),  # 16 -> 32, 32x32 -> 16x16
    "1x1-shortcut": ("resnet20", "blocks.3.shortcut.0"),  # 16 -> 32, stride 2
}
# --quick (CI): checks only, in seconds.
QUICK_MODELS, QUICK_LEVELS, QUICK_BATCHES = ("conv2", "resnet20"), (0.02,), (1, 8)
QUICK_LAYERS = ("first", "3x3-32x32", "1x1-shortcut")
INPUT_SHAPE = (3, 32, 32)
# What a ticket's to_sparse copy is timed against: the dense model (pass ticket_inference), or
# the copy itself with its sparse layers made dense again (pass ticket_sparse_layers).
BASELINES = {"dense": "ticket_inference", "rewritten": "ticket_sparse_layers"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    quick = metafunc.config.getoption("quick")
    levels, batches = (QUICK_LEVELS, QUICK_BATCHES) if quick else (LEVELS, BATCHES)
    if "model_name" in metafunc.fixturenames:
        cases = [(m, level, batch, baseline) for m in (QUICK_MODELS if quick else MODELS) for level in levels
                 for batch in batches for baseline in BASELINES]
        metafunc.parametrize(("model_name", "level", "batch", "baseline"), cases,
                             ids=[f"{m}-{level:g}-batch{batch}-vs-{baseline}" for m, level, batch, baseline in cases])
    if "layer_class" in metafunc.fixturenames:
        cases = [(c, level, batch) for c in (QUICK_LAYERS if quick else LAYERS) for level in levels for batch in batches]
        metafunc.parametrize(("layer_class", "level", "batch"), cases,
                             ids=[f"{c}-{level:g}-batch{batch}" for c, level, batch in cases])


class Tickets:
    """IMP-style tickets, pruned once per (model, level) and handed out as copies."""

    def __init__(self) -> None:
        self._built: dict[tuple[str, float], tuple[nn.Module, float]] = {}

    def get(self, model_name: str, level: float) -> tuple[nn.Module, float]:
        """A copy of ``model_name`` (seed 0) pruned IMP-style to ``level``, and its exact level."""
        key = (model_name, level)
        if key not in self._built:
            if self._built and next(iter(self._built))[0] != model_name:
                self._built.clear()  # one model's tickets at a time: VGG-16's take 0.2 GB each
            torch.manual_seed(0)
            model = lth_prune.models.get(model_name, num_classes=10, input_shape=INPUT_SHAPE).eval()
            prune_imp_style(model, level, imp_rates(model_name))
            self._built[key] = (model, 1.0 - lth_prune.sparsity(model))
        model, remaining = self._built[key]
        return copy.deepcopy(model), remaining


@pytest.fixture(scope="module")
def tickets() -> Tickets:
    """The tickets of this module's benchmarks."""
    return Tickets()


def test_ticket_inference(
    benchmark: Any, model_name: str, level: float, batch: int, baseline: str, tickets: Tickets,
    quick: bool, span: float | None, pytestconfig: pytest.Config, timing_results: list[dict[str, Any]],
) -> None:
    pruned, remaining = tickets.get(model_name, level)
    assert remaining <= level and remaining > level * 0.7, f"{model_name} keeps {remaining:.4f}"
    images = torch.randn(batch, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    dense = dense_reference(pruned).eval()
    sparse = lth_prune.to_sparse(pruned, images)
    against = dense if baseline == "dense" else densified(sparse)
    kinds = sorted({type(module).__name__ for module in sparse.modules() if not list(module.children())})
    _record(benchmark, f"{model_name}-batch{batch}", level, remaining, BASELINES[baseline], batch,
            flop_ideal(dense, images), param_bytes(sparse), param_bytes(against), layers=kinds)
    output = _time(benchmark, sparse, against, images, quick, span, pytestconfig)
    with torch.inference_mode():
        expected = dense(images)
    torch.testing.assert_close(output, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    _keep(benchmark, timing_results)


def test_conv_layer(
    benchmark: Any, layer_class: str, level: float, batch: int, tickets: Tickets, quick: bool,
    span: float | None, pytestconfig: pytest.Config, timing_results: list[dict[str, Any]],
) -> None:
    model_name, layer_name = LAYERS[layer_class]
    pruned, _ = tickets.get(model_name, level)
    dense_model = dense_reference(pruned).eval()
    images = torch.randn(batch, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    conv = dense_model.get_submodule(layer_name)
    inputs = _input_of(dense_model, conv, images)
    sparse = lth_prune.SparseConv2d(conv)  # the kernel itself, not a choice by timing
    density = float(torch.count_nonzero(conv.weight)) / conv.weight.numel()
    _record(benchmark, f"{layer_class}-batch{batch}", level, density, "conv_layer", batch,
            1.0 / max(density, 1e-12), param_bytes(sparse), param_bytes(conv),
            layer=f"{model_name}.{layer_name}", input_shape=list(inputs.shape))
    output = _time(benchmark, sparse, conv, inputs, quick, span, pytestconfig)
    with torch.inference_mode():
        expected = conv(inputs)
    torch.testing.assert_close(output, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
    _keep(benchmark, timing_results)


def densified(model: nn.Module) -> nn.Module:
    """A copy of a ``to_sparse`` copy whose sparse layers are dense layers with the same weights."""
    copied = copy.deepcopy(model)
    for name, module in list(copied.named_modules()):
        if isinstance(module, lth_prune.SparseConv2d):
            dense: nn.Module = nn.Conv2d(
                module.in_channels, module.out_channels, module.kernel_size, module.stride,
                module.padding, module.dilation, module.groups, bias=module.bias is not None,
            )
            weight = module.weight.to_dense().reshape(dense.weight.shape)
        elif isinstance(module, lth_prune.SparseLinear):
            dense = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
            weight = module.weight.to_dense()
        else:
            continue
        with torch.no_grad():
            dense.weight.copy_(weight)
            if module.bias is not None:
                dense.bias.copy_(module.bias.reshape(-1))
        dense.requires_grad_(False)
        parent_name, _, child = name.rpartition(".")
        setattr(copied.get_submodule(parent_name) if parent_name else copied, child, dense.eval())
    return copied


def flop_ideal(model: nn.Module, images: Tensor) -> float:
    """Dense multiply-adds of ``model``'s convolution and linear layers on ``images`` over the
    multiply-adds of their nonzero weights."""
    counts = {"dense": 0, "nonzero": 0}

    def count(module: nn.Module, inputs: Any, output: Tensor) -> None:
        positions = output.shape[0] * (output.shape[2] * output.shape[3] if output.dim() == 4 else 1)
        counts["dense"] += module.weight.numel() * positions
        counts["nonzero"] += int(torch.count_nonzero(module.weight)) * positions

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return counts["dense"] / max(counts["nonzero"], 1)


def _input_of(model: nn.Module, layer: nn.Module, images: Tensor) -> Tensor:
    seen: list[Tensor] = []
    handle = layer.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    try:
        with torch.inference_mode():
            model(images)
    finally:
        handle.remove()
    return seen[0]


def _inference(model: nn.Module, inputs: Tensor) -> Timed:
    def target() -> Tensor:
        with torch.inference_mode():
            return model(inputs)

    return Timed(target, lambda _: None)


def _time(benchmark: Any, sparse: nn.Module, dense: nn.Module, inputs: Tensor, quick: bool,
          span: float | None, config: pytest.Config) -> Tensor:
    """The sparse form's rounds, interleaved with the dense form's in blocks; its last output."""
    timed = _inference(sparse, inputs)
    baseline = paired_baseline(_inference(dense, inputs), config) if benchmark.enabled else None
    rounds = rounds_for(time_once(timed) if benchmark.enabled else 1.0, quick, span)
    return time_against(benchmark, timed, rounds, baseline)


def _record(benchmark: Any, case: str, level: float, remaining: float, pass_name: str, batch: int,
            ideal: float, sparse_bytes: int, dense_bytes: int, **extra: Any) -> None:
    benchmark.group = f"{pass_name}-{case}"
    benchmark.extra_info.update({
        "model": case,
        "weights_remaining": level,
        "weights_remaining_exact": remaining,
        "variant": "to-sparse",
        "pass": pass_name,
        "ideal_speedup": ideal,
        "batch_size": batch,
        "device": "cpu",
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "param_bytes": sparse_bytes,
        "dense_param_bytes": dense_bytes,
        "load_average": os.getloadavg()[0],
        "native_kernel": direct_conv_available(),
        **extra,
    })


def _keep(benchmark: Any, timing_results: list[dict[str, Any]]) -> None:
    if benchmark.enabled and benchmark.stats:
        timing_results.append({**benchmark.extra_info, "median": benchmark.stats.stats.median})
