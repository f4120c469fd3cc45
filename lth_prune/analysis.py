"""What a ticket looks like: mask overlap (Jaccard) between tickets, and its weights' initial values.

Masks are read from a run directory's ticket files (``level_<N>/seed_<S>/ticket.pt``, see
:func:`lth_prune.save_ticket`). A layer a ticket does not prune (every layer at level 0) gets an
all-``True`` mask, so every level of a run has a mask for every prunable layer and any two
levels compare. :mod:`lth_prune.report` turns the results into tables and figures.

Example:
    >>> import torch
    >>> kept = {"fc.weight": torch.tensor([True, True, False, False])}
    >>> other = {"fc.weight": torch.tensor([True, False, True, False])}
    >>> round(mask_overlap(kept, other)["overall"], 4)
    0.3333
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import torch
from torch import Tensor

from lth_prune.imp.config import ExperimentConfig
from lth_prune.tickets import read_ticket

__all__ = [
    "OverlapMatrix",
    "finished_levels",
    "init_values",
    "level_overlap",
    "load_masks",
    "mask_overlap",
    "overlap_matrix",
    "run_overlap",
    "seed_overlap",
]

PathLike = Union[str, "os.PathLike[str]"]
Masks = Mapping[str, Tensor]
_LEVEL_DIR = re.compile(r"level_(\d+)")


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


def finished_levels(run_dir: PathLike, seed: int | None = None) -> list[int]:
    """The levels of a run directory whose ticket file exists for ``seed``, in order.

    Args:
        run_dir: a directory written by :func:`lth_prune.imp.run` (or a transfer).
        seed: default: the run's first seed.

    Returns:
        Level numbers, ascending.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no ``config.json``.

    Example:
        >>> import tempfile
        >>> from lth_prune import imp
        >>> run_dir = tempfile.mkdtemp()
        >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=2, iterations=1, controls=())
        >>> _ = imp.run(config, run_dir=run_dir, progress=False)
        >>> finished_levels(run_dir)
        [0, 1, 2]
    """
    run_dir, seed = Path(run_dir), _seed(run_dir, seed, "finished_levels()")
    levels = []
    for path in run_dir.iterdir():
        match = _LEVEL_DIR.fullmatch(path.name)
        if match and (path / f"seed_{seed}" / "ticket.pt").is_file():
            levels.append(int(match.group(1)))
    return sorted(levels)


def load_masks(run_dir: PathLike, level: int, seed: int | None = None) -> dict[str, Tensor]:
    """One ticket's boolean masks, with an all-``True`` mask for every layer it does not prune.

    Args:
        run_dir: a run directory.
        level: the pruning level.
        seed: default: the run's first seed.

    Returns:
        Masks by weight name (``"fc1.weight"``), on the CPU.

    Raises:
        FileNotFoundError: if the run or that level's ticket is missing (the message lists the
            levels there are).

    Example:
        >>> import tempfile
        >>> from lth_prune import imp
        >>> run_dir = tempfile.mkdtemp()
        >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=2, iterations=1, controls=())
        >>> _ = imp.run(config, run_dir=run_dir, progress=False)
        >>> {name: int(mask.sum()) for name, mask in load_masks(run_dir, 1).items()}
        {'classifier.0.weight': 15360, 'classifier.2.weight': 24000, 'classifier.4.weight': 360}
    """
    return _load_masks(run_dir, level, seed, "load_masks()")


def init_values(run_dir: PathLike, level: int, seed: int | None = None) -> dict[str, tuple[Tensor, Tensor]]:
    """The rewind-point values of a ticket's surviving and of its pruned weights, per layer.

    The rewind point is the initialization (or step k with late rewinding). A compact ticket
    keeps only its surviving values, so the values are read from the level-0 ticket, which
    holds them all (every level of a run shares one rewind point).

    Args:
        run_dir: a run directory.
        level: the level whose mask splits the weights.
        seed: default: the run's first seed.

    Returns:
        ``{weight name: (surviving values, pruned values)}``, 1-D float tensors on the CPU.

    Raises:
        FileNotFoundError: if a ticket is missing.

    Example:
        >>> import tempfile
        >>> from lth_prune import imp
        >>> run_dir = tempfile.mkdtemp()
        >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=2, iterations=1, controls=())
        >>> _ = imp.run(config, run_dir=run_dir, progress=False)
        >>> surviving, pruned = init_values(run_dir, 1)["classifier.4.weight"]
        >>> surviving.numel(), pruned.numel()
        (360, 40)
    """
    masks = _load_masks(run_dir, level, seed, "init_values()")
    _, state, _ = read_ticket(_ticket_path(run_dir, 0, seed, "init_values()"))
    values = {}
    for name, mask in masks.items():
        weights = state[name].flatten().float()
        keep = mask.flatten().to(torch.bool)
        values[name] = (weights[keep], weights[~keep])
    return values


def level_overlap(run_dir: PathLike, seed: int | None = None, *, layer: str | None = None) -> OverlapMatrix:
    """Overlap between every two levels of one seed of a run.

    Levels are nested (level ``m > n`` keeps a subset of level ``n``'s weights), so the index of
    two levels is the ratio of their counts; the matrix is a check and an overview.

    Args:
        run_dir: a run directory.
        seed: default: the run's first seed.
        layer: one weight (``"classifier.0.weight"``); default: all, pooled.

    Returns:
        A symmetric :class:`OverlapMatrix`, levels in order.

    Raises:
        FileNotFoundError: if the run is missing.

    Example:
        >>> import tempfile
        >>> from lth_prune import imp
        >>> run_dir = tempfile.mkdtemp()
        >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=2, iterations=1, controls=())
        >>> _ = imp.run(config, run_dir=run_dir, progress=False)
        >>> [round(value, 3) for value in level_overlap(run_dir).values[0]]
        [1.0, 0.801, 0.641]
    """
    seed = _seed(run_dir, seed, "level_overlap()")
    tickets = _levels(run_dir, seed, "level_overlap()")
    return overlap_matrix(tickets, layer=layer, title=f"mask overlap between levels (seed {seed})")


def seed_overlap(run_dir: PathLike, level: int, *, layer: str | None = None) -> OverlapMatrix:
    """Overlap between the tickets of every seed of a run at one level: do seeds find the same ticket?

    Args:
        run_dir: a run directory.
        level: the level compared.
        layer: one weight; default: all, pooled.

    Returns:
        A symmetric :class:`OverlapMatrix`, one row per seed.

    Raises:
        FileNotFoundError: if the run or a seed's ticket at ``level`` is missing.

    Example:
        >>> import tempfile
        >>> from lth_prune import imp
        >>> run_dir = tempfile.mkdtemp()
        >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=1, iterations=1, controls=(), seeds=(0, 1))
        >>> _ = imp.run(config, run_dir=run_dir, progress=False)
        >>> matrix = seed_overlap(run_dir, 1)
        >>> matrix.rows, matrix.values[0][0], matrix.values[0][1] < 1.0
        (('seed 0', 'seed 1'), 1.0, True)
    """
    seeds = _config(run_dir, "seed_overlap()").seeds
    tickets = {f"seed {seed}": _load_masks(run_dir, level, seed, "seed_overlap()") for seed in seeds}
    return overlap_matrix(tickets, layer=layer, title=f"mask overlap between seeds (level {level})")


def run_overlap(
    run_a: PathLike, run_b: PathLike, *, seed_a: int | None = None, seed_b: int | None = None,
    layer: str | None = None,
) -> OverlapMatrix:
    """Overlap of every level of one run against every level of another (e.g. two data sets).

    Weights compared are those both runs have with the same shape: with different class counts
    the output layer is left out; with different input shapes, the input layer.

    Args:
        run_a: the rows' run directory.
        run_b: the columns' run directory.
        seed_a: ``run_a``'s seed; default: its first.
        seed_b: ``run_b``'s seed; default: its first.
        layer: one weight; default: all the shared ones, pooled.

    Returns:
        An :class:`OverlapMatrix` with a row per level of ``run_a`` and a column per level of ``run_b``.

    Raises:
        FileNotFoundError: if a run directory or ticket is missing.
        ValueError: if the runs have no weight of the same name and shape.

    Example:
        >>> import tempfile
        >>> from lth_prune import imp
        >>> run_dir = tempfile.mkdtemp()
        >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=2, iterations=1, controls=())
        >>> _ = imp.run(config, run_dir=run_dir, progress=False)
        >>> matrix = run_overlap(run_dir, run_dir)
        >>> len(matrix.rows), len(matrix.columns), matrix.values[2][2]
        (3, 3, 1.0)
    """
    rows = {f"{Path(run_a).name}: {label}": masks for label, masks in _levels(run_a, seed_a, "run_overlap()").items()}
    columns = {f"{Path(run_b).name}: {label}": masks for label, masks in _levels(run_b, seed_b, "run_overlap()").items()}
    return overlap_matrix(rows, columns, layer=layer, title=f"mask overlap: {Path(run_a).name} vs {Path(run_b).name}")


def _levels(run_dir: PathLike, seed: int | None, caller: str) -> dict[str, dict[str, Tensor]]:
    """Every level's masks, labelled ``"level 2 (64.1 %)"``."""
    seed = _seed(run_dir, seed, caller)
    tickets = {}
    for level in finished_levels(run_dir, seed):
        remaining = _record(run_dir, level, seed).get("weights_remaining")
        label = f"level {level}" if remaining is None else f"level {level} ({100.0 * remaining:.3g} %)"
        tickets[label] = _load_masks(run_dir, level, seed, caller)
    return tickets


