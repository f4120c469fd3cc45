"""Results of an IMP run: per-level means and spreads over seeds, as a table's rows.

:class:`Results` aggregates the per-seed level records a run (or a transfer) produced; the run
store (:mod:`lth_prune.imp.store.rundir`) writes and reads them as ``results.json`` and
``results.csv``.
"""
from __future__ import annotations

import csv
import io
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.store.rundir import RunStore
from lth_prune.imp.searches.base import METHODS

__all__ = ["Results", "METRICS"]


def _metric_names() -> tuple[str, ...]:
    """The per-level measurements averaged over seeds, those of every registered branch and
    method included.

    Example:
        >>> _metric_names()[:3]
        ('test_accuracy', 'test_loss', 'no_retrain_accuracy')
    """
    return tuple(dict.fromkeys((
        "test_accuracy",
        "test_loss",
        "no_retrain_accuracy",
        "val_accuracy",
        "early_stop_iteration",
        "early_stop_test_accuracy",
        *(metric for name in BRANCHES.names() for metric in BRANCHES.get(name).metrics),
        *(metric for name in METHODS.names() for metric in METHODS.get(name).metrics),
        "seconds",
        "iterations",
    )))


# Per-level measurements averaged over seeds (each also gets a "<name>_std"), with the built-in
# branches' (_metric_names() also has those of branches registered later).
METRICS = _metric_names()


@dataclass
class Results:
    """The outcome of :func:`lth_prune.imp.run`: the config and one entry per level.

    Each entry of ``levels`` has ``level``, ``weights_remaining`` (fraction of prunable weights
    left), ``layers`` (fraction left per layer), the mean over seeds of each measurement in
    :data:`METRICS` that was taken (``no_retrain_accuracy`` and the controls are ``None`` at
    level 0) with its standard deviation as ``<name>_std``, and ``seeds``, the per-seed records.

    Attributes:
        config: the settings of the run.
        levels: one dict per level, level 0 (dense) first.
        run_dir: the directory it was written to, if any.
    """

    config: ExperimentConfig
    levels: list[dict[str, Any]]
    run_dir: Path | None = None

    @classmethod
    def from_records(
        cls, config: ExperimentConfig, records: Iterable[dict[str, Any]], run_dir: Path | None = None
    ) -> Results:
        """Aggregate per-seed level records into per-level means and spreads."""
        by_level: dict[int, list[dict[str, Any]]] = {}
        for record in records:
            by_level.setdefault(record["level"], []).append(record)
        levels = [_aggregate(by_level[level]) for level in sorted(by_level)]
        return cls(config=config, levels=levels, run_dir=run_dir)

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str]) -> Results:
        """Read a run directory's ``results.json``.

        Raises:
            FileNotFoundError: if ``run_dir`` has no ``results.json``.
            lth_prune.imp.RunDirectoryError: if it is unreadable or not a results file.
        """
        data = RunStore(run_dir).read_results("Results.load()")
        return cls(ExperimentConfig.from_dict(data["config"]), data["levels"], Path(run_dir))

    @property
    def branches(self) -> list[str]:
        """The branches this run measured (``config.controls`` that recorded a value), in
        registry order: what tables and figures show next to the ticket."""
        return [
            name for name in BRANCHES.names()
            if any(level.get(metric) is not None for level in self.levels for metric in BRANCHES.get(name).metrics)
        ]

    def to_dict(self) -> dict[str, Any]:
        """``{"config": ..., "levels": [...]}``, as written to ``results.json``."""
        return {"config": self.config.to_dict(), "levels": self.levels}

    def to_csv(self) -> str:
        """One row per level: level, weights remaining, and every measurement taken."""
        columns = ["level", "weights_remaining"] + [
            name for metric in _metric_names() for name in (metric, metric + "_std")
            if any(level.get(name) is not None for level in self.levels)
        ]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for level in self.levels:
            writer.writerow({k: "" if level.get(k) is None else level[k] for k in columns})
        return out.getvalue()

    def save(self, run_dir: str | os.PathLike[str]) -> None:
        """Write ``results.json`` and ``results.csv`` into ``run_dir`` (atomically).

        Non-finite values are written as ``null``: ``NaN`` is not JSON.
        """
        RunStore(run_dir).write_results(self.to_dict(), self.to_csv())
        self.run_dir = Path(run_dir)


def _aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    records = sorted(records, key=lambda r: r["seed"])
    first = records[0]
    entry: dict[str, Any] = {"level": first["level"], "weights_remaining": first["weights_remaining"]}
    entry["layers"] = {
        name: statistics.fmean(r["layers"][name] for r in records) for name in first["layers"]
    }
    for metric in _metric_names():
        if not any(metric in r for r in records):
            continue
        values = [r.get(metric) for r in records]
        present = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        entry[metric] = statistics.fmean(present) if present else None
        entry[metric + "_std"] = (statistics.stdev(present) if len(present) > 1 else 0.0) if present else None
    # A label every seed gives alike (a transfer's output_layer: "new") is the level's too.
    for key, value in first.items():
        if isinstance(value, str) and key not in entry and all(r.get(key) == value for r in records):
            entry[key] = value
    entry["seeds"] = records
    return entry
