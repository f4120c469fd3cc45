"""Mask overlap (Jaccard index) between tickets: which weights two tickets both keep.

Example:
    >>> import torch
    >>> kept = {"fc.weight": torch.tensor([True, True, False, False])}
    >>> other = {"fc.weight": torch.tensor([True, False, True, False])}
    >>> round(mask_overlap(kept, other)["overall"], 4)
    0.3333
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["OverlapMatrix", "mask_overlap", "overlap_matrix"]

Masks = Mapping[str, Tensor]


@dataclass(frozen=True)
class OverlapMatrix:
    """Jaccard indices of surviving weights between two families of tickets.

    Attributes:
        rows: one label per row ticket, e.g. ``"level 3 (51.2 %)"``.
        columns: one label per column ticket.
        values: ``len(rows)`` lists of ``len(columns)`` Jaccard indices in [0, 1].
        layer: the mask key compared (``"fc1.weight"``), or ``None`` for all layers pooled.
        title: what is compared, for tables and figures.
    """

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    layer: str | None = None
    title: str = "mask overlap"


def mask_overlap(masks_a: Masks, masks_b: Masks, *, layers: Sequence[str] | None = None) -> dict[str, Any]:
    """Jaccard index ``|A ∩ B| / |A ∪ B|`` of two tickets' surviving weights, per layer and overall.

    A layer whose masks keep nothing in both tickets counts as identical (index 1). ``"chance"``
    is what two independent random masks with the same per-layer counts would give on average,
    the baseline an overlap should be read against.

    Args:
        masks_a: boolean (or 0/1) masks by weight name, ``True`` meaning kept, as
            :func:`lth_prune.get_masks` or :func:`load_masks` return.
        masks_b: masks with the same names and shapes.
        layers: compare only these names (default: all; both must then have the same names).

    Returns:
        ``{"overall": float, "layers": {name: float}, "chance": float}``, indices in [0, 1];
        ``overall`` pools the counts of every compared layer.

    Raises:
        ValueError: if the names differ, a name in ``layers`` is missing, shapes differ, or
            nothing is compared.

    Example:
        >>> import torch
        >>> mask = {"w": torch.tensor([[True, False], [True, True]])}
        >>> mask_overlap(mask, mask)["overall"], mask_overlap(mask, {"w": ~mask["w"]})["overall"]
        (1.0, 0.0)
    """
    if layers is None:
        if set(masks_a) != set(masks_b):
            raise ValueError(
                f"mask_overlap(): masks_b must mask the same weights as masks_a, got "
                f"{sorted(masks_b)} and {sorted(masks_a)}."
            )
        layers = list(masks_a)
    if not layers:
        raise ValueError("mask_overlap(): there must be at least one layer to compare, got none.")
    per_layer: dict[str, float] = {}
    both_total = either_total = shared_total = random_either_total = 0.0
    for name in layers:
        if name not in masks_a or name not in masks_b:
            raise ValueError(f"mask_overlap(): layers must be masked in both tickets, got {name!r}.")
        a, b = masks_a[name] != 0, masks_b[name] != 0
        if a.shape != b.shape:
            raise ValueError(
                f"mask_overlap(): the masks of {name} must have the same shape, got "
                f"{tuple(a.shape)} and {tuple(b.shape)}."
            )
        b = b.to(a.device)
        both, either = int(torch.count_nonzero(a & b)), int(torch.count_nonzero(a | b))
        per_layer[name] = both / either if either else 1.0
        both_total, either_total = both_total + both, either_total + either
        # Independent random masks keeping k_a and k_b of n entries share k_a * k_b / n on average.
        kept_a, kept_b = int(torch.count_nonzero(a)), int(torch.count_nonzero(b))
        shared = kept_a * kept_b / a.numel()
        shared_total, random_either_total = shared_total + shared, random_either_total + kept_a + kept_b - shared
    return {
        "overall": both_total / either_total if either_total else 1.0,
        "layers": per_layer,
        "chance": shared_total / random_either_total if random_either_total else 1.0,
    }


def overlap_matrix(
    rows: Mapping[str, Masks],
    columns: Mapping[str, Masks] | None = None,
    *,
    layer: str | None = None,
    title: str = "mask overlap",
) -> OverlapMatrix:
    """The Jaccard index of every row ticket against every column ticket.

    Args:
        rows: tickets' masks by label.
        columns: tickets' masks by label; default: ``rows`` (a symmetric matrix, ones on the
            diagonal).
        layer: compare only this weight (``"fc1.weight"``); default: every weight both tickets
            mask with the same shape, pooled.
        title: a description kept with the matrix.

    Returns:
        The :class:`OverlapMatrix`.

    Raises:
        ValueError: if ``rows`` is empty, or a pair has no weight in common (or lacks ``layer``).

    Example:
        >>> import torch
        >>> a, b = {"w": torch.tensor([True, True])}, {"w": torch.tensor([True, False])}
        >>> overlap_matrix({"a": a, "b": b}).values
        ((1.0, 0.5), (0.5, 1.0))
    """
    if not rows:
        raise ValueError("overlap_matrix(): rows must hold at least one ticket, got none.")
    columns = rows if columns is None else columns
    values = []
    for masks_a in rows.values():
        row = []
        for masks_b in columns.values():
            names = [layer] if layer is not None else _common_layers(masks_a, masks_b)
            row.append(mask_overlap(masks_a, masks_b, layers=names)["overall"])
        values.append(tuple(row))
    return OverlapMatrix(tuple(rows), tuple(columns), tuple(values), layer, title)


def _common_layers(masks_a: Masks, masks_b: Masks) -> list[str]:
    common = [name for name in masks_a if name in masks_b and masks_a[name].shape == masks_b[name].shape]
    if not common:
        raise ValueError(
            f"overlap_matrix(): the tickets must share a weight of the same shape, got "
            f"{ {n: tuple(m.shape) for n, m in masks_a.items()} } and { {n: tuple(m.shape) for n, m in masks_b.items()} }."
        )
    return common
