"""Pruning criteria as ``torch.nn.utils.prune`` methods: SNIP, GraSP, SynFlow, magnitude and random at
initialization, and gradual magnitude pruning during training.

Each criterion is a :class:`~lth_prune.ScorePruning` subclass (the lowest score is pruned first,
exactly ``round(amount * remaining)`` of the still-unpruned entries, never regrowing) with its
functional twin and a score function that returns the ``importance_scores`` dict
``prune.global_unstructured`` takes::

    scores = lth_prune.snip_scores(model, batches)            # {(module, "weight"): tensor}
    prune.global_unstructured(lth_prune.prunable(model), pruning_method=lth_prune.SNIP,
                              importance_scores=scores, amount=0.9)

:func:`prune_at_init` prunes to a count in one round (SNIP, GraSP) or many, scoring again after
each (SynFlow's 100). Adding a criterion is one module here, registered with
``@CRITERIA.register(title=..., help=...)``; it is then an ``ExperimentConfig.method``.
"""
from __future__ import annotations

from lth_prune.criteria.base import CRITERIA, Criterion, Scores, prune_at_init
from lth_prune.criteria.gradual import GradualMagnitudePruning

# Importing a criterion registers it; this order is the order of the CLI's --method choices.
from lth_prune.criteria.snip import SNIP, snip_scores, snip_unstructured  # isort: skip
from lth_prune.criteria.grasp import GraSP, grasp_scores, grasp_unstructured  # isort: skip
from lth_prune.criteria.synflow import SynFlow, synflow_scores, synflow_unstructured  # isort: skip
from lth_prune.criteria.magnitude import MagnitudeAtInit, magnitude_at_init_unstructured, magnitude_scores  # isort: skip
from lth_prune.criteria.random import RandomAtInit, random_at_init_unstructured, random_scores  # isort: skip

__all__ = [
    # the criteria, their functional twins and score functions
    "SNIP", "snip_unstructured", "snip_scores",
    "GraSP", "grasp_unstructured", "grasp_scores",
    "SynFlow", "synflow_unstructured", "synflow_scores",
    "MagnitudeAtInit", "magnitude_at_init_unstructured", "magnitude_scores",
    "RandomAtInit", "random_at_init_unstructured", "random_scores",
    # pruning during training
    "GradualMagnitudePruning",
    # pruning by a criterion, and the registry
    "prune_at_init",
    "Criterion",
    "Scores",
    "CRITERIA",
]
