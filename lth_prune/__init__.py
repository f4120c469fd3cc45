"""lth_prune: lottery-ticket pruning for PyTorch, as a ``torch.nn.utils.prune`` plugin.

Example:
    >>> import torch.nn.utils.prune as prune
    >>> import lth_prune
    >>> model = lth_prune.models.get("lenet300_100", input_shape=(1, 8, 8))
    >>> rewinder = lth_prune.register_rewind_hooks(model)
    >>> prune.global_unstructured(lth_prune.prunable(model),
    ...                           pruning_method=lth_prune.LotteryTicket, amount=0.2)
    >>> rewinder.rewind()
    >>> round(lth_prune.sparsity(model), 4)
    0.2
"""
from __future__ import annotations

__version__ = "0.2.0"

from lth_prune import models
from lth_prune.connectivity import InterpolationPath, interpolation_path
from lth_prune.masks import (
    LayerSparsity,
    collapse_masks,
    dense_state_dict,
    get_masks,
    load_pruned_state_dict,
    set_masks,
    sparsity,
    sparsity_report,
)
from lth_prune.criteria import (
    SNIP,
    GradualMagnitudePruning,
    GraSP,
    MagnitudeAtInit,
    RandomAtInit,
    SynFlow,
    grasp_scores,
    grasp_unstructured,
    magnitude_at_init_unstructured,
    magnitude_scores,
    prune_at_init,
    random_at_init_unstructured,
    random_scores,
    snip_scores,
    snip_unstructured,
    synflow_scores,
    synflow_unstructured,
)
from lth_prune.methods import (
    LotteryTicket,
    PruningRates,
    ScorePruning,
    lottery_ticket_unstructured,
    prunable,
    prune_layerwise,
)
from lth_prune.rewind import Rewinder, register_rewind_hooks, rewind
from lth_prune.sparse import (
    MaskedTraining,
    SparseConv2d,
    SparseLinear,
    load_sparse_state_dict,
    masked_training,
    to_sparse,
)
from lth_prune.tickets import load_ticket, save_ticket

__all__ = [
    "__version__",
    # pruning methods (torch.nn.utils.prune plugins) and their functional twins
    "LotteryTicket",
    "lottery_ticket_unstructured",
    "ScorePruning",
    # pruning at initialization (lth_prune.criteria) and during training
    "SNIP",
    "snip_unstructured",
    "snip_scores",
    "GraSP",
    "grasp_unstructured",
    "grasp_scores",
    "SynFlow",
    "synflow_unstructured",
    "synflow_scores",
    "MagnitudeAtInit",
    "magnitude_at_init_unstructured",
    "magnitude_scores",
    "RandomAtInit",
    "random_at_init_unstructured",
    "random_scores",
    "prune_at_init",
    "GradualMagnitudePruning",
    # choosing what to prune, and pruning at per-layer rates
    "prunable",
    "PruningRates",
    "prune_layerwise",
    # rewinding
    "Rewinder",
    "register_rewind_hooks",
    "rewind",
    # masks and sparsity
    "LayerSparsity",
    "sparsity",
    "sparsity_report",
    "get_masks",
    "set_masks",
    "collapse_masks",
    "dense_state_dict",
    "load_pruned_state_dict",
    # training pruned models at dense cost
    "MaskedTraining",
    "masked_training",
    # sparse inference
    "to_sparse",
    "load_sparse_state_dict",
    "SparseLinear",
    "SparseConv2d",
    # linear mode connectivity
    "InterpolationPath",
    "interpolation_path",
    # tickets on disk
    "save_ticket",
    "load_ticket",
    # model zoo
    "models",
]
