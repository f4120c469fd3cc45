"""Linear mode connectivity (Frankle, Dziugaite, Roy & Carbin, ICML 2020): the error along the
straight line between two trained networks.

Two copies of a network trained from the same point with different SGD noise are *stable* when
the test error does not rise along the line between their weights. :func:`interpolation_path`
evaluates ``(1 - a) * w_A + a * w_B`` at evenly spaced ``a`` in [0, 1], endpoints included; the
instability is the largest error on the path minus the mean of the two endpoints' errors.
Masks are the model's own (two copies of one ticket share them), so every point is a subnetwork
of the same ticket.

BatchNorm: interpolated running statistics are not the statistics of the interpolated network.
``reestimate=`` recomputes them on training batches at every point; without it, they are
interpolated like the weights ("plain").
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from torch import Tensor, nn

from lth_prune.rewind import capture_state, restore_state
from lth_prune.training import evaluate

__all__ = ["InterpolationPath", "interpolation_path"]

Batches = Iterable[tuple[Tensor, Tensor]]
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# Batches BatchNorm statistics are re-estimated on at each point of a path.
REESTIMATE_BATCHES = 50


@dataclass(frozen=True)
class InterpolationPath:
    """Test error along the line from network A (``alpha = 0``) to network B (``alpha = 1``).

    Attributes:
        alphas: the interpolation coefficients, from 0 to 1.
        errors: the error (1 - accuracy, in [0, 1]) at each.
    """

    alphas: tuple[float, ...]
    errors: tuple[float, ...]

    @property
    def instability(self) -> float:
        """The largest error on the path minus the mean of the endpoints' errors (>= 0 up to noise)."""
        return max(self.errors) - (self.errors[0] + self.errors[-1]) / 2


def interpolation_path(
    model: nn.Module,
    state_a: Mapping[str, Tensor],
    state_b: Mapping[str, Tensor],
    batches: Batches,
    *,
    points: int = 30,
    reestimate: Batches | None = None,
) -> InterpolationPath:
    """The error of ``model`` at ``points`` evenly spaced points between two of its states.

    ``model`` is left holding the state it had; its masks are used at every point.

    Args:
        model: the network (pruned or not) whose parameters and buffers the states give.
        state_a: the first network's state, as :func:`lth_prune.rewind.capture_state` returns.
        state_b: the second's, with the same keys and shapes.
        batches: the ``(inputs, targets)`` the error is measured on (e.g. the test set).
        points: how many points, endpoints included (at least 2).
        reestimate: training batches to recompute BatchNorm statistics on at every point (the
            same ones at every point: up to the first :data:`REESTIMATE_BATCHES` they yield);
            ``None`` interpolates the statistics like the weights.

    Returns:
        The :class:`InterpolationPath`.

    Raises:
        ValueError: if ``points < 2`` or the states do not match the model.

    Example:
        >>> net = torch.nn.Linear(2, 2)
        >>> state = capture_state(net)
        >>> data = [(torch.randn(16, 2), torch.randint(0, 2, (16,)))]
        >>> path = interpolation_path(net, state, state, data, points=5)
        >>> path.alphas, path.instability
        ((0.0, 0.25, 0.5, 0.75, 1.0), 0.0)
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"interpolation_path(): points must be an int >= 2, got {points!r}.")
    if set(state_a) != set(state_b) or any(state_a[key].shape != state_b[key].shape for key in state_a):
        raise ValueError("interpolation_path(): state_a and state_b must have the same keys and shapes.")
    original = capture_state(model)
    batches = list(batches)
    if reestimate is not None:
        reestimate = list(itertools.islice(reestimate, REESTIMATE_BATCHES))
    alphas = tuple(index / (points - 1) for index in range(points))
    errors = []
    try:
        for alpha in alphas:
            restore_state(model, _mix(state_a, state_b, alpha), caller="interpolation_path()")
            if reestimate is not None:
                _reestimate_batchnorm(model, reestimate)
            errors.append(1.0 - evaluate(model, batches).accuracy)
    finally:
        restore_state(model, original)
    return InterpolationPath(alphas, tuple(errors))


def _mix(state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor], alpha: float) -> dict[str, Tensor]:
    # Counters (BatchNorm's num_batches_tracked) are not interpolated: they are A's.
    return {
        key: torch.lerp(value, state_b[key].to(value.device), alpha) if value.is_floating_point() else value
        for key, value in state_a.items()
    }


def _reestimate_batchnorm(model: nn.Module, batches: Batches) -> None:
    norms = [module for module in model.modules() if isinstance(module, _BATCH_NORMS)]
    if not norms:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
    was_training = model.training
    model.train()
    device = next(model.parameters()).device
    with torch.no_grad():
        for inputs, _ in batches:
            model(inputs.to(device))
    model.train(was_training)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
