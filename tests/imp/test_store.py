"""The run store (lth_prune.imp.store.rundir): lock, atomic writes, validated reads, layout."""
from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from lth_prune import analysis, imp
from lth_prune.imp import ExperimentConfig, Results
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.imp.store import RunDirectoryError, RunStore, TicketPath

FAST = dict(dataset="synthetic", iterations=4, rounds=2, controls=("random_pruning",))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("rundir") / "run"
    imp.run(ExperimentConfig(**FAST), run_dir=run_dir, progress=False)
    return run_dir


def _copy(source: Path, target: Path) -> Path:
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    return target


@pytest.fixture
def holder(tmp_path: Path):
    """A separate process holding the lock of a run directory, and its pid."""
    run_dir = tmp_path / "busy"
    code = textwrap.dedent(f"""
        import sys, time
        from lth_prune.imp.store import RunStore
        with RunStore({str(run_dir)!r}).lock():
            print("locked", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield run_dir, process.pid
    process.kill()
    process.wait()


def test_a_second_writer_fails_at_once_naming_the_holder(holder, tmp_path):
    run_dir, pid = holder
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match=rf"run directory {run_dir} is being written by another process \(pid {pid} on "):
        imp.run(ExperimentConfig(**FAST), run_dir=run_dir, progress=False)
    assert time.perf_counter() - started < 30  # no training happened
    assert not RunStore(run_dir).holds_run() and not (run_dir / "level_0").exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    store = RunStore(tmp_path / "run")
    store.run_dir.mkdir()
    (store.run_dir / ".lock").write_text("pid 4194304 on elsewhere")  # nobody holds it
    with pytest.warns(RuntimeWarning, match=r"was left locked by pid 4194304 on elsewhere, which no longer holds it"):
        lock = store.lock().acquire()
    assert (store.run_dir / ".lock").read_text().startswith(f"pid {os.getpid()} on ")
    lock.release()
    assert not (store.run_dir / ".lock").exists()


def test_killed_holder_frees_the_lock(holder):
    run_dir, pid = holder
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    with pytest.warns(RuntimeWarning, match=rf"left locked by pid {pid}"):
        with RunStore(run_dir).lock():
            pass


def test_two_runs_into_one_directory_the_second_is_refused(finished):
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        imp.run(ExperimentConfig(**FAST), run_dir=finished, progress=False)


def test_a_full_disk_names_the_file_and_keeps_what_finished(tmp_path, monkeypatch):
    config = ExperimentConfig(**FAST)
    whole = imp.run(config, run_dir=tmp_path / "whole", progress=False)
    run_dir = tmp_path / "full"
    real_write = os.write
    written = {"bytes": 0}

    def disk_fills_at_level_2(fd, data):
        if "level_2" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        written["bytes"] += len(data)
        return real_write(fd, data)

    monkeypatch.setattr("lth_prune.imp.store.files.os.write", disk_fills_at_level_2)
    with pytest.raises(OSError) as error:
        imp.run(config, run_dir=run_dir, progress=False)
    message = str(error.value)
    assert error.value.errno == errno.ENOSPC
    assert f"could not write {run_dir / 'level_2' / 'seed_0' / 'trained.pt'} (" in message
    assert "bytes): No space left on device. Nothing that had finished is lost" in message
    assert not [path for path in run_dir.rglob("*") if path.name.endswith(".tmp")]
    monkeypatch.undo()
    assert RunStore(run_dir).finished_levels(0) == [0, 1]
    resumed = imp.run(config, run_dir=run_dir, resume=True, progress=False)
    assert [level["test_accuracy"] for level in resumed.levels] == [level["test_accuracy"] for level in whole.levels]


@pytest.mark.parametrize(
    ("name", "damage", "what"),
    [
        ("trained.pt", "truncate", "a level's trained weights"),
        ("trained.pt", "foreign", "a trained checkpoint"),
        ("ticket.pt", "truncate", "a readable ticket"),
        ("record.json", "truncate", "a level's record"),
    ],
)
def test_a_damaged_level_file_names_the_file_and_what_to_do(finished, tmp_path, name, damage, what):
    run_dir = _copy(finished, tmp_path / "copy")
    path = run_dir / "level_1" / "seed_0" / name
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        torch.save({"something": "else"}, path)
    (run_dir / "level_2").rename(tmp_path / "level_2")  # so a resume must read level 1
    with pytest.raises(RunDirectoryError) as error:
        imp.run(ExperimentConfig(**FAST), run_dir=run_dir, resume=True, progress=False)
    message = str(error.value)
    assert str(path) in message and what in message
    assert f"delete {run_dir / 'level_1' / 'seed_0'} and resume (lth-prune run --out {run_dir} --resume)" in message
    assert isinstance(error.value, ValueError)


def test_damaged_results_and_config_are_named(finished, tmp_path):
    run_dir = _copy(finished, tmp_path / "copy")
    (run_dir / "results.json").write_text('{"config": {"mod')
    with pytest.raises(RunDirectoryError, match=rf"{run_dir / 'results.json'} is not readable as the results of a run"):
        Results.load(run_dir)
    (run_dir / "config.json").write_text('{"learning_rate": 3}')
    with pytest.raises(RunDirectoryError, match=r"config.json does not hold valid settings .*unknown settings \['learning_rate'\]"):
        RunStore(run_dir).read_config()


def test_results_files_are_strict_json(tmp_path):
    records = [{"level": 0, "seed": 0, "weights_remaining": 1.0, "layers": {}, "test_accuracy": 0.5,
                "val_accuracy": float("nan"), "test_loss": float("inf")}]
    Results.from_records(ExperimentConfig(), records).save(tmp_path)

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    data = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    assert data["levels"][0]["test_loss"] is None and data["levels"][0]["test_accuracy"] == 0.5


def test_the_rewind_point_is_stored_whole_once_per_seed(finished):
    store = RunStore(finished)
    point = store.rewind_point(0)
    masks, compact_point, step = store.ticket(2, 0)
    assert isinstance(point, RewindPoint) and point.step == step == 0
    weights = point.state["classifier.0.weight"]
    # The ticket keeps values only where it keeps weights; the rewind point everywhere.
    assert int((weights == 0).sum()) == 0
    assert int((compact_point["classifier.0.weight"] == 0).sum()) == int((~masks["classifier.0.weight"]).sum())
    assert torch.equal(weights[masks["classifier.0.weight"]], compact_point["classifier.0.weight"][masks["classifier.0.weight"]])


def test_runs_without_a_rewind_point_file_read_it_from_their_level_0_ticket(finished, tmp_path):
    run_dir = _copy(finished, tmp_path / "copy")
    expected = RunStore(run_dir).rewind_point(0)
    for path in (run_dir / "rewind_points").iterdir():
        path.unlink()
    point = RunStore(run_dir).rewind_point(0)
    assert point.step == expected.step and all(torch.equal(point.state[k], v) for k, v in expected.state.items())


def test_finished_levels_records_and_layout_queries(finished):
    store = RunStore(finished)
    assert store.finished_levels(0) == [0, 1, 2] and store.finished_levels(7) == []
    assert store.record(1, 0)["level"] == 1 and store.read_config() == ExperimentConfig(**FAST)
    assert [path.name for path in store.results_files()] == ["results.json", "results.csv"]
    assert analysis.finished_levels(finished) == [0, 1, 2]
    assert not RunStore(finished / "nothing").holds_run()


def test_ticket_paths_are_split_into_run_level_and_seed():
    assert TicketPath.parse("runs/fm") == TicketPath(Path("runs/fm"), None, None)
    assert TicketPath.parse("runs/fm/level_3").suffix == "-level_3"
    assert TicketPath.parse("runs/fm/level_3/seed_2") == TicketPath(Path("runs/fm"), 3, 2)
    with pytest.raises(ValueError, match="must be RUN_DIR, RUN_DIR/level_N or RUN_DIR/level_N/seed_S, got runs/fm/seed_2"):
        TicketPath.parse("runs/fm/seed_2")


def test_nan_in_a_record_reads_back_as_missing(finished, tmp_path):
    run_dir = _copy(finished, tmp_path / "copy")
    record = RunStore(run_dir).record(1, 0)
    assert all(not (isinstance(value, float) and math.isnan(value)) for value in record.values())


def test_check_start_judges_fresh_resumable_and_foreign_directories(tmp_path):
    config = ExperimentConfig(**{**FAST, "rounds": 1, "controls": ()})
    store = RunStore(tmp_path / "run")
    assert store.check_start(config, False, "f()")  # nothing there: fresh
    with pytest.raises(ValueError, match=r"^f\(\): resume=True needs a run in run_dir"):
        store.check_start(config, True, "f()")
    imp.run(config, run_dir=store.run_dir, progress=False)
    assert not store.check_start(config, True, "f()")  # the same settings: resumable
    with pytest.raises(ValueError, match=r"^f\(\): run_dir .* already holds a run; pass resume=True"):
        store.check_start(config, False, "f()")
    with pytest.raises(ValueError, match=r"^g\(\): run_dir .* already holds a run; choose another directory\.$"):
        store.check_start(config, False, "g()", resumable=False)
    with pytest.raises(ValueError, match=r"resume needs the config the run started with; these settings differ: \['lr'\]"):
        store.check_start(config.replace(lr=0.1), True, "f()")
    # A transfer written before transfers were runs of their own method (no transfer_from).
    store.write_transfer({"source_run": "elsewhere"})
    with pytest.raises(ValueError, match=r"holds a transfer written before transfers were runs of their own method"):
        store.check_start(config, True, "f()")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"run_dir must be a directory, got .*, which is a file"):
        RunStore(tmp_path / "file").check_start(config, False, "f()")
