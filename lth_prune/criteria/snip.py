"""SNIP (Lee, Ajanthan & Torr, ICLR 2019): connection sensitivity at initialization.

A weight's score is ``|g * w|``, the gradient of the loss on a few training batches times the
weight: the first-order change of the loss if the connection were removed. The weights of
lowest score are pruned, in one round. The network is scored in eval mode, as the authors'
code does (see :func:`snip_scores`).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lth_prune.criteria.base import CRITERIA, Criterion, Scores, preserving_state, score_key, scored_weights
from lth_prune.criteria.inputs import Batches, Mode, iter_batches, scoring_mode

__all__ = ["SNIP", "snip_scores", "snip_unstructured"]


@CRITERIA.register(title="SNIP", help="connection sensitivity |g * w| on a few batches, one round (Lee et al. 2019)")
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
        """:func:`snip_scores` (``mode`` may be given)."""
        return snip_scores(model, batches, mode=options.get("mode"))


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


def snip_scores(model: nn.Module, batches: Batches | None, mode: Mode | None = None) -> Scores:
    """``|g * w|`` of every prunable weight, the gradient summed over ``batches`` (cross-entropy).

    ``mode`` matters where the network has BatchNorm (or Dropout). By default it is scored in
    eval mode, as Lee et al.'s code does (``snip/prune.py`` of namhoonlee/snip-public runs
    the pruning step with ``is_train: False``, and its networks' batch normalization then uses
    its moving statistics, at initialization mean 0 and variance 1). Synaptic-Flow's
    reimplementation (``prune.py``, ``train_mode=False``) scores SNIP in eval mode too. The
    network's parameters, buffers (BatchNorm statistics) and mode are left as they were.

    Args:
        model: the network (typically at initialization), pruned or not.
        batches: a list of ``(inputs, targets)`` batches (e.g. one or a few training batches),
            or one ``(inputs, targets)`` batch.
        mode: ``"eval"`` (BatchNorm normalizes by its running statistics, Dropout is off),
            ``"train"`` (by each batch's own statistics, Dropout drops), or ``None``: the
            paper's, ``"eval"``.

    Returns:
        ``{score_key(module): scores}``, scores of the weight's shape, non-negative.

    Raises:
        TypeError: if ``batches`` is neither a list of ``(inputs, targets)`` batches nor one.
        ValueError: if ``batches`` is ``None`` or yields nothing, a batch has more or fewer
            targets than inputs, or ``mode`` is not ``"train"``, ``"eval"`` or ``None``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
        >>> batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
        >>> by_paper, in_train = snip_scores(net, batch), snip_scores(net, batch, mode="train")
        >>> torch.equal(by_paper[(net[0], "weight")], in_train[(net[0], "weight")]), net.training
        (False, True)
    """
    weights = scored_weights(model)
    train = scoring_mode(mode, "eval", "snip_scores()")
    batches = iter_batches(batches, "snip_scores()")

    def score() -> Scores:
        parameters = [weight for _, _, weight in weights]
        gradients = [torch.zeros_like(weight) for weight in parameters]
        for inputs, targets in batches:
            inputs, targets = inputs.to(parameters[0].device), targets.to(parameters[0].device)
            loss = F.cross_entropy(model(inputs), targets)
            for total, gradient in zip(gradients, torch.autograd.grad(loss, parameters)):
                total.add_(gradient)
        return {score_key(module): (gradient * weight).detach().abs() for (_, module, weight), gradient in zip(weights, gradients)}

    return preserving_state(model, score, train=train)
