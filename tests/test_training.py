"""The training loop, learning-rate schedules and evaluation."""
from __future__ import annotations

import warnings
from typing import Callable

import pytest
import torch
from torch import nn

from lth_prune import training
from lth_prune.training import DivergenceError, LearningRateSchedule, evaluate, train
from tests.devices import no_sync_allowed


def _batches(n: int = 64, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    y = (x[:, 0] > 0).long()
    return [(x[i : i + 16], y[i : i + 16]) for i in range(0, n, 16)]


def test_schedules():
    constant = LearningRateSchedule(lr=0.1, iterations=100)
    assert [constant(s) for s in (0, 50, 99)] == [0.1, 0.1, 0.1]
    warm = LearningRateSchedule(lr=0.1, iterations=100, warmup=4)
    assert [warm(s) for s in range(5)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])
    step = LearningRateSchedule(lr=1.0, iterations=100, decay="step")
    assert [step(s) for s in (49, 50, 74, 75)] == pytest.approx([1.0, 0.1, 0.1, 0.01])
    cosine = LearningRateSchedule(lr=1.0, iterations=100, decay="cosine")
    assert cosine(0) == 1.0 and cosine(50) == pytest.approx(0.5) and cosine(100) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="decay must be 'constant', 'cosine' or 'step', got 'linear'"):
        LearningRateSchedule(lr=1.0, iterations=10, decay="linear")(5)


def test_evaluate_counts_exactly():
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = torch.tensor([0, 1, 1])
    result = evaluate(model, [(x, y)])
    assert result.accuracy == pytest.approx(2 / 3)
    expected = nn.functional.cross_entropy(x, y).item()
    assert result.loss == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least one example"):
        evaluate(model, [])


def test_train_steps_learning_rates_and_early_stopping():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    seen = []
    optimizer.register_step_post_hook(lambda opt, *_: seen.append(opt.param_groups[0]["lr"]))
    schedule = LearningRateSchedule(lr=0.5, iterations=10, warmup=2)
    result = train(model, optimizer, _batches(), schedule, iterations=10, start_iteration=3,
                   val_batches=_batches(seed=1), test_batches=_batches(seed=2), eval_every=2)
    assert result.iterations == 7
    assert seen == [schedule(step) for step in range(3, 10)]
    assert result.early_stop_iteration in (4, 6, 8, 10)
    assert result.early_stop_test is not None
    assert result.final.accuracy > 0.5


def test_train_arguments():
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"iterations must be greater than start_iteration \(5\), got 5"):
        train(model, optimizer, _batches(), LearningRateSchedule(0.1, 5), iterations=5, start_iteration=5)
    with pytest.raises(ValueError, match="train_batches must yield at least one batch"):
        train(model, optimizer, [], LearningRateSchedule(0.1, 5), iterations=5)


def test_the_first_non_finite_loss_is_marked_on_the_device_without_a_wait(device):
    losses = [torch.tensor(value, device=device) for value in (0.5, float("nan"), 0.25, float("inf"))]
    first_bad = None
    marks = []
    with no_sync_allowed(device):
        for step, loss in enumerate(losses, start=1):
            first_bad = training._mark_first_bad(first_bad, loss, step)
            marks.append(first_bad)
    assert first_bad is not None and first_bad.dtype == torch.int64 and first_bad.device.type == device.type
    assert [int(mark) for mark in marks] == [-1, 2, 2, 2]


def test_a_run_that_diverges_on_the_device_names_the_first_bad_step(device):
    # From the third batch (step 2) on, every loss is NaN: the inputs, then the weights.
    batches = _batches()
    batches[2][0][0, 0] = float("nan")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).to(device)
    on_device = [(inputs.to(device), targets.to(device)) for inputs, targets in batches]
    with pytest.raises(DivergenceError, match="the loss is .* at step 2; ") as raised:
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), on_device, LearningRateSchedule(0.1, 10),
              iterations=10)
    assert raised.value.step == 2


def test_evaluate_sums_on_an_accelerator_exactly_as_it_reads_on_the_cpu(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    batches = _batches(n=96)
    read_each_batch = evaluate(model, batches)
    # The accelerators' path, taken here on the CPU: the float64 sums equal Python's.
    monkeypatch.setattr(training, "_READ_EACH_BATCH", ())
    assert evaluate(model, batches) == read_each_batch


def test_evaluate_reads_the_device_once_not_per_batch(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    expected = evaluate(model, _batches(n=96))
    model.to(device)
    batches = [(inputs.to(device), targets.to(device)) for inputs, targets in _batches(n=96)]
    result = evaluate(model, batches)
    assert result.loss == pytest.approx(expected.loss, rel=1e-5)
    assert result.accuracy == pytest.approx(expected.accuracy, abs=1.5 / 96)
    if device.type == "cuda":
        one = _syncs(device, lambda: evaluate(model, batches[:1]))
        assert _syncs(device, lambda: evaluate(model, batches)) == one


def _syncs(device: torch.device, run: Callable[[], object]) -> int:
    """How many operations in ``run`` waited for the CUDA device."""
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(warning.message) for warning in caught)
