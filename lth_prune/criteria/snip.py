"""SNIP (Lee, Ajanthan & Torr, ICLR 2019): connection sensitivity at initialization.

A weight's score is ``|g * w|``, the gradient of the loss on a few training batches times the
weight: the first-order change of the loss if the connection were removed. The weights of
lowest score are pruned, in one round.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lth_prune.criteria.base import Batches, Criterion, Scores, score_key, preserving_state, register_criterion, scored_weights

__all__ = ["SNIP", "snip_scores", "snip_unstructured"]


@register_criterion
class SNIP(Criterion):
    """Prune the weights of lowest connection sensitivity ``|g * w|`` (see :func:`snip_scores`).

    Example:
        >>> import torch.nn.utils.prune as prune
        >>> import lth_prune
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
        >>> batches = [(torch.randn(8, 1, 4, 4), torch.randint(0, 4, (8,)))]
        >>> prune.global_unstructured(lth_prune.prunable(net), pruning_method=SNIP,
        ...                           importance_scores=snip_scores(net, batches), amount=0.75)
        >>> int(net[1].weight_mask.sum())
        16
    """

    name = "snip"

    @classmethod
    def scores(cls, model: nn.Module, batches: Batches | None = None, **options: Any) -> Scores:
        """:func:`snip_scores`."""
        return snip_scores(model, batches)


def snip_unstructured(module: nn.Module, name: str, amount: int | float, importance_scores: Tensor) -> nn.Module:
    """Prune ``module.<name>`` by SNIP scores among its unpruned entries (functional twin of :class:`SNIP`).

    Example:
        >>> layer = torch.nn.Linear(4, 2)
        >>> scores = snip_scores(layer, [(torch.randn(8, 4), torch.randint(0, 2, (8,)))])
        >>> int(snip_unstructured(layer, "weight", 3, scores[(layer, "weight")]).weight_mask.sum())
        5
    """
    SNIP.apply(module, name, amount, importance_scores=importance_scores)
    return module


def snip_scores(model: nn.Module, batches: Batches | None) -> Scores:
    """``|g * w|`` of every prunable weight, the gradient summed over ``batches`` (cross-entropy).

    The network's parameters, buffers (BatchNorm statistics) and mode are left as they were.

    Args:
        model: the network (typically at initialization), pruned or not.
        batches: ``(inputs, targets)`` batches, e.g. one or a few training batches.

    Returns:
        ``{score_key(module): scores}``, scores of the weight's shape, non-negative.

    Raises:
        ValueError: if ``batches`` is ``None`` or yields nothing.
    """
    weights = scored_weights(model)
    if batches is None:
        raise ValueError("snip_scores(): batches must be training batches (inputs, targets), got None.")

    def score() -> Scores:
        model.train()
        parameters = [weight for _, _, weight in weights]
        gradients = [torch.zeros_like(weight) for weight in parameters]
        seen = 0
        for inputs, targets in batches:
            inputs, targets = inputs.to(parameters[0].device), targets.to(parameters[0].device)
            loss = F.cross_entropy(model(inputs), targets)
            for total, gradient in zip(gradients, torch.autograd.grad(loss, parameters)):
                total.add_(gradient)
            seen += 1
        if not seen:
            raise ValueError("snip_scores(): batches must yield at least one batch, got none.")
        return {score_key(module): (gradient * weight).detach().abs() for (_, module, weight), gradient in zip(weights, gradients)}

    return preserving_state(model, score)
