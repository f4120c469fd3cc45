"""Iterative magnitude pruning: :func:`run` and its level loop.

Each level of a seed: the method's search (:mod:`~lth_prune.imp.searches`; IMP: prune the
previous level's trained network, measure it without retraining, let the rewind policy reset
it) hands over the level's network; the loop trains it (the ticket), trains each branch the
config names from the level's ticket, and checkpoints. Everything the loop asks is owned
elsewhere: the settings' checks (:mod:`~lth_prune.imp.setup`), the masks
(:mod:`~lth_prune.imp.pruning`), the rewinding (:mod:`~lth_prune.imp.rewinding`), the branches
(:mod:`~lth_prune.imp.branches`), one network's training (:mod:`~lth_prune.imp.phases`) and
the run directory (:mod:`~lth_prune.imp.store.rundir`).
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm.auto import tqdm

from lth_prune import distributed
from lth_prune.data import DataSplits
from lth_prune.execution.jobs import map_in_workers
from lth_prune.execution.tensorboard import RunLogger
from lth_prune.imp.branches import BRANCHES, LevelTicket
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.phases import sparsity_record, train_network, trainer
from lth_prune.imp.store import Results, RunStore
from lth_prune.imp.searches import METHODS
from lth_prune.imp.setup import ModelSource, Setup, prepare
from lth_prune.masks import get_masks
from lth_prune.rewind import capture_state
from lth_prune.tickets import save_ticket

__all__ = ["run"]


def run(
    config: ExperimentConfig,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    model: ModelSource = None,
    data: DataSplits | None = None,
    progress: bool | None = None,
) -> Results:
    """Run iterative magnitude pruning as ``config`` says and return the results.

    Every setting, the data, the model and the run directory are checked before the first
    optimizer step and before anything is written. While it writes, the run holds a lock on
    ``run_dir``: a second run into the same directory fails at once.

    Args:
        config: the settings.
        run_dir: where to write config, results and per-level checkpoints; ``None`` keeps
            everything in memory (no resume). Figures are drawn by :func:`lth_prune.report.plot_run`
            (``lth-prune run`` calls it).
        resume: continue the run in ``run_dir`` from its last finished level; gives the same
            results as an uninterrupted run.
        model: your own model instead of ``config.model``: a function returning a freshly
            initialized model, or a module (each initialization is then a copy of it whose
            layers' ``reset_parameters()`` were called under the run's seed).
        data: your own :class:`lth_prune.data.DataSplits` instead of ``config.dataset``.
        progress: show progress bars; default: when standard error is a terminal.

    Returns:
        The :class:`Results`, also written to ``run_dir``.

    Raises:
        TypeError: if ``config``, ``model`` or ``data`` has the wrong type.
        ValueError: if a setting does not fit the data or model, ``resume`` is asked without
            ``run_dir``, for a directory holding no run or with a different config, or
            ``run_dir`` already holds a run and ``resume`` is false.
        RuntimeError: if another process is writing into ``run_dir``.
        FileNotFoundError: if the data set is not found (the message says where it looked).

    Example:
        >>> config = ExperimentConfig(dataset="synthetic", rounds=1, epochs=1, controls=())
        >>> results = run(config, progress=False)
        >>> [round(level["weights_remaining"], 3) for level in results.levels]
        [1.0, 0.801]
    """
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"run(): config must be an ExperimentConfig, got {type(config).__name__}.")
    created_group, rank_device = distributed.init_from_env(config.device)
    try:
        store = None if run_dir is None else RunStore(run_dir)
        _check_run_dir(config, store, resume)
        setup = prepare(config, model, data, progress, device=rank_device)
        setup.policy.check_length(setup.iterations, "run()")
        METHODS.get(config.method).check(setup)
        if distributed.world_size() > 1:
            torch.distributed.barrier()  # every rank has checked run_dir before rank 0 writes
        writer = store if distributed.is_main_process() else None
        with _writing(writer, config, resume):
            METHODS.get(config.method).begin(setup, writer)
            records = _run_seeds(setup, store, writer, model, data)
            results = Results.from_records(config, records, None if store is None else store.run_dir)
            if writer is not None:
                results.save(writer.run_dir)
        return results
    finally:
        if created_group:
            torch.distributed.destroy_process_group()


def _check_run_dir(config: ExperimentConfig, store: RunStore | None, resume: bool) -> bool:
    """Whether the run starts afresh (:meth:`RunStore.check_start`; in memory: always)."""
    if store is None:
        if resume:
            raise ValueError("run(): resume=True needs run_dir, the directory of the run to continue.")
        return True
    return store.check_start(config, resume, "run()")


@contextlib.contextmanager
def _writing(writer: RunStore | None, config: ExperimentConfig, resume: bool) -> Iterator[None]:
    """Hold the run directory's lock for the whole run; write the config once it is held."""
    if writer is None:
        yield
        return
    with writer.lock():
        # Checked again under the lock: another run may have started here since the first check.
        if _check_run_dir(config, writer, resume):
            writer.write_config(config)
        yield


