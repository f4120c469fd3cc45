"""Stability analysis in the experiment: the stability branch (lth_prune.imp.branches.stability)
and instability against the rewind step (lth_prune.studies.stability, ``lth-prune stability``)."""
from __future__ import annotations

import json

import pytest

from lth_prune import cli, imp, report
from lth_prune.imp import ExperimentConfig
from lth_prune.imp.store import RunStore
from lth_prune.studies.stability import RewindStability, rewind_stability
from lth_prune.report.stability import path_figure, stability_figure

FAST = dict(dataset="synthetic", rounds=2, iterations=8, controls=("stability",))


def test_the_branch_records_instability_and_the_path_at_chosen_levels(tmp_path):
    results = imp.run(ExperimentConfig(**FAST, stability_levels=(2,)), run_dir=tmp_path, progress=False)
    assert results.levels[1]["stability_instability"] is None  # not a chosen level
    level = results.levels[2]
    assert 0.0 <= level["stability_instability"] <= 1.0
    errors = level["seeds"][0]["stability_errors"]
    assert len(errors) == 30 and level["stability_instability"] == pytest.approx(max(errors) - (errors[0] + errors[-1]) / 2)
    names = [path.name for path in report.plot_run(tmp_path)]
    assert "stability.png" in names
    assert "instability (%)" in report.format_table(results).splitlines()[0]
    # Not an accuracy: it has its own figure, not a curve on the accuracy figure.
    labels = report.accuracy_figure(results).axes[0].get_legend_handles_labels()[1]
    assert "instability" not in labels


def test_a_resumed_run_with_the_stability_branch_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    config = ExperimentConfig(**FAST, stability_batchnorm="reestimate")
    whole = imp.run(config, run_dir=tmp_path / "whole", progress=False)
    original = RunStore.save_level

    def dies(self, record, *args):
        if record["level"] == 2:
            raise KeyboardInterrupt
        original(self, record, *args)

    monkeypatch.setattr(RunStore, "save_level", dies)
    with pytest.raises(KeyboardInterrupt):
        imp.run(config, run_dir=tmp_path / "killed", progress=False)
    monkeypatch.undo()
    resumed = imp.run(config, run_dir=tmp_path / "killed", resume=True, progress=False)
    strip = lambda r: [{k: v for k, v in level.items() if not k.startswith("seconds") and k != "seeds"} for level in r.levels]  # noqa: E731
    assert strip(resumed) == strip(whole)


def test_instability_against_the_rewind_step(tmp_path):
    config = ExperimentConfig(dataset="synthetic", iterations=10, seeds=(0, 1))
    result = rewind_stability(config, [5, 0, 5], run_dir=tmp_path / "s", progress=False)
    assert result.steps == (0, 5) and len(result.instability) == 2 and len(result.errors[1]) == 30
    assert set(result.seeds) == {0, 1} and set(result.seeds[1]) == {0, 5}
    assert result.spread[0] >= 0.0
    loaded = RewindStability.load(tmp_path / "s")
    assert loaded.instability == result.instability and loaded.config == config
    # The shared training to step k is IMP's level-0 training: same seeds, same phase.
    with pytest.raises(ValueError, match=r"steps must be in \[0, 9\] \(the iterations per training\), got \[0, 10\]"):
        rewind_stability(config, [0, 10], progress=False)
    with pytest.raises(ValueError, match=r"steps must be a non-empty list of ints, got \[\]"):
        rewind_stability(config, [], progress=False)
    with pytest.raises(ValueError, match=r"rewind_stability\(\): run_dir .* already holds a run; choose another directory"):
        rewind_stability(config, [0], run_dir=tmp_path / "s", progress=False)


def test_the_command_prints_the_table_and_writes_the_figures(tmp_path, capsys):
    out = tmp_path / "stab"
    assert cli.main(["stability", "--dataset", "synthetic", "--iterations", "6", "--steps", "0", "3", "--quiet",
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split("|")[1].strip() == "rewind step k"
    assert [line.split("|")[1].strip() for line in text.splitlines()[2:4]] == ["0", "3"]
    for name in ("stability_rewind.png", "stability_paths.svg", "stability.json", "config.json"):
        assert (out / name).is_file()
    assert json.loads((out / "stability.json").read_text())["steps"] == [0, 3]
    assert cli.main(["stability", "--dataset", "synthetic", "--iterations", "6", "--steps", "9"]) == 2
    assert "steps must be in [0, 5]" in capsys.readouterr().err


def test_figures_reject_what_they_cannot_draw():
    with pytest.raises(ValueError, match=r"path_figure\(\): paths must hold at least one path"):
        path_figure({})
    records = [{"level": 0, "seed": 0, "weights_remaining": 1.0, "layers": {}, "test_accuracy": 0.5}]
    assert stability_figure(imp.Results.from_records(ExperimentConfig(), records)) is None


def test_bad_stability_settings():
    with pytest.raises(ValueError, match=r"stability_levels must be pruned levels, ints in \[1, rounds=2\], got \[3\]"):
        ExperimentConfig(rounds=2, stability_levels=(3,))
    with pytest.raises(ValueError, match=r"stability_batchnorm must be one of \['plain', 'reestimate'\], got 'none'"):
        ExperimentConfig(stability_batchnorm="none")
