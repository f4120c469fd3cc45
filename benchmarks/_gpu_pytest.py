"""The pytest runs of ``benchmarks/gpu_check.py`` (parts ``tests`` and ``timing``).

Loaded into a pytest run with ``-p benchmarks._gpu_pytest --gpu-check-report FILE``, this module
is a pytest plugin: it can keep only the tests that take the ``device`` fixture, stop starting
tests once a time budget is spent, and writes each test's outcome and the run's peak GPU memory
to ``FILE``. :func:`run_pytest` starts such a run in a subprocess, which a hard timeout can end.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch


__all__ = ["PytestOutcome", "run_pytest"]

ROOT = Path(__file__).resolve().parent.parent



def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gpu_check (benchmarks/_gpu_pytest.py)")
    group.addoption("--gpu-check-report", default=None, help="write each test's outcome here (JSON)")
    group.addoption(
        "--gpu-check-device-tests", action="store_true",
        help="keep only the tests that take the `device` fixture, one case of each test first",
    )
    group.addoption("--gpu-check-limit", type=int, default=None, help="keep the first N of those, in collection order")
    group.addoption(
        "--gpu-check-budget", type=float, default=None,
        help="skip the tests not started when this many seconds have passed",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("gpu_check_report") is not None:
        config.pluginmanager.register(_Recorder(config), "gpu_check_recorder")


class _Recorder:
    """Selects, keeps to the budget, and records every test's outcome for the report."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        budget = config.getoption("gpu_check_budget")
        self.deadline = None if budget is None else time.monotonic() + budget
        self.outcomes: dict[str, str] = {}
        self.over_budget: list[str] = []
        self.selected = 0

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if not self.config.getoption("gpu_check_device_tests"):
            return
        chosen = [item for item in items if "device" in getattr(item, "fixturenames", ())]
        limit = self.config.getoption("gpu_check_limit")
        # One case of every test function first: a budget cut then drops repeated cases, not tests.
        chosen = chosen[:limit] if limit is not None else _breadth_first(chosen)
        kept = set(map(id, chosen))
        self.config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
        items[:] = chosen

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected = len(session.items)  # after every selection, -k included

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.over_budget.append(item.nodeid)
            pytest.skip("gpu_check: the part's time budget is spent")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.outcomes[report.nodeid or "collection"] = "error"

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "error" if report.when == "setup" and report.failed else report.outcome
            self.outcomes[report.nodeid] = outcome
        elif report.when == "teardown":
            if report.failed:
                self.outcomes[report.nodeid] = "error"
            self.write(None)  # after every test: a run killed by its timeout still reports

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.write(int(exitstatus))

    def write(self, exitstatus: int | None) -> None:
        """Write the report: counts, ``failures`` by node id, peak GPU memory, the exit status once known."""
        device = torch.device(self.config.getoption("device"))
        peak = None
        if device.type == "cuda" and torch.cuda.is_initialized():
            peak = torch.cuda.max_memory_allocated(device)
        by_outcome = {name: sorted(node for node, got in self.outcomes.items() if got == name)
                      for name in ("passed", "failed", "error", "skipped")}
        report = {
            "exitstatus": exitstatus,
            "selected": self.selected,
            **{name: len(nodes) for name, nodes in by_outcome.items()},
            "failures": by_outcome["failed"] + by_outcome["error"],
            "over_budget": len(self.over_budget),
            "peak_memory_bytes": peak,
        }
        Path(self.config.getoption("gpu_check_report")).write_text(json.dumps(report, indent=2) + "\n")


def _breadth_first(items: list[pytest.Item]) -> list[pytest.Item]:
    by_function: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_function.setdefault(item.nodeid.split("[")[0], []).append(item)
    rounds = itertools.zip_longest(*by_function.values())
    return [item for round_ in rounds for item in round_ if item is not None]


# --------------------------------------------------------------------------- running pytest


@dataclass(frozen=True)
class PytestOutcome:
    """What a pytest run of :func:`run_pytest` reported.

    Attributes:
        report: the plugin's report (counts, ``failures`` by node id, ``peak_memory_bytes``), as
            of the last test finished when the run was killed; empty if it never got that far.
        returncode: pytest's exit status; ``None`` when the hard timeout killed it.
        seconds: how long it ran.
        log: where its output was saved.
    """

    report: dict[str, Any]
    returncode: int | None
    seconds: float
    log: Path


def run_pytest(arguments: list[str], out: Path, name: str, budget: float, grace: float) -> PytestOutcome:
    """``python -m pytest ARGUMENTS`` from the repository root, with the plugin, in a subprocess.

    Tests not started after ``budget`` seconds are skipped; after ``budget + grace`` the run is
    killed. Its output goes to ``out/NAME.log``, the plugin's report to ``out/NAME_report.json``,
    the tests' temporary files to ``out/NAME_tmp``.
    """
    report_path, log = out / f"{name}_report.json", out / f"{name}.log"
    report_path.unlink(missing_ok=True)
    # A temporary directory of its own: in pytest's shared one, this run would clean away the
    # directories of the runs before it, the calling test's included.
    command = [sys.executable, "-m", "pytest", *arguments, "-p", "no:cacheprovider", "-p", "benchmarks._gpu_pytest",
               "--basetemp", str(out / f"{name}_tmp"), "--gpu-check-report", str(report_path),
               "--gpu-check-budget", str(budget)]
    start = time.monotonic()
    with log.open("w") as output:
        output.write(" ".join(command) + "\n\n")
        output.flush()
        try:
            returncode: int | None = subprocess.run(
                command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, timeout=budget + grace, check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return PytestOutcome(report, returncode, time.monotonic() - start, log)
