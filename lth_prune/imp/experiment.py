"""Iterative magnitude pruning with rewinding, its controls, checkpoints and resume.

Each level of a seed: (level > 0) prune the previous level's trained network with
:class:`lth_prune.LotteryTicket` and measure it without retraining; reset it as the rewind
mode says; train; measure; train the controls on the same mask; checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import torch
import torch.nn.utils.prune as prune
from torch import nn
from tqdm.auto import tqdm

from lth_prune import models
from lth_prune.data import DataSplits, load_dataset, random_crop_flip
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.controls import derive_seed, random_masks
from lth_prune.imp.results import Results, RunStore
from lth_prune.masked import masked_training
from lth_prune.masks import get_masks, set_masks, sparsity_report
from lth_prune.methods import LotteryTicket, PruningRates, _output_layer, prunable, prune_layerwise
from lth_prune.rewind import Rewinder, capture_state, register_rewind_hooks, restore_state
from lth_prune.tickets import read_ticket, save_ticket
from lth_prune.training import LearningRateSchedule, evaluate, train

__all__ = ["run"]

ModelSource = Union[nn.Module, Callable[[], nn.Module], None]


@dataclass
class _Setup:
    """What every level of every seed shares."""

    config: ExperimentConfig
    data: DataSplits
    device: torch.device
    make_model: Callable[[int], nn.Module]
    iterations: int
    eval_every: int
    progress: bool
    test_loader: Any


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
    store = _open_store(config, run_dir, resume)
    # Data and settings are checked before the run directory is written, so a failed start
    # leaves nothing that a second try would mistake for a run to resume.
    setup = _setup(config, model, data, progress)
    if store is not None:
        store.run_dir.mkdir(parents=True, exist_ok=True)
        store.write_config(config)
    records: list[dict[str, Any]] = []
    for seed in config.seeds:
        records.extend(_run_seed(setup, seed, store))
    results = Results.from_records(config, records)
    if store is not None:
        results.save(store.run_dir)
        from lth_prune import report

        report.plot_results(results, store.run_dir)
    return results


def _run_seed(setup: _Setup, seed: int, store: RunStore | None) -> list[dict[str, Any]]:
    config = setup.config
    records = store.finished_records(seed) if store is not None else []
    records = records[: config.rounds + 1]
    net = setup.make_model(derive_seed(seed, "init")).to(setup.device)
    rewinder = register_rewind_hooks(net)
    initial_state = capture_state(net)
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
            record["no_retrain_accuracy"] = evaluate(net, setup.test_loader, setup.device).accuracy
            if config.rewind in ("init", "step"):
                rewinder.rewind()
        if level == 0 and config.rewind == "step":
            optimizer = _optimizer(net, config)
            rewinder = register_rewind_hooks(net, at_step=config.rewind_step, optimizer=optimizer)
            outcome = _train(setup, net, seed, level, "ticket", optimizer=optimizer)
        else:
            outcome = _train(setup, net, seed, level, "ticket")
        record.update(outcome)
        record.update(_sparsity(net))
        if level == 0 and config.one_shot:
            dense_trained = capture_state(net)
        if level > 0:
            record.update(_controls(setup, net, rewinder, initial_state, seed, level))
        record["seconds"] = time.perf_counter() - started
        records.append(record)
        if store is not None:
            trained = {"state": capture_state(net), "masks": get_masks(net)}
            store.save_level(record, trained, lambda path: save_ticket(net, path, rewinder))
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
    setup: _Setup, net: nn.Module, rewinder: Rewinder, initial_state: dict[str, torch.Tensor],
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
    setup: _Setup, net: nn.Module, seed: int, level: int, phase: str,
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
        augment=random_crop_flip(padding=4) if _augment(config) else None,
    )
    optimizer = optimizer or _optimizer(net, config)
    masking = masked_training(net, optimizer) if config.masked_training else contextlib.nullcontext()
    with masking:
        outcome = train(
            net, optimizer, train_loader, schedule,
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


def _setup(
    config: ExperimentConfig, model: ModelSource, data: DataSplits | None, progress: bool | None
) -> _Setup:
    device = _device(config.device)
    if data is None:
        data = load_dataset(
            config.dataset, data_dir=config.data_dir, val_size=config.val_size, limit=config.limit,
            download=config.download,
        )
    elif not isinstance(data, DataSplits):
        raise TypeError(f"run(): data must be a lth_prune.data.DataSplits, got {type(data).__name__}.")
    per_epoch = math.ceil(len(data.train_y) / config.batch_size)
    iterations = config.iterations or max(1, math.ceil(config.epochs * per_epoch))
    if config.rewind == "step" and config.rewind_step >= iterations:
        raise ValueError(
            f"run(): rewind_step must be smaller than the iterations per round ({iterations}), "
            f"got {config.rewind_step}."
        )
    eval_every = config.eval_every or per_epoch
    if progress is None:
        progress = sys.stderr.isatty()
    test_loader = data.loaders(1000, device=device)[2]
    return _Setup(
        config, data, device, _model_factory(config, model, data), iterations, eval_every, progress, test_loader
    )


def _model_factory(config: ExperimentConfig, model: ModelSource, data: DataSplits) -> Callable[[int], nn.Module]:
    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        if model is None:
            return models.get(config.model, num_classes=data.num_classes, input_shape=data.input_shape)
        if isinstance(model, nn.Module):
            fresh = copy.deepcopy(model)
            for module in fresh.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            return fresh
        built = model()
        if not isinstance(built, nn.Module):
            raise TypeError(f"run(): model() must return an nn.Module, got {type(built).__name__}.")
        return built

    if model is not None and not isinstance(model, nn.Module) and not callable(model):
        raise TypeError(f"run(): model must be an nn.Module or a function returning one, got {type(model).__name__}.")
    return build


def _open_store(config: ExperimentConfig, run_dir: str | Path | None, resume: bool) -> RunStore | None:
    if run_dir is None:
        if resume:
            raise ValueError("run(): resume=True needs run_dir, the directory of the run to continue.")
        return None
    store = RunStore(Path(run_dir))
    saved = store.read_config()
    if saved is not None and not resume:
        raise ValueError(
            f"run(): run_dir {str(run_dir)!r} already holds a run; pass resume=True (--resume) to "
            "continue it, or choose another directory."
        )
    if saved is not None:
        differs = sorted(k for k, v in saved.to_dict().items() if k != "device" and config.to_dict()[k] != v)
        if differs:
            raise ValueError(
                f"run(): resume needs the config the run started with; these settings differ: {differs}."
            )
    return store


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


def _optimizer(net: nn.Module, config: ExperimentConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return kind(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _augment(config: ExperimentConfig) -> bool:
    return config.augment if config.augment is not None else config.dataset.lower().startswith("cifar")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run(): device must be available, got {name!r} but CUDA is not available here.")
    return device
