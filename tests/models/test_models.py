"""Tests for lth_prune.models: shapes, exact architectures, initialization and the registry."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from lth_prune import models
from lth_prune.models import MODELS
from lth_prune.registry import Registry

CANONICAL_NAMES = ["conv2", "conv4", "conv6", "lenet300_100", "network", "resnet20", "vgg16"]
# 8x8 one-channel digits, 28x28 grey images, 32x32 colour images.
INPUT_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
MODEL_CLASSES = [
    models.Network,
    models.Conv2,
    models.Conv4,
    models.Conv6,
    models.LeNet300_100,
    models.ResNet20,
    models.VGG16,
]


def _layers(model: nn.Module, kind: type[nn.Module]) -> list[nn.Module]:
    return [module for module in model.modules() if isinstance(module, kind)]


def _conv_specs(model: nn.Module) -> list[tuple]:
    """(in_channels, out_channels, kernel_size, stride, padding) of every conv, in module order."""
    return [
        (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
        for conv in _layers(model, nn.Conv2d)
    ]


def _linear_specs(model: nn.Module) -> list[tuple[int, int]]:
    return [(linear.in_features, linear.out_features) for linear in _layers(model, nn.Linear)]


def _parameter_count(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


# --- every registered model ----------------------------------------------------------------------


@pytest.mark.parametrize("input_shape", INPUT_SHAPES, ids=lambda shape: "x".join(map(str, shape)))
@pytest.mark.parametrize("name", MODELS.names())
def test_forward_shape_and_backward_reaches_every_parameter(
    name: str, input_shape: tuple[int, int, int]
) -> None:
    torch.manual_seed(0)
    model = models.get(name, num_classes=10, input_shape=input_shape)
    logits = model(torch.randn(2, *input_shape))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    missing = [pname for pname, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS.names())
def test_num_classes_sets_the_last_linear_which_is_the_output_layer(name: str) -> None:
    model = models.get(name, num_classes=3, input_shape=(1, 8, 8))
    output_layer = _layers(model, nn.Linear)[-1]
    assert output_layer.out_features == 3
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert model.num_classes == 3
    assert model.input_shape == (1, 8, 8)


@pytest.mark.parametrize("model_class", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_model_has_no_dropout_and_a_docstring_naming_its_source(model_class: type) -> None:
    doc = model_class.__doc__
    assert doc is not None
    sources = {
        "Network": "original CIFAR-10",
        "Conv2": "Frankle & Carbin 2019",
        "Conv4": "Frankle & Carbin 2019",
        "Conv6": "Frankle & Carbin 2019",
        "LeNet300_100": "Frankle & Carbin 2019",
        "ResNet20": "He et al. 2016",
        "VGG16": "Frankle et al. 2020",
    }
    assert sources[model_class.__name__] in doc
    model = model_class(input_shape=(1, 8, 8))
    assert _layers(model, nn.Dropout) == []


def test_input_shape_accepts_a_list_a_torch_size_and_numpy_integers() -> None:
    model = models.Conv2(num_classes=np.int64(4), input_shape=[1, np.int32(8), 8])
    assert model.num_classes == 4 and type(model.num_classes) is int
    assert model.input_shape == (1, 8, 8)
    assert all(type(side) is int for side in model.input_shape)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 4)
    images = torch.randn(2, 1, 28, 28)
    assert models.LeNet300_100(input_shape=images.shape[1:])(images).shape == (2, 10)


# --- argument validation -------------------------------------------------------------------------


@pytest.mark.parametrize("model_class", MODEL_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    ("num_classes", "error", "message"),
    [
        (1, ValueError, "num_classes must be >= 2, got 1."),
        (0, ValueError, "num_classes must be >= 2, got 0."),
        (-5, ValueError, "num_classes must be >= 2, got -5."),
        (10.0, TypeError, "num_classes must be an int, got float."),
        ("10", TypeError, "num_classes must be an int, got str."),
        (True, TypeError, "num_classes must be an int, got bool."),
        (None, TypeError, "num_classes must be an int, got NoneType."),
    ],
)
def test_bad_num_classes_raises_naming_argument_and_value(
    model_class: type, num_classes: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        model_class(num_classes=num_classes)
    assert str(info.value) == f"{model_class.__name__}(): {message}"


@pytest.mark.parametrize("model_class", MODEL_CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    ("input_shape", "error", "received"),
    [
        ((3, 32), ValueError, "(3, 32)"),
        ((1, 3, 32, 32), ValueError, "(1, 3, 32, 32)"),
        ((3, 0, 32), ValueError, "(3, 0, 32)"),
        ((3, 32, -1), ValueError, "(3, 32, -1)"),
        ((3, 32.0, 32), TypeError, "(3, 32.0, 32)"),
        ((3, True, 32), TypeError, "(3, True, 32)"),
        ("3x32x32", TypeError, "str"),
        (None, TypeError, "NoneType"),
    ],
)
def test_bad_input_shape_raises_naming_argument_and_value(
    model_class: type, input_shape: object, error: type[Exception], received: str
) -> None:
    with pytest.raises(error) as info:
        model_class(input_shape=input_shape)
    assert str(info.value) == (
        f"{model_class.__name__}(): input_shape must be a (C, H, W) tuple of 3 positive ints, "
        f"got {received}."
    )


def test_positional_arguments_are_rejected() -> None:
    with pytest.raises(TypeError):
        models.Conv2(10)


# --- Network (the original CIFAR-10 CNN) ---------------------------------------------------------


def test_network_cifar_layers_match_the_design_exactly() -> None:
    model = models.Network()
    assert _conv_specs(model) == [
        (3, 64, (3, 3), (2, 2), (1, 1)),
        (64, 192, (3, 3), (1, 1), (1, 1)),
        (192, 384, (3, 3), (1, 1), (1, 1)),
        (384, 256, (3, 3), (1, 1), (1, 1)),
        (256, 256, (3, 3), (1, 1), (1, 1)),
    ]
    assert _linear_specs(model) == [(256 * 2 * 2, 4096), (4096, 4096), (4096, 10)]
    layer_types = [type(layer) for layer in [*model.features, *model.classifier]]
    conv, relu, pool, linear = nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Linear
    assert layer_types == [
        conv, relu, pool,
        conv, relu, pool,
        conv, relu,
        conv, relu,
        conv, relu, pool,
        linear, relu,
        linear, relu,
        linear,
    ]  # fmt: skip
    assert all(pool.kernel_size == 2 and pool.stride == 2 for pool in _layers(model, nn.MaxPool2d))
    conv_weights = [(3, 64), (64, 192), (192, 384), (384, 256), (256, 256)]
    expected = sum(c_in * c_out * 9 + c_out for c_in, c_out in conv_weights)
    linear_weights = [(1024, 4096), (4096, 4096), (4096, 10)]
    expected += sum(f_in * f_out + f_out for f_in, f_out in linear_weights)
    assert expected == 23_272_266
    assert _parameter_count(model) == expected


@pytest.mark.parametrize(
    ("input_shape", "flat_features"),
    # 8 -> conv/2 4 -> pool 2 -> pool 1 -> pool 1; 28 -> 14 -> 7 -> 4 (ceil) -> 2.
    [((1, 8, 8), 256), ((1, 28, 28), 256 * 2 * 2), ((3, 32, 32), 256 * 2 * 2)],
)
def test_network_first_fc_width_follows_input_shape(
    input_shape: tuple[int, int, int], flat_features: int
) -> None:
    model = models.Network(input_shape=input_shape)
    assert _linear_specs(model)[0] == (flat_features, 4096)
    assert _conv_specs(model)[0][:2] == (input_shape[0], 64)


# --- Frankle & Carbin 2019 networks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_class", "conv_channels", "pools", "linears"),
    [
        (models.Conv2, [64, 64], 1, [(64 * 16 * 16, 256), (256, 256), (256, 10)]),
        (models.Conv4, [64, 64, 128, 128], 2, [(128 * 8 * 8, 256), (256, 256), (256, 10)]),
        (
            models.Conv6,
            [64, 64, 128, 128, 256, 256],
            3,
            [(256 * 4 * 4, 256), (256, 256), (256, 10)],
        ),
        (models.LeNet300_100, [], 0, [(3 * 32 * 32, 300), (300, 100), (100, 10)]),
    ],
    ids=["Conv2", "Conv4", "Conv6", "LeNet300_100"],
)
def test_paper_net_widths_on_cifar(
    model_class: type, conv_channels: list[int], pools: int, linears: list[tuple[int, int]]
) -> None:
    model = model_class(input_shape=(3, 32, 32))
    specs = _conv_specs(model)
    assert [out_channels for _, out_channels, *_ in specs] == conv_channels
    assert [in_channels for in_channels, *_ in specs] == ([3] + conv_channels[:-1])[: len(specs)]
    assert all(spec[2:] == ((3, 3), (1, 1), (1, 1)) for spec in specs)
    assert len(_layers(model, nn.MaxPool2d)) == pools
    assert _linear_specs(model) == linears
    assert len(_layers(model, nn.ReLU)) == len(conv_channels) + 2


def test_lenet_default_input_is_mnist() -> None:
    assert _linear_specs(models.LeNet300_100()) == [(784, 300), (300, 100), (100, 10)]
    assert _parameter_count(models.LeNet300_100()) == 266_610


@pytest.mark.parametrize(
    ("model_class", "layer_path", "fan_in", "fan_out"),
    [
        (models.Conv2, "classifier.0", 64 * 16 * 16, 256),
        (models.Conv6, "features.12", 256 * 9, 256 * 9),
        (models.LeNet300_100, "classifier.0", 784, 300),
    ],
    ids=["Conv2-fc1", "Conv6-conv6", "LeNet-fc1"],
)
def test_paper_nets_use_glorot_normal_weights(
    model_class: type, layer_path: str, fan_in: int, fan_out: int
) -> None:
    torch.manual_seed(0)
    layer = models.get(model_class.__name__).get_submodule(layer_path)
    weight = layer.weight.detach()
    expected_std = math.sqrt(2.0 / (fan_in + fan_out))
    # Over >= 235K samples the sample std is within ~0.3% of the truth; 3% separates Glorot from
    # PyTorch's default uniform init (std = 1 / sqrt(3 * fan_in)) in every case here.
    assert weight.std().item() == pytest.approx(expected_std, rel=0.03)
    assert abs(weight.mean().item()) < 0.05 * expected_std
    # Normal, not uniform: the fraction beyond 2 standard deviations is ~4.6% (0% for uniform).
    tail = (weight.abs() > 2 * expected_std).float().mean().item()
    assert tail == pytest.approx(0.0455, abs=0.005)


@pytest.mark.parametrize("name", ["conv2", "conv4", "conv6", "lenet300_100"])
def test_paper_nets_have_zero_biases(name: str) -> None:
    model = models.get(name, input_shape=(1, 8, 8))
    biases = [layer.bias for layer in _layers(model, nn.Conv2d) + _layers(model, nn.Linear)]
    assert len(biases) > 0
    assert all(torch.equal(bias, torch.zeros_like(bias)) for bias in biases)


@settings(max_examples=20, deadline=None)
@given(channels=st.integers(1, 3), height=st.integers(1, 33), width=st.integers(1, 33))
def test_conv6_runs_on_any_image_size(channels: int, height: int, width: int) -> None:
    model = models.Conv6(num_classes=2, input_shape=(channels, height, width))
    pooled_height, pooled_width = height, width
    for _ in range(3):
        pooled_height, pooled_width = math.ceil(pooled_height / 2), math.ceil(pooled_width / 2)
    assert _linear_specs(model)[0] == (256 * pooled_height * pooled_width, 256)
    assert model(torch.randn(2, channels, height, width)).shape == (2, 2)


# --- ResNet-20 and VGG-16 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shortcut", "convs", "parameters"), [("conv", 19 + 2, 272_474), ("pad", 19, 269_722)]
)
def test_resnet20_structure(shortcut: str, convs: int, parameters: int) -> None:
    model = models.ResNet20(shortcut=shortcut)
    specs = _conv_specs(model)
    assert len(specs) == convs
    three_by_three = [spec for spec in specs if spec[2] == (3, 3)]
    assert len(three_by_three) == 19  # 1 stem + 3 stages x 3 blocks x 2 convs
    widths = [out_channels for _, out_channels, *_ in three_by_three]
    assert widths == [16] * 7 + [32] * 6 + [64] * 6
    assert [spec[3] for spec in three_by_three].count((2, 2)) == 2
    assert all(conv.bias is None for conv in _layers(model, nn.Conv2d))
    assert len(_layers(model, nn.BatchNorm2d)) == convs
    assert _linear_specs(model) == [(64, 10)]
    assert _parameter_count(model) == parameters


@pytest.mark.parametrize("input_shape", INPUT_SHAPES + [(3, 9, 9)], ids=str)
def test_resnet20_pad_shortcut_runs_on_even_and_odd_sides(
    input_shape: tuple[int, int, int],
) -> None:
    model = models.ResNet20(input_shape=input_shape, shortcut="pad")
    logits = model(torch.randn(2, *input_shape))
    assert logits.shape == (2, 10)


@pytest.mark.parametrize(
    ("shortcut", "error", "message"),
    [
        ("B", ValueError, "ResNet20(): shortcut must be one of 'conv', 'pad', got 'B'."),
        (1, TypeError, "ResNet20(): shortcut must be a str, got int."),
    ],
)
def test_resnet20_bad_shortcut(shortcut: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        models.ResNet20(shortcut=shortcut)
    assert str(info.value) == message


def test_vgg16_structure() -> None:
    model = models.VGG16()
    channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    specs = _conv_specs(model)
    assert [spec[:2] for spec in specs] == list(zip([3] + channels[:-1], channels))
    assert all(spec[2:] == ((3, 3), (1, 1), (1, 1)) for spec in specs)
    assert [bn.num_features for bn in _layers(model, nn.BatchNorm2d)] == channels
    assert len(_layers(model, nn.MaxPool2d)) == 4
    assert _linear_specs(model) == [(512, 10)]
    pairs = zip([3] + channels[:-1], channels)
    conv_parameters = sum(c_in * c_out * 9 + c_out for c_in, c_out in pairs)
    expected = conv_parameters + 2 * sum(channels) + 512 * 10 + 10
    assert _parameter_count(model) == expected == 14_728_266


# --- registry ------------------------------------------------------------------------------------


def test_the_registry_holds_the_built_in_models_with_titles() -> None:
    assert sorted(name for name in MODELS.names() if name in CANONICAL_NAMES) == sorted(CANONICAL_NAMES)
    assert MODELS.title("lenet300_100") == "LeNet-300-100" and MODELS.canonical("VGG-16") == "vgg16"


@pytest.mark.parametrize(
    ("alias", "model_class"),
    [
        ("network", models.Network),
        ("Conv-2", models.Conv2),
        ("CONV4", models.Conv4),
        ("conv_6", models.Conv6),
        ("LeNet-300-100", models.LeNet300_100),
        ("lenet300_100", models.LeNet300_100),
        ("resnet_20", models.ResNet20),
        ("ResNet-20", models.ResNet20),
        ("VGG-16", models.VGG16),
    ],
)
def test_get_is_case_insensitive_and_ignores_dashes_and_underscores(
    alias: str, model_class: type
) -> None:
    assert type(models.get(alias, input_shape=(1, 8, 8))) is model_class


def test_get_passes_keyword_arguments_to_the_builder() -> None:
    model = models.get("resnet20", num_classes=7, input_shape=(1, 8, 8), shortcut="pad")
    assert model.fc.out_features == 7 and model.shortcut == "pad"


def test_get_unknown_name_lists_every_valid_name() -> None:
    with pytest.raises(ValueError) as info:
        models.get("lenet5")
    message = str(info.value)
    assert message == (
        f"get(): model must be one of {MODELS.names()}, or 'torchvision:<name>' or 'timm:<name>', got 'lenet5'."
    )
    assert all(name in message for name in CANONICAL_NAMES)


@pytest.mark.parametrize("name", [None, 2, models.Conv2])
def test_get_non_str_name_raises_type_error(name: object) -> None:
    with pytest.raises(TypeError, match=r"^get\(\): name must be a str, got "):
        models.get(name)  # type: ignore[arg-type]


def test_a_registered_builder_is_built_by_name_and_duplicates_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # A private registry keeps the test's model out of the one other tests parametrize over.
    private = Registry("model", normalize=True, accepts=MODELS.accepts)
    for name in MODELS.names():
        private.register(name, MODELS.get(name))
    monkeypatch.setattr("lth_prune.models.build.MODELS", private)

    @private.register("tiny_mlp", title="Tiny MLP", help="for this test")
    def tiny_mlp(*, num_classes: int = 10) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(4, num_classes))

    assert models.get("Tiny-MLP", num_classes=5)[-1].out_features == 5
    for duplicate in ["tiny_mlp", "TINY-MLP", "Conv-2"]:
        with pytest.raises(ValueError, match="model registry: name must be new"):
            private.register(duplicate, tiny_mlp)
    with pytest.raises(TypeError, match=r"model registry: 'not_callable' must be a builder \(a function or class\), got 3"):
        private.register("not_callable", 3)


def test_public_api_surface() -> None:
    assert sorted(models.__all__) == sorted(
        [
            "MODELS",
            "get",
            "Network",
            "Conv2",
            "Conv4",
            "Conv6",
            "LeNet300_100",
            "ResNet20",
            "VGG16",
        ]
    )
    assert all(hasattr(models, name) for name in models.__all__)
