"""Iterative magnitude pruning with rewinding, its controls, checkpoints and resume.

Each level of a seed: (level > 0) prune the previous level's trained network with
:class:`lth_prune.LotteryTicket` and measure it without retraining; reset it as the rewind
mode says; train; measure; train the controls on the same mask; checkpoint.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.utils.prune as prune
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from lth_prune import distributed
from lth_prune._reparam import output_layer as _output_layer
from lth_prune.data import DataSplits, random_crop_flip
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.controls import derive_seed, random_masks
from lth_prune.imp.results import Results, RunStore
from lth_prune.imp.setup import ModelSource, Setup, augments, make_optimizer, open_store, prepare
from lth_prune.masks import get_masks, set_masks, sparsity_report
from lth_prune.methods import LotteryTicket, PruningRates, prunable, prune_layerwise
from lth_prune.rewind import Rewinder, capture_state, register_rewind_hooks, restore_state
from lth_prune.sparse import masked_training
from lth_prune.tickets import read_ticket, save_ticket
from lth_prune.training import LearningRateSchedule, evaluate, train

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

    Args:
        config: the settings.
        run_dir: where to write config, results, figures and per-level checkpoints; ``None``
            keeps everything in memory (no resume).
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
        ValueError: if ``resume`` is asked without ``run_dir`` or with a different config, or
            ``run_dir`` already holds a finished or started run and ``resume`` is false.
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
        store = open_store(config, run_dir, resume)
        # Data and settings are checked before the run directory is written, so a failed start
        # leaves nothing that a second try would mistake for a run to resume.
        setup = prepare(config, model, data, progress, device=rank_device)
        if distributed.world_size() > 1:
            torch.distributed.barrier()  # every rank has checked run_dir before rank 0 writes
        writer = store if distributed.is_main_process() else None
        if writer is not None:
            writer.run_dir.mkdir(parents=True, exist_ok=True)
            writer.write_config(config)
        records = _run_seeds(setup, store, writer, model, data)
        results = Results.from_records(config, records)
        if writer is not None:
            results.save(writer.run_dir)
            from lth_prune import report

            report.plot_results(results, writer.run_dir)
        return results
    finally:
        if created_group:
            torch.distributed.destroy_process_group()


def _run_seeds(
    setup: Setup, store: RunStore | None, writer: RunStore | None, model: ModelSource, data: DataSplits | None
) -> list[dict[str, Any]]:
    config = setup.config
    jobs = min(config.jobs, len(config.seeds))
    if jobs <= 1 or distributed.world_size() > 1:
        return [record for seed in config.seeds for record in _run_seed(setup, seed, store, writer)]
    # Seeds are independent: run them in separate processes, each with its share of the cores.
    threads = max(1, torch.get_num_threads() // jobs)
    run_dir = None if store is None else str(store.run_dir)
    arguments = [(config, seed, run_dir, model, data, threads) for seed in config.seeds]
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        per_seed = pool.starmap(_seed_job, arguments)
    return [record for records in per_seed for record in records]


def _seed_job(
    config: ExperimentConfig, seed: int, run_dir: str | None, model: ModelSource, data: DataSplits | None,
    threads: int,
) -> list[dict[str, Any]]:
    torch.set_num_threads(threads)
    setup = prepare(config, model, data, progress=False)
    store = None if run_dir is None else RunStore(Path(run_dir))
    return _run_seed(setup, seed, store, store)


def _run_seed(setup: Setup, seed: int, store: RunStore | None, writer: RunStore | None) -> list[dict[str, Any]]:
    """One seed's levels; ``store`` is read to resume, ``writer`` (rank 0's) is written to."""
    config = setup.config
    records = store.finished_records(seed) if store is not None else []
    records = records[: config.rounds + 1]
    net = setup.make_model(derive_seed(seed, "init")).to(setup.device)
    rewinder = register_rewind_hooks(net)
    initial_state = capture_state(net)
    distributed.check_identical(initial_state, f"the initial weights of seed {seed}")
    dense_trained: dict[str, torch.Tensor] | None = None
    if records:
        _restore_level(net, rewinder, store, len(records) - 1, seed)
        if config.one_shot:
            dense_trained = store.load_trained(0, seed)["state"]
    levels = tqdm(
        range(len(records), config.rounds + 1), desc=f"seed {seed}", disable=not setup.progress,
        initial=len(records), total=config.rounds + 1,
    )
    for level in levels:
        started = time.perf_counter()
        # Not measured at level 0 (the dense net), but present so every level has the same keys.
        record: dict[str, Any] = {"level": level, "seed": seed, "no_retrain_accuracy": None}
        record.update({f"{control}_accuracy": None for control in config.controls})
        if level > 0:
            if config.one_shot:
                _prune_one_shot(net, config, level, dense_trained)
            else:
                _prune_round(net, config)
            distributed.check_identical(get_masks(net), f"the masks of seed {seed} at level {level}")
            record["no_retrain_accuracy"] = evaluate(net, setup.test_loader, setup.device).accuracy
            if config.rewind in ("init", "step"):
                rewinder.rewind()
        if level == 0 and config.rewind == "step":
            optimizer = make_optimizer(net, config)
            rewinder = register_rewind_hooks(net, at_step=config.rewind_step, optimizer=optimizer)
            outcome = _train(setup, net, seed, level, "ticket", optimizer=optimizer)
            distributed.check_identical(rewinder.rewind_point, f"the rewind point of seed {seed}")
        else:
            outcome = _train(setup, net, seed, level, "ticket")
        record.update(outcome)
        record.update(_sparsity(net))
        record["input_shape"] = list(setup.data.input_shape)
        if level == 0 and config.one_shot:
            dense_trained = capture_state(net)
        if level > 0:
            record.update(_controls(setup, net, rewinder, initial_state, seed, level))
        record["seconds"] = time.perf_counter() - started
        records.append(record)
        if writer is not None:
            trained = {"state": capture_state(net), "masks": get_masks(net)}
            writer.save_level(record, trained, lambda path: save_ticket(net, path, rewinder))
    return records


def _prune_round(net: nn.Module, config: ExperimentConfig) -> None:
    if config.pruning == "global":
        prune.global_unstructured(
            prunable(net, exclude=config.exclude), pruning_method=LotteryTicket, amount=config.rate
        )
    else:
        prune_layerwise(net, _rates(config), exclude=config.exclude)


def _prune_one_shot(
    net: nn.Module, config: ExperimentConfig, level: int, dense_trained: dict[str, torch.Tensor] | None
) -> None:
    """Prune the dense trained network straight to this level's per-layer or global count."""
    assert dense_trained is not None  # level 0 ran (or was restored) before any level > 0
    set_masks(net, {name: torch.ones_like(mask) for name, mask in get_masks(net).items()})
    restore_state(net, dense_trained)
    pairs = prunable(net, exclude=config.exclude)
    if config.pruning == "global":
        total = sum(module.weight_orig.numel() if prune.is_pruned(module) else module.weight.numel()
                    for module, _ in pairs)
        target = _remaining_after(total, config.rate, level)
        prune.global_unstructured(pairs, pruning_method=LotteryTicket, amount=total - target)
        return
    rates, output = _rates(config), _output_layer(net)
    names = {id(module): name for name, module in net.named_modules()}
    for module, name in pairs:
        total = module.weight_orig.numel() if prune.is_pruned(module) else module.weight.numel()
        rate = rates.rate_for(names[id(module)], module, is_output=module is output)
        LotteryTicket.apply(module, name, amount=total - _remaining_after(total, rate, level))


