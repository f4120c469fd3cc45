"""Seeded, stratified sampling of example indices, for hold-outs and subsets."""
from __future__ import annotations

import numpy as np

__all__ = ["stratified_indices"]


def stratified_indices(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``count`` examples at random, each class in proportion to its share of ``labels``.

    Per-class counts are rounded by largest remainder, so they add up to exactly ``count``.

    Args:
        labels: ``(N,)`` integer class labels.
        count: number of indices to draw, in ``[0, N]``.
        rng: numpy generator that picks the examples within each class.

    Returns:
        The chosen indices into ``labels``, sorted, int64.

    Raises:
        ValueError: if ``count`` is outside ``[0, N]``.

    Example:
        >>> import numpy as np
        >>> chosen = stratified_indices(np.array([0, 0, 0, 0, 1, 1]), 3, np.random.default_rng(0))
        >>> len(chosen), int((chosen >= 4).sum())
        (3, 1)
    """
    if not 0 <= count <= len(labels):
        raise ValueError(f"stratified_indices(): count must be in [0, {len(labels)}], got {count}.")
    classes, class_sizes = np.unique(labels, return_counts=True)
    exact = class_sizes * (count / max(len(labels), 1))
    per_class = np.floor(exact).astype(np.int64)
    leftover = count - int(per_class.sum())
    per_class[np.argsort(-(exact - per_class), kind="stable")[:leftover]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == label))[:size] for label, size in zip(classes, per_class)]
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)