def _run_seeds(
    setup: Setup, store: RunStore | None, writer: RunStore | None, model: ModelSource, data: DataSplits | None
) -> list[dict[str, Any]]:
    config = setup.config
    workers = min(config.jobs, len(config.seeds))
    if workers <= 1 or distributed.world_size() > 1:
        return [record for seed in config.seeds for record in _run_seed(setup, seed, store, writer)]
    run_dir = None if store is None else str(store.run_dir)
    arguments = [(config, seed, run_dir, model, data) for seed in config.seeds]
    per_seed = map_in_workers(_seed_job, arguments, workers)
    return [record for records in per_seed for record in records]


def _seed_job(
    config: ExperimentConfig, seed: int, run_dir: str | None, model: ModelSource, data: DataSplits | None
) -> list[dict[str, Any]]:
    setup = prepare(config, model, data, progress=False)
    store = None if run_dir is None else RunStore(run_dir)
    return _run_seed(setup, seed, store, store)


def _run_seed(setup: Setup, seed: int, store: RunStore | None, writer: RunStore | None) -> list[dict[str, Any]]:
    """One seed's levels; ``store`` is read to resume, ``writer`` (rank 0's) is written to."""
    with writer.seed_lock(seed) if writer is not None else contextlib.nullcontext():
        return _levels(setup, seed, store, writer)


def _levels(setup: Setup, seed: int, store: RunStore | None, writer: RunStore | None) -> list[dict[str, Any]]:
    config = setup.config
    log = (RunLogger(config.tensorboard, config.to_dict(), seed, setup.iterations)
           if config.tensorboard and distributed.is_main_process() else None)
    try:
        return _level_loop(setup, seed, store, writer, log)
    finally:
        if log is not None:
            log.close()


def _level_loop(
    setup: Setup, seed: int, store: RunStore | None, writer: RunStore | None, log: RunLogger | None
) -> list[dict[str, Any]]:
    config = setup.config
    search = METHODS.get(config.method)(setup, seed)
    every = search.levels
    records = _finished_records(store, seed, every)
    if store is not None and records:
        for record in records:
            store.ticket(record["level"], seed)  # a damaged ticket is named now, not found by a later reader
        search.resume(store, len(records))
    levels = tqdm(
        every[len(records):], desc=f"seed {seed}", disable=not setup.progress, initial=len(records), total=len(every),
    )
    for level in levels:
        started = time.perf_counter()
        # Present at level 0 too, unmeasured, so every level has the same keys.
        record: dict[str, Any] = {"level": level, "seed": seed, "no_retrain_accuracy": None}
        record.update({metric: None for name in config.controls for metric in BRANCHES.get(name).metrics})
        start = search.level(level)
        record.update(start.measured)
        record.update(train_network(
            setup, start.network, seed=seed, level=level, phase=start.phase, start=start.start,
            schedule=start.schedule, optimizer=start.optimizer, masked=start.masked,
            observer=None if log is None else log.phase(level, "ticket"),
        ))
        search.trained(level)
        net = start.network
        record.update(sparsity_record(net))
        record["input_shape"] = list(setup.data.input_shape)
        if level > 0:
            ticket = LevelTicket(level, seed, get_masks(net), search.rewind_point, setup.build, scores=start.scores)
            for name in config.controls:
                record.update(BRANCHES.get(name)().run(ticket, trainer(setup, seed, level, log)))
        record["seconds"] = time.perf_counter() - started
        records.append(record)
        if log is not None:
            log.level(record, net, [metric for name in config.controls for metric in BRANCHES.get(name).metrics])
        if writer is not None:
            if level == 0:
                writer.save_rewind_point(seed, search.rewind_point)
            rewinder = search.rewinder
            writer.save_level(record, capture_state(net), get_masks(net), lambda file: save_ticket(net, file, rewinder))
    return records


def _finished_records(store: RunStore | None, seed: int, levels: list[int]) -> list[dict[str, Any]]:
    """The records of the levels this seed finished, in the order of ``levels``, up to the first missing one."""
    if store is None:
        return []
    finished = set(store.finished_levels(seed))
    count = next((index for index, level in enumerate(levels) if level not in finished), len(levels))
    return [store.record(level, seed) for level in levels[:count]]
