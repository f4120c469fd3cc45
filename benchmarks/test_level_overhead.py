"""How much of an IMP level is spent outside its optimizer steps, per training phase.

A phase (the ticket, or one branch) trains one network: it builds its batches, enters
``masked_training``, takes its optimizer steps, evaluates, and the level then checkpoints. With
small networks and short levels that work outside the steps can rival the steps themselves. One
``lth_prune.imp.run`` of LeNet-300-100 with the paper's settings (Adam 1.2e-3, batch 60, 5,000
validation images, an evaluation every 1,000 steps) and 2,000 steps a level, on Fashion-MNIST
(MNIST's size and format; Debian's ``dataset-fashion-mnist``) or digits when it is not there
(``--quick``: digits, 200 steps, one round), is timed with the training loop instrumented: the
steps' time is the loop's time less its evaluations. ``extra_info`` holds, per phase, its
seconds, its steps' seconds and the fraction outside them, and the seconds before the first
step. The run's levels and sparsities are checked; no timing is asserted.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from lth_prune import imp, training
from lth_prune.data import load_dataset
from lth_prune.imp import experiment, phases

FULL = dict(iterations=2_000, rounds=2, eval_every=1_000)
QUICK = dict(iterations=200, rounds=1, eval_every=100)
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _dataset(quick: bool, data_dir: Path | None) -> tuple[str, str | None]:
    if quick:
        return "digits", None
    directory = data_dir if data_dir is not None else (FASHION_DIR if FASHION_DIR.is_dir() else None)
    try:
        load_dataset("fashion-mnist", data_dir=None if directory is None else str(directory), limit=1)
    except FileNotFoundError:
        return "digits", None
    return "fashion-mnist", None if directory is None else str(directory)


def test_level_overhead(
    benchmark: Any, quick: bool, device: torch.device, data_dir: Path | None, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, overhead_tables: list[str],
) -> None:
    dataset, directory = _dataset(quick, data_dir)
    config = imp.ExperimentConfig.preset(
        "lenet-fashion-mnist", dataset=dataset, data_dir=directory, device=str(device),
        val_size=144 if dataset == "digits" else 5_000, **(QUICK if quick else FULL),
    )
    phases_seen: list[dict[str, Any]] = []
    clock: dict[str, float] = {}
    real_evaluate, real_train, real_train_network = training.evaluate, phases.train, phases.train_network

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return real_evaluate(*args, **kwargs)
        finally:
            clock["evaluations"] += time.perf_counter() - started

    def train(*args: Any, **kwargs: Any) -> Any:
        clock.setdefault("first_step", time.perf_counter())
        clock["evaluations"] = 0.0
        started = time.perf_counter()
        result = real_train(*args, **kwargs)
        clock["steps"] = time.perf_counter() - started - clock["evaluations"]
        return result

    def train_network(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = real_train_network(*args, **kwargs)
        seconds = time.perf_counter() - started
        phases_seen.append({
            "level": kwargs["level"], "phase": kwargs["phase"], "seconds": seconds,
            "step_seconds": clock["steps"], "outside_steps": 1.0 - clock["steps"] / seconds,
        })
        return outcome

    monkeypatch.setattr(training, "evaluate", evaluate)
    monkeypatch.setattr(phases, "train", train)
    monkeypatch.setattr(phases, "train_network", train_network)
    monkeypatch.setattr(experiment, "train_network", train_network)

    runs = iter(range(1_000))

    def one_run() -> imp.Results:
        phases_seen.clear()
        clock.clear()
        clock["start"] = time.perf_counter()
        return imp.run(config, run_dir=tmp_path / f"run-{next(runs)}", progress=False)

    results = benchmark.pedantic(one_run, rounds=1, iterations=1)

    assert [level["level"] for level in results.levels] == list(range(config.rounds + 1))
    assert results.levels[-1]["weights_remaining"] < results.levels[0]["weights_remaining"] == 1.0
    expected = [(0, "ticket")] + [
        (level, phase) for level in range(1, config.rounds + 1) for phase in ("ticket", *config.controls)
    ]
    assert [(seen["level"], seen["phase"]) for seen in phases_seen] == expected
    assert all(0.0 < seen["step_seconds"] < seen["seconds"] for seen in phases_seen)
    before_first_step = clock["first_step"] - clock["start"]
    benchmark.group = "level-overhead"
    benchmark.extra_info.update({
        "model": config.model, "dataset": dataset, "iterations": config.iterations,
        "device": str(device), "torch_version": torch.__version__, "num_threads": torch.get_num_threads(),
        "seconds_before_first_step": before_first_step, "phases": phases_seen,
    })
    rows = [f"| {seen['level']} | {seen['phase']} | {seen['seconds']:.2f} | {seen['step_seconds']:.2f} | "
            f"{100 * seen['outside_steps']:.1f} |" for seen in phases_seen]
    overhead_tables.append("\n".join([
        f"LeNet-300-100 on {dataset}, {config.iterations} steps a level, {torch.get_num_threads()} thread(s); "
        f"{before_first_step:.2f} s before the first step",
        "| level | phase | seconds | in steps | outside steps (%) |",
        "|---|---|---|---|---|",
        *rows,
    ]))
