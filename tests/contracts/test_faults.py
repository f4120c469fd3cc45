"""Kill a run with SIGKILL before, during and after each of its file writes: ``resume`` must then
give the results and the masks of a run that was never interrupted.

The run is forked, so the killed process is a real process that dies without unwinding (no
``finally``, no lock released, a temporary file half written), as under ``kill -9`` or an
out-of-memory kill; the resume runs in the test process.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from lth_prune import imp
from lth_prune.imp import ExperimentConfig
from lth_prune.imp.store import files as _files
from lth_prune.imp.store import RunStore
from tests.runs import numbers

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks a run to kill it"),
    pytest.mark.filterwarnings("ignore:.*was left locked by:RuntimeWarning"),
]

BASE = dict(dataset="synthetic", rounds=2, iterations=4, controls=("random_reinit", "random_pruning"))
MODES = {
    "init": {},
    "step": dict(rewind="step", rewind_step=2),
    "lr": dict(rewind="lr", decay="cosine"),
    "finetune": dict(rewind="finetune", decay="cosine"),
    "one_shot": dict(one_shot=True),
}
# config, rewind point and three files a level for levels 0-2, then results.json and .csv.
WRITES = 1 + 1 + 3 * 3 + 2
WHEN = ("before", "during", "after")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[dict], Path]]:
    base = tmp_path_factory.mktemp("faults")
    return {mode: (numbers(imp.run(_config(mode), run_dir=base / mode, progress=False)), base / mode) for mode in MODES}


def _config(mode: str) -> ExperimentConfig:
    return ExperimentConfig(**{**BASE, **MODES[mode]})


def _killed_run(config: ExperimentConfig, run_dir: Path, write: int, when: str) -> None:
    """Run in a child process that SIGKILLs itself at its ``write``-th file write."""
    child = os.fork()
    if child == 0:  # pragma: no cover - the child never returns
        try:
            torch.set_num_threads(1)
            _arm(write, when)
            imp.run(config, run_dir=run_dir, progress=False)
        finally:
            os._exit(3)  # reached only if the kill point was never met
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"the run was not killed ({status})"


def _arm(write: int, when: str) -> None:
    real_write_atomic, real_os_write = _files.write_atomic, os.write
    count = {"writes": 0, "armed": False}

    def write_atomic(path: Path, data: bytes) -> None:
        count["writes"] += 1
        if count["writes"] == write and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        count["armed"] = count["writes"] == write and when == "during"
        real_write_atomic(path, data)
        if count["writes"] == write and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    def half_then_die(fd: int, data: Any) -> int:
        if count["armed"]:
            real_os_write(fd, bytes(data[: max(1, len(data) // 2)]))
            os.kill(os.getpid(), signal.SIGKILL)
        return real_os_write(fd, data)

    import lth_prune.imp.store.rundir as rundir

    rundir.write_atomic = write_atomic
    _files.os.write = half_then_die  # type: ignore[attr-defined]


def _check_resume(mode: str, run_dir: Path, uninterrupted: dict[str, tuple[list[dict], Path]]) -> None:
    expected, whole_dir = uninterrupted[mode]
    resumed = imp.run(_config(mode), run_dir=run_dir, resume=True, progress=False)
    assert numbers(resumed) == expected
    whole, again = RunStore(whole_dir), RunStore(run_dir)
    for level in range(BASE["rounds"] + 1):
        assert all(torch.equal(a, b) for a, b in zip(whole.trained(level, 0)[1].values(), again.trained(level, 0)[1].values()))
        assert all(torch.equal(a, b) for a, b in zip(whole.ticket(level, 0)[0].values(), again.ticket(level, 0)[0].values()))
    leftovers = [path.name for path in run_dir.rglob("*") if path.name.endswith(".tmp")]
    assert all(name.startswith(".") for name in leftovers)  # a killed write's temporary file is hidden and ignored


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("write", range(1, WRITES + 1))
def test_killed_at_every_write_resumes_to_the_same_run(write, when, tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    _killed_run(_config("init"), run_dir, write, when)
    if not RunStore(run_dir).holds_run():
        run_dir = tmp_path / "run"  # killed before its config was written: there is nothing to resume
        assert numbers(imp.run(_config("init"), run_dir=run_dir, progress=False)) == uninterrupted["init"][0]
        return
    _check_resume("init", run_dir, uninterrupted)


@pytest.mark.parametrize("mode", [mode for mode in MODES if mode != "init"])
@pytest.mark.parametrize(("write", "when"), [(6, "during"), (8, "after"), (10, "before")])
def test_each_rewind_mode_resumes_after_a_kill(mode, write, when, tmp_path, uninterrupted):
    _killed_run(_config(mode), tmp_path / "run", write, when)
    _check_resume(mode, tmp_path / "run", uninterrupted)


def test_the_write_count_is_that_of_the_run(tmp_path):
    """If the run writes more or fewer files, the kill points above no longer cover them all."""
    calls = []
    real = _files.write_atomic
    import lth_prune.imp.store.rundir as rundir

    original = rundir.write_atomic
    rundir.write_atomic = lambda path, data: calls.append(path.name) or real(path, data)
    try:
        imp.run(_config("init"), run_dir=tmp_path / "run", progress=False)
    finally:
        rundir.write_atomic = original
    assert len(calls) == WRITES
    assert calls[:2] == ["config.json", "seed_0.pt"] and calls[-2:] == ["results.json", "results.csv"]
