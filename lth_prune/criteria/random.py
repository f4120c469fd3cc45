"""Random pruning at initialization: the baseline every criterion must beat.

Each weight gets a score drawn uniformly at random; global random pruning thus keeps the same
fraction of every layer (in expectation), layer-wise random pruning exactly.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lth_prune.criteria.base import CRITERIA, Criterion, Scores, score_key, scored_weights
from lth_prune.criteria.inputs import Batches

__all__ = ["RandomAtInit", "random_at_init_unstructured", "random_scores"]


@CRITERIA.register(title="random", help="a uniformly random mask, one round")
class RandomAtInit(Criterion):
    """Prune weights chosen at random (see :func:`random_scores`).

    Example:
        >>> from lth_prune.criteria import prune_at_init
        >>> layer = torch.nn.Linear(10, 10)
        >>> _ = prune_at_init(layer, RandomAtInit, remaining=30, seed=1)
        >>> int(layer.weight_mask.sum())
        30
    """

    name = "random"
    needs_data = False

    @classmethod
    def scores(cls, model: nn.Module, batches: Batches | None = None, **options: Any) -> Scores:
        """:func:`random_scores` (``seed`` may be given)."""
        return random_scores(model, seed=options.get("seed", 0))


def random_at_init_unstructured(module: nn.Module, name: str, amount: int | float, seed: int = 0) -> nn.Module:
    """Prune ``amount`` of ``module.<name>``'s unpruned entries at random (functional twin of :class:`RandomAtInit`).

    Example:
        >>> int(random_at_init_unstructured(torch.nn.Linear(4, 2), "weight", 3).weight_mask.sum())
        5
    """
    shape = getattr(module, name).shape
    scores = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    RandomAtInit.apply(module, name, amount, importance_scores=scores.to(getattr(module, name).device))
    return module


def random_scores(model: nn.Module, seed: int = 0) -> Scores:
    """A uniform random score for every prunable weight, drawn from ``seed``.

    Example:
        >>> layer = torch.nn.Linear(2, 2)
        >>> torch.equal(random_scores(layer, 3)[(layer, "weight")], random_scores(layer, 3)[(layer, "weight")])
        True
    """
    generator = torch.Generator().manual_seed(seed)
    return {
        score_key(module): torch.rand(weight.shape, generator=generator).to(weight.device)
        for _, module, weight in scored_weights(model)
    }
