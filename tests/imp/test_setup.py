"""Checks before any work (lth_prune.imp.setup): every setting, name and file is checked before the
first optimizer step and the first write, and a failure leaves nothing behind."""
from __future__ import annotations

import pytest
from torch import nn

from lth_prune import imp
from lth_prune.data import make_synthetic
from lth_prune.imp import ExperimentConfig

FAST = dict(dataset="synthetic", iterations=4, rounds=1, controls=())


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("nothing may be trained")

    monkeypatch.setattr("lth_prune.imp.phases.train", refuse)


@pytest.mark.parametrize(
    ("changes", "model", "message"),
    [
        (dict(exclude=("fc9",)), None,
         r"run\(\): exclude names a module that is not in the model, got 'fc9'; prunable layers are "
         r"\['classifier.0', 'classifier.2', 'classifier.4'\]"),
        (dict(exclude=("classifier",)), None,
         r"the model must have a convolution or linear layer left to prune, got none \(its prunable layers: "
         r"\['classifier.0', 'classifier.2', 'classifier.4'\]; exclude: \['classifier'\]\)"),
        (dict(rewind="step", rewind_step=100, iterations=None, epochs=1.0), None,
         r"rewind_step must be smaller than the iterations per round \(3\), got 100"),
        (dict(warmup=30, iterations=None, epochs=2.0), None, r"warmup must be shorter than the iterations per round \(6\), got 30"),
        ({}, lambda: nn.Sequential(nn.Flatten(), nn.Linear(10, 4)),
         r"the model must take the data's inputs of shape \(1, 8, 8\) \(synthetic\), got RuntimeError from its forward pass: mat1 and mat2 shapes cannot be multiplied"),
        ({}, lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 3)),
         r"the model must output \(N, 4\) logits for synthetic's 4 classes, got shape \(2, 3\)"),
        ({}, lambda: nn.Sequential(nn.Flatten(), nn.ReLU()),
         r"the model must have a convolution or linear layer left to prune, got none \(its prunable layers: \[\]"),
    ],
)
def test_a_bad_setting_is_an_error_before_any_work_and_leaves_nothing(changes, model, message, tmp_path, no_training):
    config = ExperimentConfig(**{**FAST, **changes})
    with pytest.raises(ValueError, match=message):
        imp.run(config, run_dir=tmp_path / "run", model=model, data=make_synthetic(200, input_shape=(1, 8, 8)),
                progress=False)
    assert not (tmp_path / "run").exists()


def test_resume_after_a_failed_start_is_possible(tmp_path):
    """A start that fails a check leaves no directory, so the corrected run starts cleanly."""
    with pytest.raises(ValueError, match="exclude names a module"):
        imp.run(ExperimentConfig(**{**FAST, "exclude": ("fc9",)}), run_dir=tmp_path / "run", progress=False)
    results = imp.run(ExperimentConfig(**{**FAST, "exclude": ("classifier.4",)}), run_dir=tmp_path / "run", progress=False)
    assert results.levels[1]["layers"]["classifier.4"] == 1.0


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"rate": float("nan")}, ValueError, r"rate must be a finite number, got nan"),
        ({"lr": float("inf")}, ValueError, r"lr must be a finite number, got inf"),
        ({"epochs": float("inf")}, ValueError, r"epochs must be a finite number, got inf"),
        ({"data_dir": 5}, TypeError, r"data_dir must be a path \(str\) or None, got 5"),
        ({"exclude": ("",)}, ValueError, r"exclude must hold layer names \(dotted module names, not empty\), got ''"),
        ({"iterations": 10, "warmup": 10}, ValueError, r"warmup must be shorter than the iterations per round \(10\), got 10"),
        ({"controls": ("random_reinit", "random_reinit")}, ValueError, r"controls must be distinct"),
    ],
)
def test_settings_that_can_never_work_are_refused_by_the_config(changes, error, message):
    with pytest.raises(error, match=r"ExperimentConfig: " + message):
        ExperimentConfig(**changes)


def test_a_missing_data_set_is_reported_before_the_directory_exists(tmp_path):
    config = ExperimentConfig(dataset="mnist", data_dir=str(tmp_path / "empty"), rounds=1, iterations=2)
    with pytest.raises(FileNotFoundError, match="'mnist' was not found"):
        imp.run(config, run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_path_data_dir_is_stored_as_text(tmp_path):
    assert ExperimentConfig(data_dir=tmp_path).data_dir == str(tmp_path)
