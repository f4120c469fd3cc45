"""Magnitude at initialization: keep the weights of largest ``|w|`` before any training.

The baseline of Frankle et al. (ICLR 2021): magnitude pruning, but applied to the initial
weights (IMP prunes by magnitude after training).
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lth_prune.criteria.base import CRITERIA, Criterion, Scores, score_key, scored_weights
from lth_prune.criteria.inputs import Batches

__all__ = ["MagnitudeAtInit", "magnitude_at_init_unstructured", "magnitude_scores"]


@CRITERIA.register(title="magnitude at init", help="the smallest initial weights, one round")
class MagnitudeAtInit(Criterion):
    """Prune the weights of smallest ``|w|`` (see :func:`magnitude_scores`).

    Example:
        >>> import torch
        >>> from lth_prune.criteria import prune_at_init
        >>> layer = torch.nn.Linear(10, 10)
        >>> _ = prune_at_init(layer, MagnitudeAtInit, remaining=30)
        >>> bool(layer.weight_orig[layer.weight_mask == 0].abs().max() <= layer.weight_orig[layer.weight_mask == 1].abs().min())
        True
    """

    name = "magnitude-init"
    needs_data = False

    def rank(self, scores: Tensor) -> Tensor:
        """Magnitudes, as scores made from the weights themselves are signed."""
        return scores.abs()

    @classmethod
    def scores(cls, model: nn.Module, batches: Batches | None = None, **options: Any) -> Scores:
        """:func:`magnitude_scores`."""
        return magnitude_scores(model)


def magnitude_at_init_unstructured(
    module: nn.Module, name: str, amount: int | float, importance_scores: Tensor | None = None
) -> nn.Module:
    """Prune ``module.<name>`` by magnitude among its unpruned entries (functional twin of :class:`MagnitudeAtInit`).

    Example:
        >>> import torch
        >>> layer = magnitude_at_init_unstructured(torch.nn.Linear(4, 2), "weight", 3)
        >>> int(layer.weight_mask.sum())
        5
    """
    if importance_scores is None:
        importance_scores = getattr(module, name).detach().abs()
    MagnitudeAtInit.apply(module, name, amount, importance_scores=importance_scores)
    return module


def magnitude_scores(model: nn.Module) -> Scores:
    """``|w|`` of every prunable weight.

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(2, 1)
        >>> bool((magnitude_scores(layer)[(layer, "weight")] >= 0).all())
        True
    """
    return {score_key(module): weight.detach().abs() for _, module, weight in scored_weights(model)}