def _load_masks(run_dir: PathLike, level: int, seed: int | None, caller: str) -> dict[str, Tensor]:
    masks, state, _ = read_ticket(_ticket_path(run_dir, level, seed, caller))
    # Layers the ticket does not prune are named by the level's record (every conv and linear
    # layer); a ticket without a record falls back to the layers it masks.
    layers = [f"{name}.weight" if name else "weight" for name in _record(run_dir, level, _seed(run_dir, seed, caller)).get("layers", {})]
    return {
        name: masks[name].to(torch.bool) if name in masks else torch.ones(state[name].shape, dtype=torch.bool)
        for name in layers or masks
    }


def _common_layers(masks_a: Masks, masks_b: Masks) -> list[str]:
    common = [name for name in masks_a if name in masks_b and masks_a[name].shape == masks_b[name].shape]
    if not common:
        raise ValueError(
            f"overlap_matrix(): the tickets must share a weight of the same shape, got "
            f"{ {n: tuple(m.shape) for n, m in masks_a.items()} } and { {n: tuple(m.shape) for n, m in masks_b.items()} }."
        )
    return common


def _config(run_dir: PathLike, caller: str) -> ExperimentConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{caller}: run_dir must hold a config.json written by a run, got {str(run_dir)!r}.")
    return ExperimentConfig.from_dict(json.loads(path.read_text()))


def _seed(run_dir: PathLike, seed: int | None, caller: str) -> int:
    return _config(run_dir, caller).seeds[0] if seed is None else seed


def _ticket_path(run_dir: PathLike, level: int, seed: int | None, caller: str) -> Path:
    seed = _seed(run_dir, seed, caller)
    path = Path(run_dir) / f"level_{level}" / f"seed_{seed}" / "ticket.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{caller}: level must be a finished level of seed {seed} in {str(run_dir)!r} "
            f"({finished_levels(run_dir, seed)}), got {level}."
        )
    return path


def _record(run_dir: PathLike, level: int, seed: int) -> dict[str, Any]:
    path = Path(run_dir) / f"level_{level}" / f"seed_{seed}" / "record.json"
    return json.loads(path.read_text()) if path.is_file() else {}
