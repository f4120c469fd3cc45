"""Many runs on a job engine: a grid of settings, one job per run, one sweep directory.

:func:`sweep` builds the config of every point of a grid (each checked before anything is
submitted), submits one job per run through `submitit <https://github.com/facebookincubator/submitit>`_
(``executor="local"``: processes on this machine; ``"slurm"``: a Slurm cluster; ``"inline"``: in
this process, for debugging), and waits for them. Each run writes its own run directory under the
sweep directory; calling :func:`sweep` again with the same grid skips finished runs and resumes
unfinished ones. submitit, not Ray: lottery-ticket studies run many independent, long jobs, which
Slurm's queue (the usual research cluster) schedules; submitit submits them there with a local
executor of the same interface for one machine, and adds no server or scheduler of its own.

The sweep directory holds ``sweep.json`` (the base config, the grid and each run's settings),
one run directory per point and ``jobs/`` (the engine's logs); ``lth-prune sweep`` ends with
:func:`lth_prune.report.compare.format_comparison` across the runs.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from lth_prune.imp.store.files import json_bytes, read_json, write_atomic
from lth_prune.imp.config import EXECUTION_SETTINGS, ExperimentConfig
from lth_prune.imp.experiment import run
from lth_prune.imp.store import Results, RunStore

__all__ = ["EXECUTORS", "SweepRun", "run_job", "sweep"]

EXECUTORS = ("local", "slurm", "inline")
_SWEEP = "sweep.json"
_JOBS = "jobs"


@dataclass(frozen=True)
class SweepRun:
    """One point of a sweep.

    Attributes:
        label: the point's settings as text, e.g. ``"lr=0.001 rate=0.3"``.
        settings: the grid's settings at this point.
        run_dir: its run directory.
        results: its results (after :func:`sweep` returns).
    """

    label: str
    settings: dict[str, Any]
    run_dir: Path
    results: Results


def sweep(
    base: ExperimentConfig,
    grid: Mapping[str, Sequence[Any]],
    *,
    sweep_dir: str | os.PathLike[str],
    executor: str = "local",
    slurm: Mapping[str, Any] | None = None,
    timeout_min: int = 24 * 60,
) -> list[SweepRun]:
    """Run ``base`` at every point of ``grid``, one job each, and return the points' results.

    Args:
        base: the settings every run shares (its ``seeds`` too: each run trains all of them).
        grid: settings to vary and their values, e.g. ``{"lr": [1e-3, 3e-3], "method": ["imp", "snip"]}``;
            the runs are the grid's product.
        sweep_dir: the sweep directory; calling again with the same grid resumes it.
        executor: ``"local"``, ``"slurm"`` or ``"inline"`` (see the module).
        slurm: submitit's Slurm parameters, e.g. ``{"slurm_partition": "gpu", "gpus_per_node": 1}``.
        timeout_min: each job's time limit, in minutes.

    Returns:
        One :class:`SweepRun` per point, in grid order.

    Raises:
        ValueError: if a grid setting is unknown or a value invalid (every point is checked
            before anything is submitted), the grid is empty, ``executor`` is unknown, or
            ``sweep_dir`` holds a sweep of another grid.
        RuntimeError: if a job failed (its message and log are named).

    Example:
        >>> import tempfile
        >>> runs = sweep(ExperimentConfig(dataset="synthetic", rounds=1, iterations=2, controls=()),
        ...              {"lr": [1e-3, 1e-2]}, sweep_dir=tempfile.mkdtemp(), executor="inline")
        >>> [run.label for run in runs]
        ['lr=0.001', 'lr=0.01']
    """
    if not isinstance(base, ExperimentConfig):
        raise TypeError(f"sweep(): base must be an ExperimentConfig, got {type(base).__name__}.")
    if executor not in EXECUTORS:
        raise ValueError(f"sweep(): executor must be one of {list(EXECUTORS)}, got {executor!r}.")
    points = _points(base, grid)
    directory = Path(sweep_dir)
    description = {
        "base": base.to_dict(), "grid": {key: list(values) for key, values in grid.items()},
        "runs": [{"label": label, "settings": settings, "run_dir": config.run_name()} for label, settings, config in points],
    }
    _check_same_sweep(directory, description)
    write_atomic(directory / _SWEEP, json_bytes(description))
    pending = []
    for label, settings, config in points:
        store = RunStore(directory / config.run_name())
        if not store.results_files():
            pending.append((label, config, store.run_dir, store.holds_run()))
    _submit(pending, directory, executor, dict(slurm or {}), timeout_min)
    return [
        SweepRun(label, settings, directory / config.run_name(), Results.load(directory / config.run_name()))
        for label, settings, config in points
    ]


def run_job(config: dict[str, Any], run_dir: str, resume: bool) -> str:
    """One run of a sweep, as a job calls it (a module-level function, importable by the engine)."""
    run(ExperimentConfig.from_dict(config), run_dir=run_dir, resume=resume, progress=False)
    return run_dir


def _points(base: ExperimentConfig, grid: Mapping[str, Sequence[Any]]) -> list[tuple[str, dict[str, Any], ExperimentConfig]]:
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"sweep(): grid must map settings to lists of values, got {grid!r}.")
    known = set(base.to_dict())
    for key, values in grid.items():
        if key not in known or key in EXECUTION_SETTINGS:
            raise ValueError(
                f"sweep(): grid keys must be settings of what a run computes, got {key!r}; settings are "
                f"{sorted(known - set(EXECUTION_SETTINGS))}."
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"sweep(): grid[{key!r}] must be a non-empty list of values, got {values!r}.")
    points = []
    for combination in itertools.product(*grid.values()):
        settings = dict(zip(grid, combination))
        try:
            config = ExperimentConfig.from_dict({**base.to_dict(), **settings})
        except (TypeError, ValueError) as error:
            raise ValueError(f"sweep(): the grid point {settings} is not a valid config: {error}") from error
        points.append((" ".join(f"{key}={value}" for key, value in settings.items()), settings, config))
    names = [config.run_name() for _, _, config in points]
    if len(set(names)) != len(names):
        raise ValueError("sweep(): the grid has points with the same settings; each value must differ.")
    return points


def _check_same_sweep(directory: Path, description: dict[str, Any]) -> None:
    path = directory / _SWEEP
    if not path.is_file():
        return
    saved = read_json(path, "a sweep's description", "choose another directory for another sweep")
    if saved.get("base") != description["base"] or saved.get("grid") != description["grid"]:
        raise ValueError(
            f"sweep(): sweep_dir {str(directory)!r} holds a sweep of other settings; resume it with the same base "
            "and grid, or choose another directory."
        )


def _submit(pending: list[tuple[str, ExperimentConfig, Path, bool]], directory: Path, executor: str,
            slurm: dict[str, Any], timeout_min: int) -> None:
    if not pending:
        return
    if executor == "inline":
        for _, config, run_dir, resume in pending:
            run_job(config.to_dict(), str(run_dir), resume)
        return
    try:
        import submitit
    except ImportError:
        raise ValueError("sweep(): executor 'local' and 'slurm' need submitit; pip install 'lth_prune[sweep]'.") from None
    engine = submitit.AutoExecutor(folder=str(directory / _JOBS), cluster=executor)
    engine.update_parameters(timeout_min=timeout_min, **slurm)
    jobs = [(label, engine.submit(run_job, config.to_dict(), str(run_dir), resume))
            for label, config, run_dir, resume in pending]
    failed = []
    for label, job in jobs:
        try:
            job.result()
        except Exception as error:  # noqa: BLE001 - the engine re-raises the job's failure
            failed.append(f"{label}: {str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__} "
                          f"(log: {job.paths.stderr})")
    if failed:
        raise RuntimeError("sweep(): some runs failed; fix the cause and call sweep() again to resume them: "
                           + "; ".join(failed))
