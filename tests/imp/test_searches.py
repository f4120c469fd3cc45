"""Methods of finding a level's ticket (lth_prune.imp.searches): IMP, the criteria at
initialization, gradual magnitude pruning; and the inverted-scores sanity check."""
from __future__ import annotations


import pytest
import torch

from lth_prune import imp, report
from lth_prune.imp import ExperimentConfig
from lth_prune.imp.branches.inverted_scores import inverted_masks
from lth_prune.imp.searches import METHODS
from tests.runs import die_at_level, numbers

FAST = dict(dataset="synthetic", rounds=2, iterations=6, controls=())
LAYERS = [64 * 300, 300 * 100, 100 * 4]  # LeNet-300-100 on the 8x8 synthetic data, 4 classes


def _remaining(counts: list[int], rates: list[float], rounds: int) -> list[int]:
    for _ in range(rounds):
        counts = [c - round(r * c) for c, r in zip(counts, rates)]
    return counts


# Every method that finds its own tickets (a transfer trains another run's: tests/imp/test_transfer.py).
@pytest.mark.parametrize("method", [m for m in imp.METHODS if m not in ("imp", "transfer")])
def test_every_method_reaches_imps_sparsity_and_shares_its_dense_level(method):
    results = imp.run(ExperimentConfig(**FAST, method=method), progress=False)
    reference = imp.run(ExperimentConfig(**FAST, pruning=results.config.pruning_mode), progress=False)
    assert [level["weights_remaining"] for level in results.levels] == [level["weights_remaining"] for level in reference.levels]
    assert results.levels[0]["test_accuracy"] == reference.levels[0]["test_accuracy"]  # the same dense training
    assert results.levels[1]["no_retrain_accuracy"] is None  # nothing trained was pruned


def test_criteria_prune_globally_by_default_and_layerwise_when_asked():
    assert ExperimentConfig(method="snip").pruning_mode == "global" and ExperimentConfig().pruning_mode == "layerwise"
    assert ExperimentConfig(method="gmp").pruning_mode == "layerwise"
    # Unset, it follows the method: a grid or replace() over methods keeps each method's default.
    assert ExperimentConfig().replace(method="snip").pruning_mode == "global"
    layered = imp.run(ExperimentConfig(**FAST, method="synflow", pruning="layerwise"), progress=False)
    expected = _remaining(LAYERS, [0.2, 0.2, 0.1], 2)
    assert list(layered.levels[2]["layers"].values()) == [c / t for c, t in zip(expected, LAYERS)]
    assert ExperimentConfig(method="snip").to_dict()["pruning"] is None


def test_sanity_checks_are_recorded_next_to_the_method(tmp_path):
    config = ExperimentConfig(**{**FAST, "controls": ("random_reinit", "random_pruning", "inverted_scores")}, method="snip")
    results = imp.run(config, run_dir=tmp_path, progress=False)
    for level in results.levels[1:]:
        for key in ("random_reinit_accuracy", "random_pruning_accuracy", "inverted_scores_accuracy"):
            assert 0.0 <= level[key] <= 1.0
    header = report.format_table(results).splitlines()[0]
    assert "random reinit (%)" in header and "random pruning (%)" in header and "inverted scores (%)" in header
    assert "inverted_scores_accuracy" in (tmp_path / "results.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("method", ["snip", "synflow", "gmp"])
def test_a_killed_run_of_another_method_resumes_to_the_same_result(method, tmp_path, monkeypatch):
    controls = ("random_pruning",) if method == "gmp" else ("random_pruning", "inverted_scores")
    config = ExperimentConfig(**{**FAST, "controls": controls}, method=method)
    whole = imp.run(config, run_dir=tmp_path / "whole", progress=False)
    die_at_level(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        imp.run(config, run_dir=tmp_path / "killed", progress=False)
    monkeypatch.undo()
    resumed = imp.run(config, run_dir=tmp_path / "killed", resume=True, progress=False)
    assert numbers(resumed) == numbers(whole)


def test_the_inverted_branch_keeps_the_lowest_scored_weights_of_each_layer():
    masks = {"a": torch.tensor([[True, False, True], [False, True, False]]), "b": torch.tensor([True, True, False, False])}
    scores = {"a": torch.tensor([[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]]), "b": torch.tensor([0.0, 0.0, 1.0, -1.0])}
    inverted = inverted_masks(masks, scores)
    assert inverted["a"].tolist() == [[False, False, False], [True, True, True]]
    assert inverted["b"].tolist() == [True, False, False, True]  # -1 and the first 0 (ties by position)
    assert {k: int(v.sum()) for k, v in inverted.items()} == {k: int(v.sum()) for k, v in masks.items()}


def test_settings_a_method_cannot_run_are_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr("lth_prune.imp.phases.train", lambda *a, **k: pytest.fail("nothing may be trained"))
    with pytest.raises(ValueError, match=r"controls \['inverted_scores'\] need the scores a level's mask was chosen by, and method 'gmp' has none"):
        imp.run(ExperimentConfig(**{**FAST, "controls": ("inverted_scores",)}, method="gmp"), run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match=r"rewind, rewind_step, one_shot describe method 'imp'; method 'snip' does not use them, "
                                         r"so it needs rewind='init', rewind_step=0, got rewind='step', rewind_step=3"):
        ExperimentConfig(method="snip", rewind="step", rewind_step=3)
    with pytest.raises(ValueError, match=r"ExperimentConfig: method must be one of \['gmp', 'imp', 'transfer', 'snip', 'grasp', 'synflow', 'magnitude-init', 'random'.*\], got 'obd'"):
        ExperimentConfig(method="obd")
    with pytest.raises(ValueError, match=r"^method must be one of"):
        METHODS.get("obd")


def test_the_run_name_of_imp_is_unchanged_and_other_methods_get_their_own():
    assert ExperimentConfig(rounds=3).run_name() == "lenet300_100-digits-aa5c288789"
    assert ExperimentConfig(method="snip").run_name() != ExperimentConfig().run_name()