def _controls(
    setup: Setup, net: nn.Module, rewinder: Rewinder, initial_state: dict[str, torch.Tensor],
    seed: int, level: int,
) -> dict[str, float]:
    config, masks, measured = setup.config, get_masks(net), {}
    if "random_reinit" in config.controls:
        control = setup.make_model(derive_seed(seed, "reinit", level)).to(setup.device)
        set_masks(control, masks)
        measured["random_reinit_accuracy"] = _train(setup, control, seed, level, "random_reinit")["test_accuracy"]
    if "random_pruning" in config.controls:
        control = setup.make_model(derive_seed(seed, "init")).to(setup.device)
        set_masks(control, random_masks(masks, derive_seed(seed, "random_mask", level)))
        late = config.rewind == "step"
        restore_state(control, rewinder.rewind_point if late else initial_state)
        start = config.rewind_step if late else 0
        measured["random_pruning_accuracy"] = _train(
            setup, control, seed, level, "random_pruning", start=start
        )["test_accuracy"]
    return measured


def _train(
    setup: Setup, net: nn.Module, seed: int, level: int, phase: str,
    optimizer: torch.optim.Optimizer | None = None, start: int | None = None,
) -> dict[str, Any]:
    config = setup.config
    schedule = LearningRateSchedule(config.lr, setup.iterations, config.warmup, config.decay)
    if start is None:
        start = config.rewind_step if (phase == "ticket" and level > 0 and config.rewind == "step") else 0
    if phase == "ticket" and level > 0 and config.rewind == "finetune":
        final_lr = schedule(setup.iterations - 1)
        schedule = LearningRateSchedule(final_lr, setup.iterations)
    torch.manual_seed(derive_seed(seed, phase, "train", level))
    train_loader, val_loader, test_loader = setup.data.loaders(
        config.batch_size, device=setup.device, seed=derive_seed(seed, phase, "batches", level),
        augment=random_crop_flip(padding=4) if augments(config) else None,
    )
    optimizer = optimizer or make_optimizer(net, config)
    masking = (
        masked_training(net, optimizer, sparse_density=config.sparse_density)
        if config.masked_training else contextlib.nullcontext()
    )
    with masking:
        trained = net
        if distributed.world_size() > 1:
            # Each rank trains on its shard of every batch; DDP averages the gradients.
            device_ids = [setup.device] if setup.device.type == "cuda" else None
            trained = DistributedDataParallel(net, device_ids=device_ids)
        outcome = train(
            trained, optimizer, train_loader, schedule,
            iterations=setup.iterations, start_iteration=start, val_batches=val_loader,
            test_batches=test_loader, eval_every=setup.eval_every, progress=setup.progress,
            description=f"level {level} {phase.replace('_', ' ')}",
        )
    test = evaluate(net, test_loader, setup.device)
    return {
        "iterations": outcome.iterations,
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "val_accuracy": outcome.final.accuracy,
        "early_stop_iteration": outcome.early_stop_iteration,
        "early_stop_test_accuracy": outcome.early_stop_test.accuracy if outcome.early_stop_test else None,
    }


def _restore_level(net: nn.Module, rewinder: Rewinder, store: RunStore, level: int, seed: int) -> None:
    trained = store.load_trained(level, seed)
    set_masks(net, trained["masks"])
    restore_state(net, {k: v.to(next(net.parameters()).device) for k, v in trained["state"].items()})
    _, rewind_point, rewind_step = read_ticket(store.level_dir(level, seed) / "ticket.pt")
    rewinder.set_rewind_point(rewind_point)
    rewinder.rewind_step = rewind_step


def _sparsity(net: nn.Module) -> dict[str, Any]:
    rows = sparsity_report(net)
    total = sum(row.total for row in rows)
    return {
        "weights_remaining": sum(row.remaining for row in rows) / total,
        "layers": {row.name: row.fraction_remaining for row in rows},
    }


def _rates(config: ExperimentConfig) -> PruningRates:
    return PruningRates(conv=config.conv_rate, linear=config.rate, output=config.output_rate)


def _remaining_after(total: int, rate: float, rounds: int) -> int:
    remaining = total
    for _ in range(rounds):
        remaining -= round(rate * remaining)
    return remaining


