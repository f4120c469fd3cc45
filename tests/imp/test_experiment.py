"""The IMP experiment (lth_prune.imp.experiment): levels, rewind modes, branches, reproducibility
and resume, and the pinned numbers of a small run."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lth_prune import imp, report
from lth_prune.data import make_synthetic
from lth_prune.imp import ExperimentConfig
from lth_prune.imp.store import RunStore
from tests.runs import die_at_level, numbers

FAST = dict(dataset="synthetic", epochs=2.0, batch_size=32, rounds=2, controls=())


def _expected_layer_counts(totals: list[int], rates: list[float], rounds: int) -> list[int]:
    counts = list(totals)
    for _ in range(rounds):
        counts = [c - round(r * c) for c, r in zip(counts, rates)]
    return counts


def test_levels_rates_and_record_keys(device):
    config = ExperimentConfig(**{**FAST, "rounds": 3, "controls": ("random_reinit", "random_pruning"), "device": str(device)})
    results = imp.run(config, progress=False)
    assert [level["level"] for level in results.levels] == [0, 1, 2, 3]
    # LeNet-300-100 on 8x8: fc 64x300, 300x100 at 20 %, output 100x4 at 10 %
    totals, rates = [64 * 300, 300 * 100, 100 * 4], [0.2, 0.2, 0.1]
    for level in results.levels:
        counts = _expected_layer_counts(totals, rates, level["level"])
        assert level["weights_remaining"] == sum(counts) / sum(totals)
        assert list(level["layers"].values()) == [c / t for c, t in zip(counts, totals)]
        assert 0.0 <= level["test_accuracy"] <= 1.0
        assert isinstance(level["early_stop_iteration"], float)
    first, later = results.levels[0], results.levels[1]
    assert first["no_retrain_accuracy"] is None and first["random_reinit_accuracy"] is None
    for key in ("no_retrain_accuracy", "random_reinit_accuracy", "random_pruning_accuracy"):
        assert 0.0 <= later[key] <= 1.0


def test_global_pruning_and_one_shot_reach_the_same_sparsity():
    iterative = imp.run(ExperimentConfig(**{**FAST, "pruning": "global", "rate": 0.3}), progress=False)
    one_shot = imp.run(ExperimentConfig(**{**FAST, "pruning": "global", "rate": 0.3, "one_shot": True}), progress=False)
    total = 64 * 300 + 300 * 100 + 100 * 4
    for a, b in zip(iterative.levels, one_shot.levels):
        expected = _expected_layer_counts([total], [0.3], a["level"])[0] / total
        assert a["weights_remaining"] == b["weights_remaining"] == expected
    # the same dense training, so level 0 is identical
    assert iterative.levels[0]["test_accuracy"] == one_shot.levels[0]["test_accuracy"]


def test_same_seed_same_results_and_seeds_aggregate():
    config = ExperimentConfig(**{**FAST, "seeds": (0, 1)})
    first, second = imp.run(config, progress=False), imp.run(config, progress=False)
    assert numbers(first) == numbers(second)
    level = first.levels[1]
    accuracies = [record["test_accuracy"] for record in level["seeds"]]
    assert level["test_accuracy"] == pytest.approx(sum(accuracies) / 2)
    assert level["test_accuracy_std"] == pytest.approx(abs(accuracies[0] - accuracies[1]) / 2**0.5)


@pytest.mark.parametrize("rewind", ["init", "lr", "finetune"])
def test_rewind_modes_run(rewind):
    results = imp.run(ExperimentConfig(**{**FAST, "rounds": 1, "rewind": rewind}), progress=False)
    assert len(results.levels) == 2


def test_late_rewinding_trains_from_the_rewind_step(tmp_path):
    config = ExperimentConfig(**{**FAST, "rounds": 1, "iterations": 40, "rewind": "step", "rewind_step": 5,
                                 "eval_every": 1})
    results = imp.run(config, run_dir=tmp_path / "run", progress=False)
    ticket = torch.load(tmp_path / "run" / "level_1" / "seed_0" / "ticket.pt", weights_only=True)
    assert ticket["rewind_step"] == 5
    # the retrained ticket's early-stopping step is counted from the schedule's start
    assert 5 < results.levels[1]["early_stop_iteration"] <= 40


def test_run_directory_holds_config_results_checkpoints_and_no_figures(tmp_path):
    config = ExperimentConfig(**{**FAST, "controls": ("random_reinit",)})
    imp.run(config, run_dir=tmp_path, progress=False)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["config.json", "level_0", "level_1", "level_2", "results.csv", "results.json", "rewind_points"]
    assert sorted(path.name for path in (tmp_path / "level_1" / "seed_0").iterdir()) == [
        "record.json", "ticket.pt", "trained.pt"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"] == config.to_dict() and len(saved["levels"]) == 3
    # The experiment never draws; the report does, from the run directory.
    assert [path.name for path in report.plot_run(tmp_path)] == [
        "accuracy.png", "accuracy.svg", "early_stop.png", "early_stop.svg"]


# Every rewind mode, both branches and one-shot: a run killed after level 1 and resumed must give
# exactly the numbers of an uninterrupted run (a control that started from zeros did not).
RESUMED = {
    "init": {},
    "step": dict(rewind="step", rewind_step=5),
    "lr": dict(rewind="lr", decay="cosine"),
    "finetune": dict(rewind="finetune", decay="cosine"),
    "one_shot": dict(one_shot=True),
    "one_shot_step": dict(one_shot=True, rewind="step", rewind_step=5),
}


@pytest.mark.parametrize("variant", sorted(RESUMED))
def test_a_run_killed_after_a_level_resumes_to_the_same_result(variant, tmp_path, monkeypatch, device):
    config = ExperimentConfig(**{**FAST, "rounds": 3, "controls": tuple(imp.BRANCHES.names()[:4]), **RESUMED[variant], "device": str(device)})
    whole = imp.run(config, run_dir=tmp_path / "whole", progress=False)
    saved = die_at_level(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        imp.run(config, run_dir=tmp_path / "killed", progress=False)
    monkeypatch.undo()
    assert saved == [0, 1] and RunStore(tmp_path / "killed").finished_levels(0) == [0, 1]
    assert not (tmp_path / "killed" / ".lock").exists()  # the lock went with the run
    resumed = imp.run(config, run_dir=tmp_path / "killed", resume=True, progress=False)
    assert numbers(resumed) == numbers(whole)


def test_a_run_killed_inside_a_level_redoes_only_that_level(tmp_path, monkeypatch):
    config = ExperimentConfig(**{**FAST, "controls": ("random_pruning",)})
    whole = imp.run(config, run_dir=tmp_path / "whole", progress=False)
    trained = []
    original = RunStore._write

    def dies_before_the_record(self, path, data):
        if path.name == "record.json" and path.parent.parent.name == "level_1":  # its trained.pt is written
            raise KeyboardInterrupt("killed")
        original(self, path, data)

    monkeypatch.setattr(RunStore, "_write", dies_before_the_record)
    with pytest.raises(KeyboardInterrupt):
        imp.run(config, run_dir=tmp_path / "killed", progress=False)
    assert (tmp_path / "killed" / "level_1" / "seed_0" / "trained.pt").is_file()
    monkeypatch.undo()
    monkeypatch.setattr(imp.experiment, "train_network", _counting(imp.experiment.train_network, trained))
    resumed = imp.run(config, run_dir=tmp_path / "killed", resume=True, progress=False)
    assert trained == [1, 2]  # the tickets of levels 1 and 2; level 0 was not trained again
    assert numbers(resumed) == numbers(whole)


def _counting(function, calls):
    def counted(*args, **kwargs):
        calls.append(kwargs["level"])
        return function(*args, **kwargs)

    return counted


def test_run_directory_guards(tmp_path):
    config = ExperimentConfig(**{**FAST, "rounds": 1})
    imp.run(config, run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        imp.run(config, run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"settings differ: \['lr'\]"):
        imp.run(config.replace(lr=0.1), run_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="resume=True needs run_dir"):
        imp.run(config, resume=True)
    mistyped = tmp_path.parent / (tmp_path.name + "-typo")
    with pytest.raises(ValueError, match=r"resume=True needs a run in run_dir, got .*-typo', which holds none"):
        imp.run(config, run_dir=mistyped, resume=True, progress=False)
    assert not mistyped.exists()


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    config = ExperimentConfig(**{**FAST, "rounds": 1})
    first = imp.run(config, run_dir=tmp_path, progress=False)
    again = imp.run(config, run_dir=tmp_path, resume=True, progress=False)
    assert again.levels == json.loads(json.dumps(first.levels))


def test_own_model_and_data():
    data = make_synthetic(200, num_classes=3, input_shape=(1, 4, 4))

    def build() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))

    results = imp.run(ExperimentConfig(**FAST), model=build, data=data, progress=False)
    assert list(results.levels[1]["layers"]) == ["1", "3"]
    module_results = imp.run(ExperimentConfig(**FAST), model=build(), data=data, progress=False)
    assert len(module_results.levels) == 3
    with pytest.raises(TypeError, match="data must be a lth_prune.data.DataSplits"):
        imp.run(ExperimentConfig(**FAST), data=[1, 2])


def test_rewind_step_beyond_the_round_is_rejected_before_training():
    config = ExperimentConfig(**{**FAST, "rewind": "step", "rewind_step": 10_000})
    with pytest.raises(ValueError, match=r"rewind_step must be smaller than the iterations per round \(24\)"):
        imp.run(config, progress=False)


def test_masked_training_and_torch_hooks_find_the_same_ticket():
    fast = imp.run(ExperimentConfig(**FAST), progress=False)
    hooked = imp.run(ExperimentConfig(**{**FAST, "masked_training": False}), progress=False)
    for a, b in zip(fast.levels, hooked.levels):
        assert a["weights_remaining"] == b["weights_remaining"]
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=0.03)


# Correct predictions on the 359 digits test images per level: ticket, no retraining, random
# reinit, random pruning. Measured before the experiment side was rebuilt around run store,
# rewind policies and branches; an uninterrupted run must keep giving exactly these.
PINNED_RUN = dict(rounds=3, epochs=2.0, controls=("random_reinit", "random_pruning"), device="cpu")
PINNED_COUNTS = {
    "init": ({}, [[339, None, None, None], [338, 337, 331, 335], [336, 334, 326, 329], [339, 328, 323, 315]]),
    "step": (dict(rewind="step", rewind_step=5),
             [[339, None, None, None], [335, 337, 331, 330], [337, 330, 327, 330], [337, 329, 322, 317]]),
    "lr": (dict(rewind="lr", decay="cosine"),
           [[331, None, None, None], [337, 329, 322, 321], [342, 336, 311, 314], [341, 345, 314, 300]]),
    "finetune": (dict(rewind="finetune", decay="cosine"),
                 [[331, None, None, None], [329, 329, 322, 321], [327, 327, 314, 314], [326, 326, 312, 300]]),
    "one_shot": (dict(one_shot=True),
                 [[339, None, None, None], [338, 337, 331, 335], [334, 338, 327, 329], [339, 329, 323, 315]]),
    "global": (dict(pruning="global"),
               [[339, None, None, None], [338, 337, 329, 334], [336, 335, 327, 326], [337, 326, 322, 318]]),
}


@pytest.mark.parametrize("variant", sorted(PINNED_COUNTS))
def test_a_small_digits_run_gives_the_pinned_accuracies(variant):
    changes, expected = PINNED_COUNTS[variant]
    results = imp.run(ExperimentConfig(**{**PINNED_RUN, **changes}), progress=False)
    keys = ("test_accuracy", "no_retrain_accuracy", "random_reinit_accuracy", "random_pruning_accuracy")
    counts = [[None if level[key] is None else level[key] * 359 for key in keys] for level in results.levels]
    assert counts == [[None if c is None else pytest.approx(c, abs=1e-6) for c in row] for row in expected]
