"""GraSP (Wang, Zhang & Grosse, ICLR 2020): gradient signal preservation at initialization.

GraSP keeps the weights whose removal would reduce the gradient flow ``g^T g`` least. Its score
is ``S(-w) = -w * Hg`` (``H`` the Hessian of the loss, ``g`` its gradient) and it removes the
weights of *largest* ``S``, keeping negative ones. Here the score is ``w * Hg`` (= ``-S``), so
that, like every criterion of this package, the lowest score is pruned first; the logits are
divided by a temperature (200 in the paper's code) before the loss. The network is scored in
train mode, as the authors' code does (see :func:`grasp_scores`).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lth_prune.criteria.base import CRITERIA, Criterion, Scores, preserving_state, score_key, scored_weights
from lth_prune.criteria.inputs import Batches, Mode, iter_batches, scoring_mode

__all__ = ["GraSP", "grasp_scores", "grasp_unstructured"]


@CRITERIA.register(title="GraSP", help="gradient signal preservation w * Hg, one round (Wang et al. 2020)")
class GraSP(Criterion):
    """Prune the weights of lowest ``w * Hg`` (see :func:`grasp_scores`).

    Example:
        >>> import torch.nn.utils.prune as prune
        >>> import lth_prune
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4))
        >>> batches = [(torch.randn(8, 1, 4, 4), torch.randint(0, 4, (8,)))]
        >>> prune.global_unstructured(lth_prune.prunable(net), pruning_method=GraSP,
        ...                           importance_scores=grasp_scores(net, batches), amount=0.5)
        >>> int(net[1].weight_mask.sum() + net[3].weight_mask.sum())
        80
    """

    name = "grasp"

    @classmethod
    def scores(cls, model: nn.Module, batches: Batches | None = None, **options: Any) -> Scores:
        """:func:`grasp_scores` (``temperature`` and ``mode`` may be given)."""
        return grasp_scores(model, batches, temperature=options.get("temperature", 200.0), mode=options.get("mode"))


def grasp_unstructured(module: nn.Module, name: str, amount: int | float, importance_scores: Tensor) -> nn.Module:
    """Prune ``module.<name>`` by GraSP scores among its unpruned entries (functional twin of :class:`GraSP`).

    Example:
        >>> layer = torch.nn.Linear(4, 2)
        >>> scores = grasp_scores(layer, [(torch.randn(8, 4), torch.randint(0, 2, (8,)))])
        >>> int(grasp_unstructured(layer, "weight", 3, scores[(layer, "weight")]).weight_mask.sum())
        5
    """
    GraSP.apply(module, name, amount, importance_scores=importance_scores)
    return module


def grasp_scores(
    model: nn.Module, batches: Batches | None, temperature: float = 200.0, mode: Mode | None = None
) -> Scores:
    """``w * Hg`` of every prunable weight (the negative of GraSP's ``S(-w)``).

    ``g`` is the gradient of the cross-entropy of ``logits / temperature`` summed over
    ``batches``; ``Hg`` is the gradient of ``g^T grad(loss)`` over the same batches, with ``g``
    held fixed. ``mode`` matters where the network has BatchNorm (or Dropout). By default it is
    scored in train mode, with each batch's own statistics, as Wang et al.'s code does
    (``pruner/GraSP.py`` of alecwangcq/GraSP scores a copy of the freshly built network, in
    train mode, its ``.eval()`` commented out); Synaptic-Flow's reimplementation scores it in
    eval mode unless told otherwise (``prune.py``, ``train_mode=False``), which ``mode="eval"``
    reproduces. The network's parameters, buffers and mode are left as they were.

    Args:
        model: the network (typically at initialization), pruned or not.
        batches: a list of ``(inputs, targets)`` batches, or one ``(inputs, targets)`` batch;
            they are read twice.
        temperature: the logits' divisor (the paper's code: 200).
        mode: ``"train"`` (BatchNorm normalizes by each batch's statistics, Dropout drops),
            ``"eval"`` (by its running statistics, Dropout off), or ``None``: the paper's,
            ``"train"``.

    Returns:
        ``{score_key(module): scores}``; the lowest are pruned first.

    Raises:
        TypeError: if ``batches`` is neither a list of ``(inputs, targets)`` batches nor one.
        ValueError: if ``batches`` is ``None`` or empty, a batch has more or fewer targets than
            inputs, ``temperature`` is not positive, or ``mode`` is not ``"train"``,
            ``"eval"`` or ``None``.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
        >>> scores = grasp_scores(net, (torch.randn(8, 4), torch.randint(0, 2, (8,))))
        >>> scores[(net[0], "weight")].shape
        torch.Size([3, 4])
    """
    weights = scored_weights(model)
    train = scoring_mode(mode, "train", "grasp_scores()")
    if not temperature > 0:
        raise ValueError(f"grasp_scores(): temperature must be > 0, got {temperature}.")
    batches = list(iter_batches(batches, "grasp_scores()"))  # read twice below

    def score() -> Scores:
        parameters = [weight for _, _, weight in weights]
        device = parameters[0].device

        def loss_of(inputs: Tensor, targets: Tensor) -> Tensor:
            return F.cross_entropy(model(inputs.to(device)) / temperature, targets.to(device))

        gradient = [torch.zeros_like(weight) for weight in parameters]
        for inputs, targets in batches:
            for total, part in zip(gradient, torch.autograd.grad(loss_of(inputs, targets), parameters)):
                total.add_(part)
        hessian_gradient = [torch.zeros_like(weight) for weight in parameters]
        for inputs, targets in batches:
            parts = torch.autograd.grad(loss_of(inputs, targets), parameters, create_graph=True)
            flow = sum((fixed * part).sum() for fixed, part in zip(gradient, parts))
            # A layer on which the gradient flow does not depend (a linear output layer under a
            # linear loss term) gets no second derivative: zero.
            for total, part in zip(hessian_gradient, torch.autograd.grad(flow, parameters, allow_unused=True)):
                if part is not None:
                    total.add_(part)
        return {score_key(module): (weight * hg).detach() for (_, module, weight), hg in zip(weights, hessian_gradient)}

    return preserving_state(model, score, train=train)
