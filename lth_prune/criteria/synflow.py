"""SynFlow (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020): iterative synaptic flow, no data.

Every parameter is replaced by its absolute value, BatchNorm runs in eval mode, and the network
is run on an all-ones input; ``R`` is the sum of its outputs. A weight's score is
``w * dR/dw`` (all non-negative): its share of the flow of "synaptic strength" from input to
output. Computed in double precision, as ``R`` grows with the product of the layers' norms.
Pruning repeats scoring and pruning over 100 rounds on an exponential schedule
(:func:`lth_prune.criteria.prune_at_init`), which is what keeps SynFlow from emptying a layer.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from lth_prune.criteria.base import CRITERIA, Criterion, Scores, score_key, scored_weights
from lth_prune.criteria.inputs import Batches, iter_batches

__all__ = ["SynFlow", "synflow_scores", "synflow_unstructured"]


@CRITERIA.register(title="SynFlow", help="synaptic flow without data, 100 rounds (Tanaka et al. 2020)")
class SynFlow(Criterion):
    """Prune the weights of lowest synaptic flow ``w * dR/dw`` (see :func:`synflow_scores`).

    Example:
        >>> from lth_prune.criteria import prune_at_init
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> _ = prune_at_init(net, SynFlow, remaining=40, input_shape=(1, 4, 4))  # 100 rounds
        >>> int(net[1].weight_mask.sum() + net[3].weight_mask.sum())
        40
    """

    name = "synflow"
    needs_data = False
    rounds = 100

    @classmethod
    def scores(cls, model: nn.Module, batches: Batches | None = None, **options: Any) -> Scores:
        """:func:`synflow_scores`; the input shape comes from ``input_shape`` or the first batch.

        ``batches`` is a list of ``(inputs, targets)`` batches or one ``(inputs, targets)`` batch
        (see :func:`~lth_prune.criteria.prune_at_init`); only the first inputs' shape is read.
        """
        shape = options.get("input_shape")
        if batches is not None:
            checked = iter_batches(batches, "SynFlow.scores()")
            if shape is None:
                shape = tuple(next(checked)[0].shape[1:])
        return synflow_scores(model, shape)


def synflow_unstructured(module: nn.Module, name: str, amount: int | float, importance_scores: Tensor) -> nn.Module:
    """Prune ``module.<name>`` by SynFlow scores among its unpruned entries (functional twin of :class:`SynFlow`).

    Example:
        >>> layer = torch.nn.Linear(4, 2)
        >>> scores = synflow_scores(layer, (4,))
        >>> int(synflow_unstructured(layer, "weight", 3, scores[(layer, "weight")]).weight_mask.sum())
        5
    """
    SynFlow.apply(module, name, amount, importance_scores=importance_scores)
    return module


def synflow_scores(model: nn.Module, input_shape: Sequence[int] | None) -> Scores:
    """``w * dR/dw`` of every prunable weight of ``|model|`` on an all-ones input.

    The model itself is not changed: the absolute, double-precision parameters are passed to it
    with :func:`torch.func.functional_call`; its mode is restored.

    Args:
        model: the network, pruned or not (masked weights count as zero).
        input_shape: one example's shape without the batch dimension, e.g. ``(1, 28, 28)``.

    Returns:
        ``{score_key(module): scores}``, non-negative. All zero where no path from the input to
        the output carries flow (a layer fully pruned, or all of its weights zero): they then
        rank nothing, and :func:`~lth_prune.criteria.prune_at_init` refuses them before it
        prunes, while :class:`SynFlow` warns when it prunes by them.

    Raises:
        ValueError: if ``input_shape`` is ``None`` or not positive ints.
    """
    if input_shape is None or not all(isinstance(side, int) and side > 0 for side in input_shape):
        raise ValueError(f"synflow_scores(): input_shape must be one example's shape of positive ints, got {input_shape!r}.")
    weights = scored_weights(model)
    names = {id(tensor): name for name, tensor in model.named_parameters()}
    training = model.training
    model.eval()
    try:
        values = {name: tensor.detach().double().abs().requires_grad_(True) for name, tensor in model.named_parameters()}
        buffers = {name: tensor.double() if tensor.is_floating_point() else tensor for name, tensor in model.named_buffers()}
        device = next(iter(values.values())).device
        ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
        flow = functional_call(model, {**values, **buffers}, (ones,)).sum()
        targets = [values[names[id(weight)]] for _, _, weight in weights]
        gradients = torch.autograd.grad(flow, targets, allow_unused=True)
    finally:
        model.train(training)
    scores: Scores = {}
    for (_, module, weight), value, gradient in zip(weights, targets, gradients):
        product = torch.zeros_like(value) if gradient is None else (value * gradient).detach()
        scores[score_key(module)] = product.to(weight.dtype)
    return scores
