"""Sweeps (lth_prune.studies.sweep, ``lth-prune sweep``): a grid, one job per run, resumed."""
from __future__ import annotations

import json

import pytest

from lth_prune import cli
from lth_prune.imp import ExperimentConfig
from lth_prune.studies import sweep as sweep_module
from lth_prune.studies.sweep import sweep

BASE = ExperimentConfig(dataset="synthetic", rounds=1, iterations=2, controls=())


@pytest.mark.extra("sweep")
def test_local_jobs_end_to_end_then_a_second_call_resumes(tmp_path, monkeypatch):
    runs = sweep(BASE, {"method": ["imp", "snip"], "lr": [1e-3]}, sweep_dir=tmp_path, executor="local", timeout_min=10)
    assert [run.label for run in runs] == ["method=imp lr=0.001", "method=snip lr=0.001"]
    assert [run.results.config.method for run in runs] == ["imp", "snip"]
    assert runs[1].results.config.pruning_mode == "global"  # each method keeps its own default
    assert all((run.run_dir / "results.json").is_file() for run in runs)
    assert (tmp_path / "jobs").is_dir()
    described = json.loads((tmp_path / "sweep.json").read_text())
    assert [entry["label"] for entry in described["runs"]] == [run.label for run in runs]
    # Again: finished runs are not submitted; a run with no results resumes.
    (runs[1].run_dir / "results.json").unlink()
    (runs[1].run_dir / "results.csv").unlink()
    submitted = []
    monkeypatch.setattr(sweep_module, "run_job", lambda config, run_dir, resume: submitted.append((run_dir, resume)) or
                        sweep_module.run(ExperimentConfig.from_dict(config), run_dir=run_dir, resume=resume, progress=False))
    again = sweep(BASE, {"method": ["imp", "snip"], "lr": [1e-3]}, sweep_dir=tmp_path, executor="inline")
    assert submitted == [(str(runs[1].run_dir), True)]
    assert again[1].results.levels[1]["test_accuracy"] == runs[1].results.levels[1]["test_accuracy"]


def test_every_point_is_checked_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"the grid point \{'rate': 1.5\} is not a valid config: .*rate must be"):
        sweep(BASE, {"rate": [0.2, 1.5]}, sweep_dir=tmp_path / "a", executor="inline")
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match=r"grid keys must be settings of what a run computes, got 'device'"):
        sweep(BASE, {"device": ["cpu"]}, sweep_dir=tmp_path / "b", executor="inline")
    with pytest.raises(ValueError, match=r"executor must be one of \['local', 'slurm', 'inline'\], got 'ray'"):
        sweep(BASE, {"lr": [0.1]}, sweep_dir=tmp_path / "c", executor="ray")
    sweep(BASE, {"lr": [0.1]}, sweep_dir=tmp_path / "d", executor="inline")
    with pytest.raises(ValueError, match=r"holds a sweep of other settings"):
        sweep(BASE, {"lr": [0.2]}, sweep_dir=tmp_path / "d", executor="inline")


def test_the_command(tmp_path, capsys):
    argv = ["sweep", "--grid", "lr=1e-3,1e-2", "--dataset", "synthetic", "--rounds", "1", "--iterations", "2",
            "--controls", "none", "--executor", "inline", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "lr=0.001: remaining (%)" in out.splitlines()[0] and "lr=0.01: ticket (%)" in out.splitlines()[0]
    assert (tmp_path / "compare.png").is_file()
    assert cli.main(["sweep", "--grid", "lr", "--out", str(tmp_path / "x")]) == 2
    assert "--grid must be NAME=VALUE,VALUE,..., got 'lr'" in capsys.readouterr().err
    assert cli.main(["sweep", "--grid", "batch_size=big", "--out", str(tmp_path / "x")]) == 2
    assert "batch_size takes an int, got 'big'" in capsys.readouterr().err
