"""Options and fixtures shared by the benchmarks, and the ratio summary printed at the end.

Options (``pytest benchmarks --help`` lists them under "lth_prune benchmarks"): ``--quick``,
``--batch-size``, ``--pruning``, ``--threads``, ``--span``, ``--dataset``, ``--data-dir``, ``--summary-dir``;
``--device`` and its ``device`` fixture come from the repository's ``conftest.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import summary

_RESULTS = pytest.StashKey[list[dict[str, Any]]]()
_ACCURACY = pytest.StashKey[list[str]]()
_OVERHEAD = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lth_prune benchmarks")
    group.addoption(
        "--quick",
        action="store_true",
        help="a small suite (3 models, 3 sparsity levels, batch 32, 0.5 s per benchmark) for CI "
        "and smoke runs",
    )
    group.addoption(
        "--batch-size",
        type=int,
        default=None,
        help="batch size of the timed passes (default: 128, or 32 with --quick)",
    )
    group.addoption(
        "--pruning",
        choices=("global", "imp"),
        default="global",
        help="how test_timing.py prunes its models: one shot and global (default), or as IMP "
        "does, each layer at the paper's rate per round (test_sparse_conv.py always prunes so)",
    )
    group.addoption(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads() for the whole run (default: torch's own, one per core); "
        "1 is steadier on a machine shared with other jobs",
    )
    group.addoption(
        "--span",
        type=float,
        default=None,
        help="seconds to spread each timing benchmark's rounds over (default: 2, or 0.5 with "
        "--quick; at most 50 rounds); with --span, up to 1,000 rounds, for steadier ratios "
        "on a noisy machine",
    )
    group.addoption(
        "--dataset",
        default=None,
        help="data set for the accuracy benchmarks, a name from lth_prune.data.DATASETS "
        "(default: the benchmark's own choice); the timing benchmarks use random inputs",
    )
    group.addoption(
        "--data-dir",
        default=None,
        help="directory holding the data set files (default: lth_prune's)",
    )
    group.addoption(
        "--summary-dir",
        default=None,
        help="save the ratio table (.md) and figure (.png, .svg) here; with --benchmark-json "
        "alone, the figure goes next to the JSON file",
    )


def pytest_configure(config: pytest.Config) -> None:
    batch_size = config.getoption("batch_size")
    if batch_size is not None and batch_size < 1:
        raise pytest.UsageError(f"--batch-size must be a positive int, got {batch_size}.")
    span = config.getoption("span")
    if span is not None and not span > 0:
        raise pytest.UsageError(f"--span must be a positive number of seconds, got {span}.")
    threads = config.getoption("threads")
    if threads is not None:
        if threads < 1:
            raise pytest.UsageError(f"--threads must be a positive int, got {threads}.")
        torch.set_num_threads(threads)
    config.stash[_RESULTS] = []
    config.stash[_ACCURACY] = []
    config.stash[_OVERHEAD] = []


@pytest.fixture(scope="session")
def quick(pytestconfig: pytest.Config) -> bool:
    """Whether ``--quick`` was given."""
    return bool(pytestconfig.getoption("quick"))


@pytest.fixture(scope="session")
def batch_size(pytestconfig: pytest.Config, quick: bool) -> int:
    """The batch size of the timed passes: ``--batch-size``, else 128 (32 with ``--quick``)."""
    chosen = pytestconfig.getoption("batch_size")
    return chosen if chosen is not None else (32 if quick else 128)


@pytest.fixture(scope="session")
def span(pytestconfig: pytest.Config) -> float | None:
    """The ``--span`` in seconds, or ``None`` for the default spans."""
    return pytestconfig.getoption("span")


@pytest.fixture(scope="session")
def dataset_name(pytestconfig: pytest.Config) -> str | None:
    """The ``--dataset`` name, or ``None`` to let each benchmark choose."""
    return pytestconfig.getoption("dataset")


@pytest.fixture(scope="session")
def data_dir(pytestconfig: pytest.Config) -> Path | None:
    """The ``--data-dir`` directory, or ``None`` for lth_prune's default."""
    chosen = pytestconfig.getoption("data_dir")
    return None if chosen is None else Path(chosen)


@pytest.fixture(scope="session")
def timing_results(pytestconfig: pytest.Config) -> list[dict[str, Any]]:
    """Rows (a benchmark's ``extra_info`` plus its ``median`` in seconds) for the summary."""
    return pytestconfig.stash[_RESULTS]


@pytest.fixture(scope="session")
def accuracy_tables(pytestconfig: pytest.Config) -> list[str]:
    """Tables of the accuracy benchmark's IMP runs, printed at the end of the session."""
    return pytestconfig.stash[_ACCURACY]


@pytest.fixture(scope="session")
def overhead_tables(pytestconfig: pytest.Config) -> list[str]:
    """Tables of the level-overhead benchmark, printed at the end of the session."""
    return pytestconfig.stash[_OVERHEAD]


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(
    terminalreporter: Any, exitstatus: int, config: pytest.Config
) -> None:
    for table in config.stash.get(_ACCURACY, []):
        terminalreporter.write_sep("-", "lth_prune accuracy at each sparsity level")
        terminalreporter.write_line(table)
    for table in config.stash.get(_OVERHEAD, []):
        terminalreporter.write_sep("-", "lth_prune IMP level: time outside the optimizer steps, per phase")
        terminalreporter.write_line(table)
    rows = config.stash.get(_RESULTS, [])
    if not rows:  # --benchmark-disable, or no timing benchmark selected
        return
    table = summary.ratio_rows(rows)
    text = summary.format_table(table)
    speedups = summary.speedup_rows(table)
    if speedups:
        text += "\n\n" + summary.format_speedups(speedups)
    terminalreporter.write_sep("-", "lth_prune timing: each variant relative to dense, same run")
    terminalreporter.write_line(text)
    summary_dir = config.getoption("summary_dir")
    json_path = config.getoption("benchmark_json", None)
    if summary_dir is not None:
        stem = Path(summary_dir) / "timing_ratios"
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".md").write_text(text + "\n")
    elif json_path is not None:
        stem = summary.default_stem(Path(json_path))
    else:
        return
    for path in summary.save_figure(table, stem):
        terminalreporter.write_line(f"saved {path}")
