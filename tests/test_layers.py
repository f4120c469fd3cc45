"""The public layer API (lth_prune.layers): which layers are prunable, their tensors' names, where
their values live, the output layer."""
from __future__ import annotations

import pytest
import torch.nn.utils.prune as prune
from torch import nn

from lth_prune.layers import (
    PRUNABLE_TENSORS,
    is_prunable,
    output_layer,
    prunable_layers,
    prunable_tensor,
    stored_tensor,
    tensor_key,
)


def _model() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 4), nn.Linear(4, 2))


def test_prunable_layers_with_exclusions_by_name_module_and_type():
    model = _model()
    assert [name for name, _ in prunable_layers(model)] == ["0", "2", "3"]
    assert [name for name, _ in prunable_layers(model, "2")] == ["0", "3"]
    assert [name for name, _ in prunable_layers(model, [model[3]])] == ["0", "2"]
    assert [name for name, _ in prunable_layers(model, [nn.Linear])] == ["0"]
    assert is_prunable(model[0]) and not is_prunable(model[1])
    assert output_layer(model) is model[3] and output_layer(nn.Conv2d(1, 1, 1)) is None


def test_the_pruned_tensor_its_key_and_the_parameter_behind_it():
    attention = nn.MultiheadAttention(8, 2)
    model = nn.Sequential(nn.Linear(8, 8))
    model.add_module("attn", attention)
    assert [prunable_tensor(module) for _, module in prunable_layers(model)] == ["weight", "in_proj_weight", "weight"]
    assert [tensor_key(name, module) for name, module in prunable_layers(model)] == [
        "0.weight", "attn.in_proj_weight", "attn.out_proj.weight"]
    assert set(PRUNABLE_TENSORS) == {"weight", "in_proj_weight"}
    layer = model[0]
    assert stored_tensor(layer) is layer.weight
    prune.l1_unstructured(layer, "weight", amount=0.5)
    assert stored_tensor(layer) is layer.weight_orig and prunable_tensor(layer) == "weight"  # the parameter training updates
    assert tensor_key("", layer) == "weight"


def test_bad_input_names_the_caller_and_what_was_given():
    with pytest.raises(TypeError, match=r"^f\(\): model must be an nn.Module, got str\.$"):
        prunable_layers("model", (), "f()")
    with pytest.raises(ValueError, match=r"^prunable_layers\(\): exclude names a module that is not in the model, got '9'"):
        prunable_layers(_model(), ["9"])
    with pytest.raises(TypeError, match=r"exclude must hold module names, modules or module types, got 3"):
        prunable_layers(_model(), [3])
    with pytest.raises(ValueError, match=r"tensor_key\(\): relu \(ReLU\) has no prunable weight"):
        tensor_key("relu", nn.ReLU())
    with pytest.raises(ValueError, match=r"stored_tensor\(\): ReLU has no prunable weight"):
        stored_tensor(nn.ReLU())
