"""Models of other libraries in the experiment: torchvision's and timm's, by name or as modules."""
from __future__ import annotations

import json

import pytest
from torchvision.models import VisionTransformer

from lth_prune import cli, imp, models, prunable
from lth_prune.data import make_synthetic
from lth_prune.imp import ExperimentConfig

FAST = dict(dataset="synthetic", rounds=2, iterations=2, batch_size=16, controls=(), pruning="global")


@pytest.fixture(scope="module")
def colour():
    return make_synthetic(96, num_classes=3, input_shape=(3, 32, 32))


def test_a_torchvision_resnet_by_name(colour):
    results = imp.run(ExperimentConfig(**FAST, model="torchvision:resnet18"), data=colour, progress=False)
    assert [round(level["weights_remaining"], 3) for level in results.levels] == [1.0, 0.8, 0.64]
    assert "fc" in results.levels[2]["layers"] and "conv1" in results.levels[2]["layers"]
    assert ExperimentConfig(model="torchvision:resnet18").run_name().startswith("torchvision-resnet18-digits-")


def test_a_small_torchvision_vit(colour):
    def vit():
        return VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                                 num_classes=3)

    results = imp.run(ExperimentConfig(**FAST), model=vit, data=colour, progress=False)
    layers = results.levels[2]["layers"]
    assert layers["encoder.layers.encoder_layer_0.self_attention.out_proj"] < 1.0
    assert layers["encoder.layers.encoder_layer_0.self_attention"] < 1.0  # its in_proj_weight
    assert layers["encoder.layers.encoder_layer_1.mlp.0"] < 1.0 and layers["heads.head"] < 1.0


@pytest.mark.extra("timm")
def test_a_small_timm_vit(colour):
    kwargs = dict(img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2)
    config = ExperimentConfig(**FAST, model="timm:vit_tiny_patch16_224", model_kwargs=kwargs)
    results = imp.run(config, data=colour, progress=False)
    assert results.levels[2]["layers"]["blocks.0.attn.qkv"] < 1.0
    built = models.get("timm:vit_tiny_patch16_224", num_classes=3, input_shape=(3, 32, 32), **kwargs)
    assert built.head.out_features == 3 and len(prunable(built)) == len(results.levels[0]["layers"])


@pytest.mark.extra("timm")
def test_a_model_that_asserts_its_input_size_is_refused_with_the_hint(tmp_path, monkeypatch):
    # timm checks the image size with an assert, not a RuntimeError: still a clear error, no traceback.
    monkeypatch.setattr("lth_prune.imp.phases.train", lambda *a, **k: pytest.fail("nothing may be trained"))
    small = make_synthetic(64, num_classes=3, input_shape=(3, 16, 16))
    kwargs = dict(img_size=32, patch_size=8, depth=1, embed_dim=16, num_heads=2)
    config = ExperimentConfig(**FAST, model="timm:vit_tiny_patch16_224", model_kwargs=kwargs)
    with pytest.raises(ValueError, match=r"got AssertionError from its forward pass: Input height \(16\) doesn't match "
                                         r"model \(32\); .* pass it in model_kwargs \(--model-kwargs\), e\.g\. img_size"):
        imp.run(config, data=small, run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_models_that_do_not_fit_the_data_are_refused_before_work(tmp_path, monkeypatch):
    monkeypatch.setattr("lth_prune.imp.phases.train", lambda *a, **k: pytest.fail("nothing may be trained"))
    grey = make_synthetic(64, num_classes=3, input_shape=(1, 32, 32))
    with pytest.raises(ValueError, match=r"the model must take the data's inputs of shape \(1, 32, 32\)"):
        imp.run(ExperimentConfig(**FAST, model="torchvision:resnet18"), data=grey, run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    with pytest.raises(ValueError, match=r"model: torchvision has no model 'resnet9000'; torchvision.models.list_models\(\) lists them"):
        ExperimentConfig(model="torchvision:resnet9000")
    with pytest.raises(ValueError, match=r"model: 'keras:resnet18' must be '<source>:<model>' with a source of \['torchvision', 'timm'\]"):
        ExperimentConfig(model="keras:resnet18")
    with pytest.raises(TypeError, match=r"model_kwargs must be a dict of keyword arguments or None, got 3"):
        ExperimentConfig(model_kwargs=3)


def test_the_cli_takes_a_model_name_and_its_keyword_arguments(capsys):
    assert cli.main(["run", "--model", "torchvision:resnet18", "--model-kwargs", '{"zero_init_residual": true}',
                     "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "torchvision:resnet18" and printed["model_kwargs"] == {"zero_init_residual": True}
    assert cli.main(["run", "--model-kwargs", "[1, 2]", "--print-config"]) == 2
    assert "must be a JSON object" in capsys.readouterr().err
    assert cli.main(["run", "--model", "Conv-2", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "conv2"
