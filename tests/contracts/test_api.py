"""The public API surface: a change here is a deliberate, documented decision."""
from __future__ import annotations

import torch.nn.utils.prune as prune

import lth_prune
from lth_prune import imp


def test_top_level_names():
    assert sorted(lth_prune.__all__) == sorted([
        "__version__",
        "LotteryTicket", "lottery_ticket_unstructured", "ScorePruning",
        "SNIP", "snip_unstructured", "snip_scores", "GraSP", "grasp_unstructured", "grasp_scores",
        "SynFlow", "synflow_unstructured", "synflow_scores", "MagnitudeAtInit", "magnitude_at_init_unstructured",
        "magnitude_scores", "RandomAtInit", "random_at_init_unstructured", "random_scores", "prune_at_init",
        "GradualMagnitudePruning",
        "prunable", "PruningRates", "prune_layerwise",
        "Rewinder", "register_rewind_hooks", "rewind",
        "LayerSparsity", "sparsity", "sparsity_report", "get_masks", "set_masks", "collapse_masks",
        "dense_state_dict", "load_pruned_state_dict",
        "save_ticket", "load_ticket",
        "InterpolationPath", "interpolation_path",
        "MaskedTraining", "masked_training",
        "to_sparse", "load_sparse_state_dict", "SparseLinear", "SparseConv2d",
        "models",
    ])
    for name in lth_prune.__all__:
        assert hasattr(lth_prune, name), name


def test_lottery_ticket_is_a_torch_pruning_method():
    assert issubclass(lth_prune.LotteryTicket, prune.BasePruningMethod)
    assert lth_prune.LotteryTicket.PRUNING_TYPE == "unstructured"


def test_experiment_names():
    assert sorted(imp.__all__) == sorted(
        ["ExperimentConfig", "PRESETS", "METHODS", "REWIND_POLICIES", "BRANCHES", "run", "Results", "METRICS"]
    )
    assert imp.REWIND_POLICIES.names()[:4] == ["init", "step", "lr", "finetune"]
    assert imp.BRANCHES.names()[:4] == ["random_reinit", "random_pruning", "inverted_scores", "stability"]
    assert imp.METHODS.names()[:8] == ["gmp", "imp", "transfer", "snip", "grasp", "synflow", "magnitude-init", "random"]


def test_public_callables_are_documented():
    for module in (lth_prune, imp, lth_prune.models):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj):
                assert obj.__doc__ and obj.__doc__.strip(), f"{module.__name__}.{name} has no docstring"
