"""The benchmarks' pruned models: IMP-style pruning gives the masks IMP's rounds give."""
from __future__ import annotations

import copy

import pytest
import torch

import lth_prune
from benchmarks._variants import imp_rates, prune_imp_style


@pytest.mark.parametrize(("name", "level"), [("conv2", 0.2), ("resnet20", 0.75)])
def test_imp_style_pruning_equals_the_rounds(name, level):
    torch.manual_seed(0)
    model = lth_prune.models.get(name, input_shape=(3, 8, 8))
    rounds = copy.deepcopy(model)
    left = prune_imp_style(model, level, imp_rates(name))
    while 1 - lth_prune.sparsity(rounds) > level:
        lth_prune.prune_layerwise(rounds, imp_rates(name))
    masks, expected = lth_prune.get_masks(model), lth_prune.get_masks(rounds)
    assert masks.keys() == expected.keys()
    assert all(torch.equal(masks[key], expected[key]) for key in masks)
    assert level * 0.7 < 1 - lth_prune.sparsity(model) <= level
    # Layer-wise: no layer is emptied, and convolutions keep more than fully connected layers.
    assert min(left.values()) > 0
    if name == "conv2":
        assert left["features.0"] > 2 * left["classifier.0"]

