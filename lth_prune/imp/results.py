"""Results of an IMP run and the run directory they live in.

A run directory holds ``config.json``, ``results.json``, ``results.csv``, the figures, and one
checkpoint per finished level and seed in ``level_<N>/seed_<S>/``: ``record.json`` (that
level's measurements), ``ticket.pt`` (masks plus rewind point, see
:func:`lth_prune.save_ticket`) and ``trained.pt`` (the trained weights the next round prunes).
Every file is written to a temporary name and renamed, so a killed run never leaves half a
file, and ``record.json`` is written last: a level counts as finished once it exists.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch

from lth_prune.imp.config import ExperimentConfig

__all__ = ["Results", "RunStore", "METRICS"]

# Per-level measurements averaged over seeds (each also gets a "<name>_std").
METRICS = (
    "test_accuracy",
    "test_loss",
    "no_retrain_accuracy",
    "val_accuracy",
    "early_stop_iteration",
    "early_stop_test_accuracy",
    "random_reinit_accuracy",
    "random_pruning_accuracy",
    "seconds",
    "iterations",
)


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
        """
        path = Path(run_dir) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"Results.load(): run_dir must hold a results.json written by lth-prune run, got {str(run_dir)!r}."
            )
        data = json.loads(path.read_text())
        return cls(ExperimentConfig.from_dict(data["config"]), data["levels"], Path(run_dir))

    def to_dict(self) -> dict[str, Any]:
        """``{"config": ..., "levels": [...]}``, as written to ``results.json``."""
        return {"config": self.config.to_dict(), "levels": self.levels}

    def to_csv(self) -> str:
        """One row per level: level, weights remaining, and every measurement taken."""
        columns = ["level", "weights_remaining"] + [
            name for metric in METRICS for name in (metric, metric + "_std")
            if any(level.get(name) is not None for level in self.levels)
        ]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for level in self.levels:
            writer.writerow({k: "" if level.get(k) is None else level[k] for k in columns})
        return out.getvalue()

    def save(self, run_dir: str | os.PathLike[str]) -> None:
        """Write ``results.json`` and ``results.csv`` into ``run_dir`` (atomically)."""
        run_dir = Path(run_dir)
        write_atomic(run_dir / "results.json", json.dumps(self.to_dict(), indent=2, allow_nan=True))
        write_atomic(run_dir / "results.csv", self.to_csv())
        self.run_dir = run_dir


@dataclass
class RunStore:
    """Reads and writes one run directory (see the module's description of the layout)."""

    run_dir: Path
    seeds_done: dict[int, int] = field(default_factory=dict)

    def level_dir(self, level: int, seed: int) -> Path:
        return self.run_dir / f"level_{level}" / f"seed_{seed}"

    def write_config(self, config: ExperimentConfig) -> None:
        write_atomic(self.run_dir / "config.json", json.dumps(config.to_dict(), indent=2))

    def read_config(self) -> ExperimentConfig | None:
        path = self.run_dir / "config.json"
        return ExperimentConfig.from_dict(json.loads(path.read_text())) if path.is_file() else None

    def save_level(self, record: dict[str, Any], trained: dict[str, Any], ticket_path_writer: Any) -> None:
        """Checkpoint one finished level: trained weights and ticket first, record last."""
        directory = self.level_dir(record["level"], record["seed"])
        directory.mkdir(parents=True, exist_ok=True)
        save_atomic(trained, directory / "trained.pt")
        ticket_path_writer(directory / "ticket.pt")
        write_atomic(directory / "record.json", json.dumps(record, indent=2, allow_nan=True))

    def finished_records(self, seed: int) -> list[dict[str, Any]]:
        """The records of the levels this seed finished, in order, stopping at the first gap."""
        records = []
        level = 0
        while (path := self.level_dir(level, seed) / "record.json").is_file():
            records.append(json.loads(path.read_text()))
            level += 1
        return records

    def load_trained(self, level: int, seed: int) -> dict[str, Any]:
        return torch.load(self.level_dir(level, seed) / "trained.pt", map_location="cpu", weights_only=True)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def _aggregate(records: list[dict[str, Any]]) -> dict[str, Any]:
    records = sorted(records, key=lambda r: r["seed"])
    first = records[0]
    entry: dict[str, Any] = {"level": first["level"], "weights_remaining": first["weights_remaining"]}
    entry["layers"] = {
        name: statistics.fmean(r["layers"][name] for r in records) for name in first["layers"]
    }
    for metric in METRICS:
        if not any(metric in r for r in records):
            continue
        values = [r.get(metric) for r in records]
        present = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        entry[metric] = statistics.fmean(present) if present else None
        entry[metric + "_std"] = (statistics.stdev(present) if len(present) > 1 else 0.0) if present else None
    entry["seeds"] = records
    return entry
