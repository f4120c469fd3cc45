"""The tickets of a run directory: their masks, their initial values, and how they overlap.

Everything is read through the run store (:class:`lth_prune.imp.store.RunStore`). A layer a
ticket does not prune (every layer at level 0) gets an all-``True`` mask, so every level of a
run has a mask for every prunable layer and any two levels compare. :mod:`lth_prune.report`
turns the results into tables and figures.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import torch
from torch import Tensor

from lth_prune.analysis.overlap import OverlapMatrix, overlap_matrix
from lth_prune.imp.store import RunStore
from lth_prune.layers import PRUNABLE_TENSORS

__all__ = ["finished_levels", "init_values", "level_overlap", "load_masks", "run_overlap", "seed_overlap"]

PathLike = Union[str, "os.PathLike[str]"]


def finished_levels(run_dir: PathLike, seed: int | None = None) -> list[int]:
    """The levels of a run directory that ``seed`` finished, in order.

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
    store = RunStore(run_dir)
    return store.finished_levels(_seed(store, seed, "finished_levels()"))


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
    keeps only its surviving values, so the values are read from the seed's full rewind point,
    which every level of a run shares.

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
    store = RunStore(run_dir)
    state = store.rewind_point(_seed(store, seed, "init_values()")).state
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
    seed = _seed(RunStore(run_dir), seed, "level_overlap()")
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
    seeds = RunStore(run_dir).config("seed_overlap()").seeds
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
    store = RunStore(run_dir)
    seed = _seed(store, seed, caller)
    tickets = {}
    for level in store.finished_levels(seed):
        remaining = store.record(level, seed).get("weights_remaining")
        label = f"level {level}" if remaining is None else f"level {level} ({100.0 * remaining:.3g} %)"
        tickets[label] = _load_masks(run_dir, level, seed, caller)
    return tickets


def _load_masks(run_dir: PathLike, level: int, seed: int | None, caller: str) -> dict[str, Tensor]:
    store = RunStore(run_dir)
    seed = _seed(store, seed, caller)
    if level not in store.finished_levels(seed):
        raise FileNotFoundError(
            f"{caller}: level must be a finished level of seed {seed} in {str(run_dir)!r} "
            f"({store.finished_levels(seed)}), got {level}."
        )
    masks, state, _ = store.ticket(level, seed)
    # Layers the ticket does not prune are named by the level's record (every conv and linear layer).
    layers = [_key(name, state) for name in store.record(level, seed).get("layers", {})]
    return {
        name: masks[name].to(torch.bool) if name in masks else torch.ones(state[name].shape, dtype=torch.bool)
        for name in layers or masks
    }


def _seed(store: RunStore, seed: int | None, caller: str) -> int:
    return store.config(caller).seeds[0] if seed is None else seed


def _key(layer: str, state: dict[str, Tensor]) -> str:
    """A layer's weight-matrix name in a saved state: its ``weight``, or an attention's ``in_proj_weight``."""
    for tensor in PRUNABLE_TENSORS:
        key = f"{layer}.{tensor}" if layer else tensor
        if key in state:
            return key
    return f"{layer}.weight" if layer else "weight"
