"""Accuracy at each sparsity level, with and without retraining, next to random re-initialization.

One IMP run per data set (``lth_prune.imp.run``, written to a run directory with its results
file, table and figures); then one benchmark per level times the evaluation of that level's
saved ticket on the test set and checks it reproduces the accuracy the run recorded. The level's
accuracies go into the benchmark JSON (``extra_info``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import lth_prune
from lth_prune import imp, report
from lth_prune.data import load_dataset
from lth_prune.rewind import restore_state
from lth_prune.training import evaluate

# Per data set: the run's settings, full and --quick. Digits is always there; Fashion-MNIST
# when Debian's dataset-fashion-mnist (or --data-dir) provides it.
SETTINGS: dict[str, dict[str, Any]] = {
    "digits": dict(rounds=12, epochs=10.0),
    "fashion-mnist": dict(rounds=10, epochs=2.0),
}
QUICK: dict[str, Any] = dict(rounds=3, epochs=2.0)
DEFAULT_DATASETS = ("digits", "fashion-mnist")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dataset" not in metafunc.fixturenames:
        return
    chosen = metafunc.config.getoption("dataset")
    quick = metafunc.config.getoption("quick")
    names = [chosen] if chosen else (["digits"] if quick else list(DEFAULT_DATASETS))
    rounds = QUICK["rounds"] if quick else max(s["rounds"] for s in SETTINGS.values())
    metafunc.parametrize(
        ("dataset", "level"), [(name, level) for name in names for level in range(rounds + 1)],
        ids=[f"{name}-level{level}" for name in names for level in range(rounds + 1)],
    )


@pytest.fixture(scope="session")
def accuracy_runs() -> dict[str, imp.Results | str]:
    """IMP results per data set, run on first use; a str says why a data set is unavailable."""
    return {}


def _run(dataset: str, runs: dict[str, imp.Results | str], quick: bool, device: torch.device,
         data_dir: Path | None, base: Path, tables: list[str]) -> imp.Results | str:
    if dataset in runs:
        return runs[dataset]
    settings = QUICK if quick else SETTINGS.get(dataset, dict(rounds=10, epochs=2.0))
    model = "network" if dataset == "cifar10" else "lenet300_100"
    config = imp.ExperimentConfig(
        model=model, dataset=dataset, data_dir=None if data_dir is None else str(data_dir),
        controls=("random_reinit",), device=str(device), **settings,
    )
    try:
        load_dataset(dataset, data_dir=config.data_dir, limit=1)
    except FileNotFoundError as missing:
        runs[dataset] = str(missing).splitlines()[0]
        return runs[dataset]
    run_dir = base / f"accuracy-{dataset}"
    results = imp.run(config, run_dir=run_dir, progress=False)
    table = report.format_table(results)
    (run_dir / "table.md").write_text(table + "\n")
    tables.append(f"{model} on {dataset} ({run_dir}):\n{table}")
    runs[dataset] = results
    return results


def test_accuracy(
    benchmark: Any,
    dataset: str,
    level: int,
    accuracy_runs: dict[str, imp.Results | str],
    quick: bool,
    device: torch.device,
    data_dir: Path | None,
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
    accuracy_tables: list[str],
) -> None:
    summary_dir = pytestconfig.getoption("summary_dir")
    base = Path(summary_dir) if summary_dir else tmp_path_factory.getbasetemp()
    results = _run(dataset, accuracy_runs, quick, device, data_dir, base, accuracy_tables)
    if isinstance(results, str):
        pytest.skip(f"{dataset} is not available here: {results}")
    if level >= len(results.levels):
        pytest.skip(f"the {dataset} run has {len(results.levels)} levels")
    recorded = results.levels[level]
    model, test_loader = _trained_ticket(results, level, device)

    benchmark.group = f"accuracy-{dataset}"
    benchmark.extra_info.update({
        "model": results.config.model,
        "dataset": dataset,
        "level": level,
        "weights_remaining": recorded["weights_remaining"],
        "test_accuracy": recorded["test_accuracy"],
        "no_retrain_accuracy": recorded["no_retrain_accuracy"],
        "random_reinit_accuracy": recorded["random_reinit_accuracy"],
        "round_seconds": recorded["seconds"],
        "device": str(device),
        "torch_version": torch.__version__,
    })
    measured = benchmark.pedantic(evaluate, args=(model, test_loader, device), rounds=3, warmup_rounds=1)
    # The saved ticket, reloaded into a fresh model, must give exactly what the run recorded.
    assert measured.accuracy == recorded["test_accuracy"]
    assert lth_prune.sparsity(model) == pytest.approx(1.0 - recorded["weights_remaining"], abs=1e-12)


def _trained_ticket(results: imp.Results, level: int, device: torch.device) -> tuple[torch.nn.Module, Any]:
    config = results.config
    data = load_dataset(config.dataset, data_dir=config.data_dir, val_size=config.val_size, limit=config.limit)
    model = lth_prune.models.get(config.model, num_classes=data.num_classes, input_shape=data.input_shape)
    trained = torch.load(results.run_dir / f"level_{level}" / "seed_0" / "trained.pt", weights_only=True)
    lth_prune.set_masks(model, trained["masks"])
    restore_state(model, trained["state"])
    return model.to(device), data.loaders(1000, device=device)[2]
