"""Ticket transfer (Morcos et al., "One ticket to win them all", 2019): do winning tickets carry over?

:func:`transfer` takes the tickets (masks and rewind point) a run found on one data set, fits
them to another data set, trains them there and measures them next to the dense network and the
two controls, all trained on the target data with the same settings, at every level of the
source run. The outcome is a :class:`~lth_prune.imp.Results` in a run directory of the usual
form, so tables, figures and the analysis work on it unchanged.

Fitting a ticket to the target data:

* Output layer (the last ``nn.Linear``): kept with its mask and rewind-point values when the
  class counts are equal (``output_layer: "transferred"``). Otherwise it is new
  (``output_layer: "new"``): freshly initialized for the target's classes, with a random mask
  keeping the same fraction of weights as the source's output layer, so every level keeps the
  sparsity of the source level.
* Every other tensor must have the same shape on the target data. Layers that do not depend on
  the image size (convolutions; ResNet-20's global pooling) transfer between sizes as they are.
  When a layer does not fit (LeNet's first layer, the first linear layer after convolutions),
  :func:`transfer` raises ``ValueError`` naming the layer and both input shapes before anything
  is trained, unless ``resize=True``: then the target images are resized to the source's input
  shape with :func:`resize_inputs` (e.g. 8x8 digits to 28x28 for a Fashion-MNIST ticket).

Level 0 of a transfer is the dense network (the source's level-0 rewind point: its
initialization, or step k with late rewinding) trained on the target. Every network trains for
the target config's full schedule from step 0.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from lth_prune import models
from lth_prune.analysis import finished_levels
from lth_prune.data import DataSplits, load_dataset
from lth_prune.imp.config import CONTROLS, ExperimentConfig
from lth_prune.imp.controls import derive_seed, random_masks
from lth_prune.imp.experiment import _sparsity, _train
from lth_prune.imp.results import Results, RunStore, write_atomic
from lth_prune.imp.setup import Setup, prepare
from lth_prune.masks import get_masks, set_masks
from lth_prune.methods import _output_layer
from lth_prune.rewind import capture_state, register_rewind_hooks, restore_state
from lth_prune.tickets import read_ticket, save_ticket

__all__ = ["TRANSFER_FILE", "read_transfer", "resize_inputs", "transfer"]

PathLike = Union[str, "os.PathLike[str]"]
TRANSFER_FILE = "transfer.json"
# Images per step when resizing, so a whole data set is never held twice at full size.
_CHUNK = 4096


@dataclass(frozen=True)
class _Ticket:
    """One source ticket, fitted to the target: what the transferred network starts from."""

    source_seed: int
    level: int
    masks: dict[str, Tensor]  # without the output layer's when it is new
    state: dict[str, Tensor]  # rewind point, without the output layer's tensors when it is new
    output_fraction: float  # fraction of the source output layer's weights kept
    source_test_accuracy: float | None


@dataclass(frozen=True)
class _Plan:
    levels: list[int]
    tickets: dict[tuple[int, int], _Ticket]  # by (source seed, level)
    source_seeds: dict[int, int]  # target seed -> source seed
    output_layer: str  # "new" or "transferred"
    output_name: str
    info: dict[str, Any]


def transfer(
    source: PathLike,
    target: ExperimentConfig | str,
    *,
    levels: Sequence[int] | None = None,
    seed: int | None = None,
    resize: bool = False,
    run_dir: PathLike | None = None,
    data: DataSplits | None = None,
    progress: bool | None = None,
) -> Results:
    """Train the tickets of the run in ``source`` on another data set, with the dense net and controls.

    For each level: the ticket (source mask and rewind point, fitted as the module describes),
    and the controls the target config names: ``random_reinit`` (the same masks on a fresh
    initialization) and ``random_pruning`` (random masks with the same per-layer counts on the
    ticket's starting weights). Level 0, always trained, is the dense reference. Each target
    seed trains the source ticket of the same seed, or of ``seed`` when given.

    Args:
        source: a run directory written by :func:`lth_prune.imp.run`.
        target: the target data set's name (the source's settings are used for training, with
            both controls), or a full config: its ``dataset`` and training settings are used,
            its ``model`` must be the source's.
        levels: source levels to transfer; default: every finished level. Level 0 is added.
        seed: the source seed whose tickets every target seed trains; default: the same seed.
        resize: resize the target images to the source's input shape when a layer would not
            fit otherwise (see :func:`resize_inputs`).
        run_dir: where to write ``config.json`` (the target config), ``transfer.json`` (the
            source run, levels, seeds and how the ticket was fitted), results, figures and one
            checkpoint per level and seed; ``None`` keeps everything in memory.
        data: your own target :class:`lth_prune.data.DataSplits` instead of the config's data set.
        progress: show progress bars; default: when standard error is a terminal.

    Returns:
        The :class:`Results` on the target data. Each level also has ``source_test_accuracy``
        (the ticket's accuracy on the source data) and ``output_layer`` (``"new"`` or
        ``"transferred"``).

    Raises:
        FileNotFoundError: if ``source`` is not a run directory or a ticket file is missing.
        TypeError: if ``target`` or ``data`` has the wrong type.
        ValueError: if the model differs from the source's, a level or seed is not in the
            source run, a layer does not fit the target data (the message names the layer and
            both input shapes), or ``run_dir`` already holds a run. All are checked before any
            training.

    Example:
        >>> import tempfile
        >>> from lth_prune import imp
        >>> source = tempfile.mkdtemp()
        >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=1, epochs=1, controls=())
        >>> _ = imp.run(config, run_dir=source, progress=False)
        >>> results = transfer(source, config.replace(dataset="digits"), progress=False)
        >>> [(level["level"], level["output_layer"]) for level in results.levels]
        [(0, 'new'), (1, 'new')]
    """
    source_dir = Path(source)
    source_config = _read_config(source_dir)
    config = _target_config(source_config, target)
    store = _open_store(run_dir)
    if data is None:
        data = load_dataset(
            config.dataset, data_dir=config.data_dir, val_size=config.val_size, limit=config.limit,
            download=config.download,
        )
    elif not isinstance(data, DataSplits):
        raise TypeError(f"transfer(): data must be a lth_prune.data.DataSplits, got {type(data).__name__}.")
    plan, data = _plan(source_dir, source_config, config, data, levels, seed, resize)
    # The rewind settings describe how the source found its tickets; transferred networks all
    # train the target's full schedule, so the training setup gets none.
    setup = prepare(config.replace(rewind="init", rewind_step=0), None, data, progress)
    if store is not None:
        store.run_dir.mkdir(parents=True, exist_ok=True)
        store.write_config(config)
        write_atomic(store.run_dir / TRANSFER_FILE, json.dumps(plan.info, indent=2))
    records = [record for target_seed in config.seeds for record in _transfer_seed(setup, plan, target_seed, store)]
    results = Results.from_records(config, records)
    for entry in results.levels:
        measured = [r["source_test_accuracy"] for r in entry["seeds"] if r["source_test_accuracy"] is not None]
        entry["source_test_accuracy"] = sum(measured) / len(measured) if measured else None
        entry["output_layer"] = plan.output_layer
    if store is not None:
        results.save(store.run_dir)
        from lth_prune import report

        report.plot_transfer(results, store.run_dir, plan.info)
    return results


def read_transfer(run_dir: PathLike) -> dict[str, Any] | None:
    """What a transfer run directory says about its source (``transfer.json``), or ``None``.

    Returns:
        ``{"source_run", "source_dataset", "source_seeds", "levels", "output_layer", ...}``
        for a directory written by :func:`transfer`; ``None`` for an ordinary run.

    Example:
        >>> read_transfer("no/such/run") is None
        True
    """
    path = Path(run_dir) / TRANSFER_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def resize_inputs(data: DataSplits, input_shape: Sequence[int]) -> DataSplits:
    """The same splits with images of ``input_shape``: resized, channels adapted, re-normalized.

    Images are put back in pixel units, resized bilinearly (antialiased when shrinking),
    averaged to one channel or repeated from one channel when the channel counts differ, and
    normalized again with the new training split's per-channel mean and standard deviation.

    Args:
        data: the splits to resize.
        input_shape: ``(C, H, W)`` wanted.

    Returns:
        New :class:`lth_prune.data.DataSplits` with the same labels, name and classes.

    Raises:
        ValueError: if ``input_shape`` is not 3 positive ints, or the channel counts differ and
            neither is 1.

    Example:
        >>> from lth_prune.data import make_synthetic
        >>> resized = resize_inputs(make_synthetic(100, input_shape=(1, 8, 8)), (3, 28, 28))
        >>> resized.input_shape, tuple(resized.train_x.shape[1:])
        ((3, 28, 28), (3, 28, 28))
    """
    if len(input_shape) != 3 or not all(isinstance(side, int) and side >= 1 for side in input_shape):
        raise ValueError(f"resize_inputs(): input_shape must be (C, H, W) of positive ints, got {tuple(input_shape)!r}.")
    channels = input_shape[0]
    if channels != data.input_shape[0] and 1 not in (channels, data.input_shape[0]):
        raise ValueError(
            f"resize_inputs(): input_shape must have {data.input_shape[0]} channels or 1 (or the data 1), "
            f"got {channels} channels for data with {data.input_shape[0]}."
        )
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    splits = [_resize(getattr(data, f"{split}_x"), mean, std, tuple(input_shape)) for split in ("train", "val", "test")]
    new_mean = splits[0].mean(dim=(0, 2, 3), dtype=torch.float64).float()
    new_std = splits[0].std(dim=(0, 2, 3)).clamp_min(1e-6)
    for images in splits:
        images.sub_(new_mean.view(1, -1, 1, 1)).div_(new_std.view(1, -1, 1, 1))
    return DataSplits(
        train_x=splits[0], train_y=data.train_y, val_x=splits[1], val_y=data.val_y, test_x=splits[2],
        test_y=data.test_y, name=data.name, num_classes=data.num_classes,
        input_shape=tuple(int(side) for side in input_shape),  # type: ignore[arg-type]
        mean=tuple(float(v) for v in new_mean), std=tuple(float(v) for v in new_std),
        class_names=data.class_names,
    )


def _transfer_seed(setup: Setup, plan: _Plan, seed: int, store: RunStore | None) -> list[dict[str, Any]]:
    config, records = setup.config, []
    # One fresh initialization per seed: the new output layer starts from the same values at
    # every level, as an IMP run's ticket does.
    fresh_state = capture_state(setup.make_model(derive_seed(seed, "transfer_init")))
    source_seed = plan.source_seeds[seed]
    for level in tqdm(plan.levels, desc=f"seed {seed}", disable=not setup.progress):
        started = time.perf_counter()
        ticket = plan.tickets[(source_seed, level)]
        masks = dict(ticket.masks)
        if ticket.output_fraction < 1.0 and plan.output_layer == "new":
            shape = fresh_state[plan.output_name].shape
            kept = torch.zeros(shape, dtype=torch.bool).flatten()
            kept[: round(ticket.output_fraction * kept.numel())] = True
            masks.update(random_masks({plan.output_name: kept.view(shape)}, derive_seed(seed, "output_mask", level)))
        start_state = {**fresh_state, **ticket.state}
        net = _network(setup, derive_seed(seed, "transfer_init"), masks, start_state)
        rewinder = register_rewind_hooks(net)  # holds the transferred starting point, saved as the ticket
        record: dict[str, Any] = {
            "level": level, "seed": seed, "source_seed": source_seed, "output_layer": plan.output_layer,
            "source_test_accuracy": ticket.source_test_accuracy,
        }
        record.update({f"{control}_accuracy": None for control in config.controls})
        record.update(_train(setup, net, seed, level, "transferred_ticket", start=0))
        record.update(_sparsity(net))
        if level > 0 and "random_reinit" in config.controls:
            control = _network(setup, derive_seed(seed, "reinit", level), masks, None)
            record["random_reinit_accuracy"] = _train(setup, control, seed, level, "random_reinit", start=0)["test_accuracy"]
        if level > 0 and "random_pruning" in config.controls:
            shuffled = random_masks(masks, derive_seed(seed, "random_mask", level))
            control = _network(setup, derive_seed(seed, "transfer_init"), shuffled, start_state)
            record["random_pruning_accuracy"] = _train(setup, control, seed, level, "random_pruning", start=0)["test_accuracy"]
        record["seconds"] = time.perf_counter() - started
        records.append(record)
        if store is not None:
            trained = {"state": capture_state(net), "masks": get_masks(net)}
            store.save_level(record, trained, lambda path: save_ticket(net, path, rewinder))
    return records


def _network(setup: Setup, init_seed: int, masks: Mapping[str, Tensor], state: Mapping[str, Tensor] | None) -> nn.Module:
    net = setup.make_model(init_seed).to(setup.device)
    set_masks(net, masks)
    if state is not None:
        restore_state(net, state)  # into weight_orig, after the masks, so pruned entries read zero
    return net


def _plan(
    source_dir: Path, source_config: ExperimentConfig, config: ExperimentConfig, data: DataSplits,
    levels: Sequence[int] | None, seed: int | None, resize: bool,
) -> tuple[_Plan, DataSplits]:
    """Choose levels and seeds, read the tickets and check they fit, before anything trains."""
    source_seeds = {target_seed: (target_seed if seed is None else seed) for target_seed in config.seeds}
    chosen: list[int] = []
    for source_seed in sorted(set(source_seeds.values())):
        available = finished_levels(source_dir, source_seed)
        if not available:
            hint = "" if seed is not None else "; pass seed= (--seed) to train one source seed's tickets for every seed"
            raise ValueError(
                f"transfer(): seed must be a seed of the source run {str(source_dir)!r} "
                f"({list(source_config.seeds)}), got {source_seed}{hint}."
            )
        wanted = available if levels is None else sorted({0, *levels})
        missing = [level for level in wanted if level not in available]
        if missing:
            raise ValueError(
                f"transfer(): levels must be finished levels of the source run {str(source_dir)!r} "
                f"({available}), got {missing}."
            )
        chosen = wanted
    raw = {
        (source_seed, level): read_ticket(source_dir / f"level_{level}" / f"seed_{source_seed}" / "ticket.pt")
        for source_seed in set(source_seeds.values()) for level in chosen
    }
    point = next(iter(raw.values()))[1]
    output_name = _output_name(models.get(config.model, num_classes=data.num_classes, input_shape=data.input_shape))
    target_shape = data.input_shape
    source_shape = _source_input_shape(source_dir, source_config, point, output_name) if resize else None
    if source_shape is not None and source_shape != target_shape:
        data = resize_inputs(data, source_shape)
    target_state = capture_state(models.get(config.model, num_classes=data.num_classes, input_shape=data.input_shape))
    output_keys = {output_name, output_name[: -len("weight")] + "bias"}
    source_classes = point[output_name].shape[0] if output_name in point else None
    new_output = source_classes != data.num_classes
    for key in sorted(set(point) | set(target_state)):
        value, expected = point.get(key), target_state.get(key)
        if (key in output_keys and new_output) or (
            value is not None and expected is not None and expected.shape == value.shape
        ):
            continue
        _raise_misfit(key, value, expected, source_dir, source_config, point, output_name, data, resize)
    tickets = {
        key: _fit(key, masks, state, output_name, output_keys if new_output else set(), source_dir)
        for key, (masks, state, _) in raw.items()
    }
    info = {
        "source_run": str(source_dir.resolve()),
        "source_dataset": source_config.dataset,
        "source_config": source_config.to_dict(),
        "source_seeds": {str(k): v for k, v in source_seeds.items()},
        "levels": chosen,
        "output_layer": "new" if new_output else "transferred",
        "output_layer_name": output_name[: -len(".weight")],
        "source_classes": source_classes,
        "target_classes": data.num_classes,
        "target_input_shape": list(target_shape),
        "input_shape": list(data.input_shape),
        "resized": data.input_shape != target_shape,
    }
    return _Plan(chosen, tickets, source_seeds, info["output_layer"], output_name, info), data


def _fit(
    key: tuple[int, int], masks: dict[str, Tensor], state: dict[str, Tensor], output_name: str,
    dropped: set[str], source_dir: Path,
) -> _Ticket:
    source_seed, level = key
    output_mask = masks.get(output_name)
    fraction = 1.0 if output_mask is None else float(torch.count_nonzero(output_mask)) / output_mask.numel()
    record = source_dir / f"level_{level}" / f"seed_{source_seed}" / "record.json"
    accuracy = json.loads(record.read_text()).get("test_accuracy") if record.is_file() else None
    return _Ticket(
        source_seed, level,
        {name: mask for name, mask in masks.items() if name not in dropped},
        {name: value for name, value in state.items() if name not in dropped},
        fraction, accuracy,
    )


def _raise_misfit(
    key: str, value: Tensor | None, expected: Tensor | None, source_dir: Path, source_config: ExperimentConfig,
    point: Mapping[str, Tensor], output_name: str, data: DataSplits, resize: bool,
) -> None:
    source_shape = _source_input_shape(source_dir, source_config, point, output_name)
    found_on = "an unknown input shape" if source_shape is None else f"input shape {source_shape}"
    has = "is missing" if value is None else f"has shape {tuple(value.shape)}"
    needs = "does not exist" if expected is None else f"needs shape {tuple(expected.shape)}"
    advice = (
        f"; pass resize=True (--resize) to resize the target images to {source_shape}"
        if source_shape is not None and source_shape != data.input_shape and not resize else ""
    )
    raise ValueError(
        f"transfer(): the ticket must fit the target data: {key} {has} in the ticket, found on "
        f"{source_config.dataset} ({found_on}), but on {data.name} (input shape {data.input_shape}) "
        f"it {needs}{advice}."
    )


def _source_input_shape(
    source_dir: Path, source_config: ExperimentConfig, point: Mapping[str, Tensor], output_name: str
) -> tuple[int, int, int] | None:
    """The source run's input shape: recorded, or that of its named data set if the ticket fits it."""
    record = source_dir / "level_0" / f"seed_{source_config.seeds[0]}" / "record.json"
    recorded = json.loads(record.read_text()).get("input_shape") if record.is_file() else None
    if recorded is not None:
        return tuple(int(side) for side in recorded)  # type: ignore[return-value]
    try:
        shape = load_dataset(source_config.dataset, data_dir=source_config.data_dir).input_shape
    except (OSError, ValueError):
        return None
    # A run on the caller's own data names the config's data set all the same: trust the
    # shape only if the source model built on it has the ticket's shapes.
    if output_name not in point:
        return None
    classes = point[output_name].shape[0]
    built = capture_state(models.get(source_config.model, num_classes=classes, input_shape=shape))
    fits = set(built) == set(point) and all(built[k].shape == point[k].shape for k in built)
    return shape if fits else None


