"""ExperimentConfig (lth_prune.imp.config): validation, presets and the pinned run names."""
from __future__ import annotations


import pytest

from lth_prune.imp import ExperimentConfig

@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"rate": 1.5}, ValueError, r"rate must be >= 0.0 and < 1.0, got 1.5"),
        ({"model": "lenet5"}, ValueError, r"model must be one of \[.*'lenet300_100'.*\], or 'torchvision:<name>' or 'timm:<name>', got 'lenet5'"),
        ({"dataset": "imagenet"}, ValueError, r"dataset must be one of \[.*'digits'.*\], got 'imagenet'"),
        ({"rewind": "step"}, ValueError, r"rewind_step must be >= 1 when rewind='step', got 0"),
        ({"rewind_step": 3}, ValueError, r"rewind_step is only used with rewind='step'"),
        ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
        ({"batch_size": "60"}, TypeError, r"batch_size must be an int, got '60'"),
        ({"controls": ("random",)}, ValueError, r"controls must hold names from .*got 'random'"),
        ({"seeds": ()}, ValueError, r"seeds must be a non-empty list of ints"),
        ({"seeds": (1, 1)}, ValueError, r"seeds must be distinct"),
        ({"optimizer": "lbfgs"}, ValueError, r"optimizer must be one of \['sgd', 'adam', 'adamw'\]"),
        ({"device": "tpu"}, ValueError, r"device must be 'auto', 'cpu'"),
        ({"one_shot": True, "rewind": "lr"}, ValueError, r"one_shot needs a rewind to weights"),
        ({"epochs": 0}, ValueError, r"epochs must be > 0.0, got 0"),
    ],
)
def test_bad_config_values(changes, error, message):
    with pytest.raises(error, match=message):
        ExperimentConfig(**changes)


def test_presets_and_run_names():
    assert ExperimentConfig.preset("lenet-digits") == ExperimentConfig()
    conv6 = ExperimentConfig.preset("conv6-cifar10")
    assert (conv6.model, conv6.lr, conv6.iterations, conv6.conv_rate, conv6.rate, conv6.output_rate) == (
        "conv6", 3e-4, 30_000, 0.15, 0.2, 0.1)
    with pytest.raises(ValueError, match=r"name must be one of \[.*'lenet-mnist'.*\], got 'lenet'"):
        ExperimentConfig.preset("lenet")
    with pytest.raises(ValueError, match=r"unknown settings \['learning_rate'\]"):
        ExperimentConfig.from_dict({"learning_rate": 0.1})
    # Pinned: a run directory's name must not change when new settings are added later.
    assert ExperimentConfig().run_name() == "lenet300_100-digits-default"
    assert ExperimentConfig(rounds=3).run_name() == ExperimentConfig(rounds=3, device="cpu").run_name()
    assert ExperimentConfig(rounds=3).run_name() == "lenet300_100-digits-" + _pinned_hash()


def _pinned_hash() -> str:
    return "aa5c288789"


