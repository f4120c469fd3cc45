"""benchmarks/gpu_check.py as CI runs it (``--device cpu --quick``): its table, its checks, its refusals.

No timing is asserted: only the table's structure, the correctness checks it reports (masks
exact, the device's training equal to the CPU's, which on the CPU must be exact) and its exit
status.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import gpu_check
from benchmarks._gpu_level import LevelResult
from benchmarks._gpu_pytest import PytestOutcome

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def smoke_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    """The command CI documents, run as a user runs it: a file, from the repository root."""
    out = tmp_path_factory.mktemp("gpu_check")
    completed = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--device", "cpu", "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )
    record = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    return completed, record, out


def test_the_cpu_smoke_run_passes_and_prints_the_table_it_saves(smoke_run):
    completed, record, out = smoke_run
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    assert record["ok"] is True and record["device"] == "cpu" and record["quick"] is True
    assert record["parts"] == ["tests", "timing", "imp"]
    saved = (out / "summary.md").read_text().strip()
    assert completed.stdout.strip().endswith(saved) and "all checks pass" in saved.splitlines()[0]
    table = saved.splitlines()[2:]
    assert table[0].startswith("| part ") and len(table) == 2 + len(record["rows"])
    assert {row["status"] for row in record["rows"]} <= {"pass", "info"}
    assert all(row["peak_memory"] == "n/a" for row in record["rows"])


def test_the_device_tests_part_runs_the_tests_that_take_the_device_fixture(smoke_run):
    _, record, _ = smoke_run
    (row,) = _rows(record, "tests")
    assert row["status"] == "pass" and row["check"] == "pytest tests --device cpu (device tests)"
    assert row["data"]["selected"] == row["data"]["passed"] == gpu_check.QUICK_TESTS
    assert row["data"]["failed"] == row["data"]["error"] == 0 and row["data"]["failures"] == []
    assert row["figures"] == f"{gpu_check.QUICK_TESTS} passed, 0 failed, 0 errors, 0 skipped of {gpu_check.QUICK_TESTS}"


def test_the_timing_part_checks_the_suite_and_gives_each_variants_ratios(smoke_run):
    _, record, _ = smoke_run
    checks, *variants = _rows(record, "timing")
    assert checks["status"] == "pass" and checks["data"]["failed"] == 0 and checks["data"]["passed"] > 0
    assert [row["check"] for row in variants] == [
        "torch-prune / dense", "masked-training / dense", "sparse-kernels / dense",
    ]
    for row in variants:
        assert row["status"] == "info"
        assert [cell.split()[0] for cell in row["figures"].split(", ")] == ["forward", "backward", "train_step"]
        assert "over lenet300_100 at 100%/20%/2%" in row["notes"]


def test_the_imp_part_keeps_masks_exact_and_matches_the_cpu_exactly(smoke_run):
    _, record, _ = smoke_run
    rows = _rows(record, "imp")
    assert [row["check"] for row in rows] == [
        f"{model}: {what}"
        for model in gpu_check.IMP_MODELS for what in ("dense vs masked training", "masks and CPU agreement")
    ]
    for speed, checks in zip(rows[::2], rows[1::2]):
        level = speed["data"]
        assert checks["status"] == "pass" and checks["data"] == {"correct": True}
        assert level["revived"] == 0 and level["pruned"] > 0 and level["masks_kept"] is True
        assert level["cpu_masks_identical"] is True
        # CPU against CPU: the same computation, so the same bits.
        assert level["cpu_difference"] == {"dense": 0.0, "masked": 0.0} and level["tolerance"] == 0.0
        assert level["syncs_per_step"] is None and "host syncs per step: n/a" in speed["figures"]
        assert 0.7 < level["weights_remaining"] < 0.95
        assert level["dense_images_per_second"] > 0 and level["masked_images_per_second"] > 0


def test_a_failed_check_makes_the_exit_status_non_zero_and_is_shown(tmp_path, monkeypatch, capsys):
    def revives(name: str, *args: Any) -> LevelResult:
        return LevelResult(name, 0.8, 10.0, 10.0, 1.0, None, pruned=100, revived=3, masks_kept=True,
                           cpu_masks_identical=True, cpu_difference={"dense": 0.0, "masked": 0.0})

    monkeypatch.setattr(gpu_check, "imp_level", revives)
    assert gpu_check.main(["--device", "cpu", "--quick", "--parts", "imp", "--out", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    assert "CHECKS FAILED" in printed and "pruned weights nonzero after training: 3 of 100" in printed
    assert json.loads((tmp_path / "summary.json").read_text())["ok"] is False


def test_failed_tests_are_named_in_the_notes(tmp_path, monkeypatch, capsys):
    report = {"selected": 3, "passed": 1, "failed": 1, "error": 1, "skipped": 0, "over_budget": 0,
              "failures": ["tests/test_a.py::test_b", "tests/test_c.py::test_d[x]"], "peak_memory_bytes": None}
    monkeypatch.setattr(gpu_check, "run_pytest", lambda *args: PytestOutcome(report, 1, 1.0, tmp_path / "tests.log"))
    assert gpu_check.main(["--device", "cpu", "--quick", "--parts", "tests", "--out", str(tmp_path)]) == 1
    (row,) = json.loads((tmp_path / "summary.json").read_text())["rows"]
    assert row["status"] == "FAIL" and row["figures"] == "1 passed, 1 failed, 1 errors, 0 skipped of 3"
    assert "failed: tests/test_a.py::test_b tests/test_c.py::test_d[x]" in row["notes"]
    assert "| FAIL " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--device", "cuda"], gpu_check.NO_GPU),
        (["--device", "mps"], "--device must be cpu, cuda or cuda:N, got 'mps'."),
        (["--device", "gpu"], "--device must be cpu, cuda or cuda:N, got 'gpu'."),
        (["--device", "cpu", "--parts", "tests,gpu"],
         "--parts must be a comma-separated subset of tests, timing, imp, got 'tests,gpu'."),
        (["--device", "cpu", "--parts", ","],
         "--parts must be a comma-separated subset of tests, timing, imp, got ','."),
        (["--device", "cpu", "--steps", "0"], "--steps must be a positive int, got 0."),
    ],
    ids=["cuda-without-gpu", "mps", "unknown-device", "unknown-part", "no-part", "steps-0"],
)
def test_bad_arguments_are_refused_before_any_work(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        gpu_check.main([*argv, "--out", str(out)])
    assert exited.value.code == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


def _rows(record: dict[str, Any], part: str) -> list[dict[str, Any]]:
    return [row for row in record["rows"] if row["part"] == part]