def _resize(images: Tensor, mean: Tensor, std: Tensor, input_shape: tuple[int, ...]) -> Tensor:
    channels, height, width = input_shape
    out = torch.empty((len(images), channels, height, width), dtype=torch.float32)
    for start in range(0, len(images), _CHUNK):
        chunk = images[start:start + _CHUNK].float() * std + mean  # back to pixel units
        if chunk.shape[1] != channels:
            chunk = chunk.mean(dim=1, keepdim=True) if channels == 1 else chunk.expand(-1, channels, -1, -1)
        if chunk.shape[2:] != (height, width):
            shrinking = height < chunk.shape[2] or width < chunk.shape[3]
            chunk = F.interpolate(chunk, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking)
        out[start:start + _CHUNK] = chunk
    return out


def _output_name(model: nn.Module) -> str:
    output = _output_layer(model)
    names = {id(module): name for name, module in model.named_modules()}
    if output is None:
        raise ValueError(f"transfer(): the model must end in an nn.Linear output layer, got {type(model).__name__}.")
    return f"{names[id(output)]}.weight" if names[id(output)] else "weight"


def _read_config(source_dir: Path) -> ExperimentConfig:
    path = source_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"transfer(): source must be a run directory written by lth-prune run (with config.json), "
            f"got {str(source_dir)!r}."
        )
    return ExperimentConfig.from_dict(json.loads(path.read_text()))


def _target_config(source_config: ExperimentConfig, target: ExperimentConfig | str) -> ExperimentConfig:
    if isinstance(target, str):
        return source_config.replace(dataset=target, controls=CONTROLS)
    if not isinstance(target, ExperimentConfig):
        raise TypeError(f"transfer(): target must be a data set name or an ExperimentConfig, got {type(target).__name__}.")
    if _normalized(target.model) != _normalized(source_config.model):
        raise ValueError(
            f"transfer(): target.model must be the source run's model {source_config.model!r}, got {target.model!r}."
        )
    return target


def _open_store(run_dir: PathLike | None) -> RunStore | None:
    if run_dir is None:
        return None
    store = RunStore(Path(run_dir))
    if (store.run_dir / "config.json").is_file():
        raise ValueError(f"transfer(): run_dir must not hold a run already, got {str(run_dir)!r}; choose another directory.")
    return store


def _normalized(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")
