"""The run store: the one owner of a run directory's layout, its lock and its file formats.

A run directory holds::

    config.json                  the settings (ExperimentConfig.to_dict())
    transfer.json                only in a transfer: the source run, levels, seeds, fitting
    stability.json               only in a stability analysis: instability against rewind step
    results.json, results.csv    the aggregated results, written when the run ends
    rewind_points/seed_<S>.pt    every parameter and buffer at the rewind point, pruned
                                 positions included, and its step: where every branch starts
    level_<N>/seed_<S>/
        trained.pt               the trained weights and masks the next round prunes
        ticket.pt                masks and rewind point (lth_prune.save_ticket's compact file)
        record.json              the level's measurements; written last: a level counts as
                                 finished once it exists
    .lock, .lock-seed_<S>        while a run writes: the writing process's pid (see RunStore.lock)

Figures are drawn into the directory by :mod:`lth_prune.report`, which is handed a directory and
knows nothing else of it. Every other module reads and writes runs through :class:`RunStore`.

Writes go to a temporary file that is renamed into place, so a killed run never leaves half a
file; a write that fails (a full disk) removes its temporary file and says which file it was.
Reads are validated: a truncated or foreign file raises :class:`RunDirectoryError` naming the
file and what to do about it.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Union

from torch import Tensor

from lth_prune.imp.store.files import (
    RunDirectoryError,
    RunLock,
    json_bytes,
    read_json,
    read_torch,
    reason,
    tensor_dict,
    torch_bytes,
    write_atomic,
)
from lth_prune.imp.config import EXECUTION_SETTINGS, ExperimentConfig
from lth_prune.imp.rewinding import RewindPoint
from lth_prune.tickets import read_ticket

__all__ = ["TRANSFER_FILE", "RunDirectoryError", "RunStore", "TicketPath"]

PathLike = Union[str, "os.PathLike[str]"]

_CONFIG = "config.json"
TRANSFER_FILE = "transfer.json"
_STABILITY = "stability.json"
_RESULTS = "results.json"
_RESULTS_CSV = "results.csv"
_REWIND_POINTS = "rewind_points"
_TRAINED = "trained.pt"
_TICKET = "ticket.pt"
_RECORD = "record.json"
_LOCK = ".lock"
_LEVEL = re.compile(r"level_(\d+)")
_SEED = re.compile(r"seed_(\d+)")
_REWIND_FORMAT = "lth_prune.rewind_point"


@dataclass(frozen=True)
class TicketPath:
    """A path given as ``RUN_DIR``, ``RUN_DIR/level_N`` or ``RUN_DIR/level_N/seed_S``, split.

    Attributes:
        run_dir: the run directory.
        level: the level named, or ``None``.
        seed: the seed named, or ``None``.
    """

    run_dir: Path
    level: int | None
    seed: int | None

    @classmethod
    def parse(cls, path: PathLike) -> TicketPath:
        """Split ``path``.

        Raises:
            ValueError: if it names a seed without a level (``RUN_DIR/seed_S``).

        Example:
            >>> TicketPath.parse("runs/fm/level_3/seed_1")
            TicketPath(run_dir=PosixPath('runs/fm'), level=3, seed=1)
        """
        given = path = Path(path)
        seed = level = None
        if match := _SEED.fullmatch(path.name):
            seed, path = int(match.group(1)), path.parent
        if match := _LEVEL.fullmatch(path.name):
            level, path = int(match.group(1)), path.parent
        elif seed is not None:
            raise ValueError(f"the ticket path must be RUN_DIR, RUN_DIR/level_N or RUN_DIR/level_N/seed_S, got {given}.")
        return cls(path, level, seed)

    @property
    def suffix(self) -> str:
        """``"-level_N"`` when a level is named, else ``""``: how a derived run is named after it."""
        return "" if self.level is None else f"-level_{self.level}"


class RunStore:
    """Reads and writes one run directory (see the module's description of the layout).

    Creating a store touches nothing on disk; :meth:`lock` creates the directory.

    Args:
        run_dir: the run directory.

    Example:
        >>> store = RunStore("no/such/run")
        >>> store.holds_run(), store.read_config() is None
        (False, True)
    """

    def __init__(self, run_dir: PathLike) -> None:
        self.run_dir = Path(run_dir)

    def __repr__(self) -> str:
        return f"RunStore({str(self.run_dir)!r})"

    # -- writing --------------------------------------------------------------------------------

    def lock(self) -> RunLock:
        """The run's exclusive lock, a context manager held while the run writes.

        Entering it creates the directory. It raises :class:`RuntimeError`, naming the holder's
        pid, if another live process holds it; a lock left by a killed process is taken over
        with a :class:`RuntimeWarning`.
        """
        return RunLock(self.run_dir / _LOCK, f"run directory {self.run_dir}")

    def seed_lock(self, seed: int) -> RunLock:
        """The lock of one seed, held by whichever process trains that seed (see :meth:`lock`)."""
        return RunLock(self.run_dir / f"{_LOCK}-seed_{seed}", f"seed {seed} of {self.run_dir}")

    def write_config(self, config: ExperimentConfig) -> None:
        """Write ``config.json``."""
        self._write(self.run_dir / _CONFIG, json_bytes(config.to_dict()))

    def write_transfer(self, info: dict[str, Any]) -> None:
        """Write ``transfer.json``: what a transfer says about its source."""
        self._write(self.run_dir / TRANSFER_FILE, json_bytes(info))

    def write_stability(self, stability: dict[str, Any]) -> None:
        """Write ``stability.json``: a stability analysis against the rewind step."""
        self._write(self.run_dir / _STABILITY, json_bytes(stability))

    def read_stability(self, caller: str) -> dict[str, Any]:
        """``stability.json`` as written.

        Raises:
            FileNotFoundError: if there is none.
            RunDirectoryError: if it is unreadable.
        """
        path = self.run_dir / _STABILITY
        if not path.is_file():
            raise FileNotFoundError(
                f"{caller}: run_dir must hold a stability.json written by lth-prune stability, got {str(self.run_dir)!r}."
            )
        return read_json(path, "a stability analysis", "run lth-prune stability again into another directory")

    def write_results(self, results: dict[str, Any], csv_text: str) -> None:
        """Write ``results.json`` and ``results.csv``."""
        self._write(self.run_dir / _RESULTS, json_bytes(results))
        self._write(self.run_dir / _RESULTS_CSV, csv_text.encode())

    def save_rewind_point(self, seed: int, point: RewindPoint) -> None:
        """Write a seed's full rewind point (before its level 0 counts as finished)."""
        state = {key: value.detach().cpu() for key, value in point.state.items()}
        payload = {"format": _REWIND_FORMAT, "state": state, "step": int(point.step)}
        self._write(self._rewind_path(seed), torch_bytes(payload))

    def save_level(
        self, record: dict[str, Any], state: dict[str, Tensor], masks: dict[str, Tensor],
        write_ticket: Callable[[BinaryIO], None],
    ) -> None:
        """Checkpoint one finished level of one seed: trained weights and ticket first, record last.

        Args:
            record: the level's measurements, with ``level`` and ``seed``.
            state: the trained network's parameters and buffers (dense names).
            masks: its masks by weight name.
            write_ticket: writes the ticket into the binary file it is given (e.g.
                ``lambda file: save_ticket(net, file, rewinder)``).
        """
        directory = self._level_dir(record["level"], record["seed"])
        directory.mkdir(parents=True, exist_ok=True)
        trained = {
            "state": {key: value.detach().cpu() for key, value in state.items()},
            "masks": {key: value.detach().cpu() for key, value in masks.items()},
        }
        self._write(directory / _TRAINED, torch_bytes(trained))
        buffer = io.BytesIO()
        write_ticket(buffer)
        self._write(directory / _TICKET, buffer.getvalue())
        self._write(directory / _RECORD, json_bytes(record))

    # -- reading --------------------------------------------------------------------------------

    def holds_run(self) -> bool:
        """Whether the directory holds a run (its ``config.json``)."""
        return (self.run_dir / _CONFIG).is_file()

    def check_start(self, config: ExperimentConfig, resume: bool, caller: str, *, resumable: bool = True) -> bool:
        """Whether a run of ``config`` may start here: afresh, resumed, or not at all; writes nothing.

        The one judge of a directory: fresh (no run, or one that finished no level, which takes
        the new settings), resumable (``resume`` and the same settings, but where it runs), or
        foreign (a file, another run, other settings).

        Args:
            config: the settings of the run about to start.
            resume: whether it is asked to continue the run in the directory.
            caller: the public function asking, named in error messages.
            resumable: whether the caller can resume at all (a stability study cannot).

        Returns:
            Whether the run starts afresh (its config is to be written).

        Raises:
            ValueError: if the directory is a file, holds a run and ``resume`` is false, holds
                none and ``resume`` is true, or holds one of other settings.
            RunDirectoryError: if its ``config.json`` is unreadable.
        """
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ValueError(f"{caller}: run_dir must be a directory, got {str(self.run_dir)!r}, which is a file.")
        saved = self.read_config()
        if saved is None:
            if resume:
                raise ValueError(
                    f"{caller}: resume=True needs a run in run_dir, got {str(self.run_dir)!r}, which holds none; check "
                    "the directory, or start the run without resume (--resume)."
                )
            return True
        finished = any(self.finished_levels(seed) for seed in saved.seeds) or any(
            (self.run_dir / name).is_file() for name in (_RESULTS, _STABILITY)
        )
        if not finished:
            return True  # nothing would be mixed: the settings may change
        if not resume:
            how = "pass resume=True (--resume) to continue it, or choose" if resumable else "choose"
            raise ValueError(f"{caller}: run_dir {str(self.run_dir)!r} already holds a run; {how} another directory.")
        if self.read_transfer() is not None and saved.transfer_from is None:
            raise ValueError(
                f"{caller}: run_dir {str(self.run_dir)!r} holds a transfer written before transfers were runs of their "
                "own method, which cannot be resumed; transfer again into another directory."
            )
        current = config.to_dict()
        differs = sorted(
            key for key, value in saved.to_dict().items() if key not in EXECUTION_SETTINGS and current[key] != value
        )
        if differs:
            raise ValueError(f"{caller}: resume needs the config the run started with; these settings differ: {differs}.")
        return False

    def read_config(self) -> ExperimentConfig | None:
        """The run's settings, or ``None`` if the directory holds no run.

        Raises:
            RunDirectoryError: if ``config.json`` is unreadable or not a valid config.
        """
        path = self.run_dir / _CONFIG
        if not path.is_file():
            return None
        values = read_json(path, "the settings of a run", "the run's settings are lost; start it again in another directory")
        try:
            return ExperimentConfig.from_dict(values)
        except (TypeError, ValueError) as error:
            raise RunDirectoryError(
                f"{path} does not hold valid settings ({error}); the run's settings are lost, start it again "
                "in another directory."
            ) from error

    def config(self, caller: str) -> ExperimentConfig:
        """The run's settings; for readers that need a run.

        Raises:
            FileNotFoundError: if the directory holds no run (the message names ``caller``).
        """
        config = self.read_config()
        if config is None:
            raise FileNotFoundError(
                f"{caller}: run_dir must hold a config.json written by lth-prune run or transfer, got "
                f"{str(self.run_dir)!r}."
            )
        return config

    def read_transfer(self) -> dict[str, Any] | None:
        """What a transfer's directory says about its source, or ``None`` for an ordinary run."""
        path = self.run_dir / TRANSFER_FILE
        if not path.is_file():
            return None
        return read_json(path, "a transfer's description", "copy it again from where the transfer ran")

    def read_results(self, caller: str) -> dict[str, Any]:
        """``results.json`` as written.

        Raises:
            FileNotFoundError: if there is none (the run is not finished, or not a run).
            RunDirectoryError: if it is unreadable.
        """
        path = self.run_dir / _RESULTS
        if not path.is_file():
            raise FileNotFoundError(
                f"{caller}: run_dir must hold a results.json written by lth-prune run, got {str(self.run_dir)!r}."
            )
        data = read_json(path, "the results of a run", f"rewrite it with lth-prune run --out {self.run_dir} --resume")
        if not isinstance(data, dict) or not isinstance(data.get("levels"), list) or "config" not in data:
            raise RunDirectoryError(
                f"{path} is not a results file (no config and levels); rewrite it with "
                f"lth-prune run --out {self.run_dir} --resume."
            )
        return data

    def results_files(self) -> list[Path]:
        """The files that describe the run as a whole and exist: results, CSV, transfer."""
        paths = [self.run_dir / name for name in (_RESULTS, _RESULTS_CSV, TRANSFER_FILE, _STABILITY)]
        return [path for path in paths if path.is_file()]

    def finished_levels(self, seed: int) -> list[int]:
        """The levels of ``seed`` that finished (their ``record.json`` exists), ascending."""
        if not self.run_dir.is_dir():
            return []
        levels = []
        for path in self.run_dir.iterdir():
            match = _LEVEL.fullmatch(path.name)
            if match and (path / f"seed_{seed}" / _RECORD).is_file():
                levels.append(int(match.group(1)))
        return sorted(levels)

    def record(self, level: int, seed: int) -> dict[str, Any]:
        """One finished level's measurements.

        Raises:
            RunDirectoryError: if the record is missing, unreadable or of another level or seed.
        """
        path = self._level_dir(level, seed) / _RECORD
        record = read_json(path, "a level's record", self._redo_hint(level, seed))
        if not isinstance(record, dict) or record.get("level") != level or record.get("seed") != seed:
            raise RunDirectoryError(
                f"{path} is not the record of level {level}, seed {seed}; {self._redo_hint(level, seed)}."
            )
        return record

    def trained(self, level: int, seed: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """A finished level's trained state and masks, on the CPU.

        Raises:
            RunDirectoryError: if the file is missing, truncated or not a checkpoint.
        """
        path = self._level_dir(level, seed) / _TRAINED
        payload = read_torch(path, "a level's trained weights", self._redo_hint(level, seed))
        if not (
            isinstance(payload, dict) and tensor_dict(payload.get("state")) and tensor_dict(payload.get("masks"))
        ):
            raise RunDirectoryError(
                f"{path} is not a trained checkpoint (no state and masks); {self._redo_hint(level, seed)}."
            )
        return payload["state"], payload["masks"]

    def ticket(self, level: int, seed: int) -> tuple[dict[str, Tensor], dict[str, Tensor], int]:
        """A finished level's ticket: boolean masks, rewind point (zeros where pruned) and step.

        Raises:
            RunDirectoryError: if the file is missing, truncated or not a ticket.
        """
        path = self._level_dir(level, seed) / _TICKET
        if not path.is_file():
            raise RunDirectoryError(f"{path} is missing; {self._redo_hint(level, seed)}.")
        try:
            return read_ticket(io.BytesIO(path.read_bytes()))
        except Exception as error:  # noqa: BLE001 - torch raises many kinds on a damaged file
            raise RunDirectoryError(
                f"{path} is not a readable ticket ({reason(error)}); {self._redo_hint(level, seed)}."
            ) from error

    def rewind_point(self, seed: int) -> RewindPoint:
        """A seed's full rewind point: every parameter and buffer, pruned positions included.

        Runs written before this file existed keep the same state in their level-0 ticket, which
        masks nothing and so holds every value.

        Raises:
            RunDirectoryError: if neither file is readable.
        """
        path = self._rewind_path(seed)
        if not path.is_file() and (self._level_dir(0, seed) / _TICKET).is_file():
            _, state, step = self.ticket(0, seed)
            return RewindPoint(state, step)
        hint = f"delete {self.run_dir / 'level_0'} / seed_{seed} and {path}, then resume to recompute them"
        payload = read_torch(path, "a rewind point", hint)
        if not (isinstance(payload, dict) and payload.get("format") == _REWIND_FORMAT and tensor_dict(payload.get("state"))):
            raise RunDirectoryError(f"{path} is not a rewind point written by lth_prune; {hint}.")
        return RewindPoint(payload["state"], int(payload["step"]))

    # -- internals ------------------------------------------------------------------------------

    def _level_dir(self, level: int, seed: int) -> Path:
        return self.run_dir / f"level_{level}" / f"seed_{seed}"

    def _rewind_path(self, seed: int) -> Path:
        return self.run_dir / _REWIND_POINTS / f"seed_{seed}.pt"

    def _redo_hint(self, level: int, seed: int) -> str:
        return f"delete {self._level_dir(level, seed)} and resume (lth-prune run --out {self.run_dir} --resume) to recompute it"

    def _write(self, path: Path, data: bytes) -> None:
        write_atomic(path, data)


