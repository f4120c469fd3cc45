"""Fitting a run's tickets to another data set: levels and seeds, output layer, input shape.

Everything here runs before any training, so a ticket that does not fit is an error that costs
nothing. :func:`resize_inputs` is the one adaptation of the data: images resized to the
source's input shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lth_prune import models
from lth_prune.layers import output_layer
from lth_prune.data import DataSplits, load_dataset
from lth_prune.data.splits import channel_statistics, normalise_
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.store import RunStore
from lth_prune.rewind import capture_state

__all__ = ["FittedTicket", "TransferPlan", "plan_transfer", "resize_inputs"]

# Images per step when resizing, so a whole data set is never held twice at full size.
_CHUNK = 4096


@dataclass(frozen=True)
class FittedTicket:
    """One source ticket's mask, fitted to the target."""

    source_seed: int
    level: int
    masks: dict[str, Tensor]  # without the output layer's when it is new
    output_fraction: float  # fraction of the source output layer's weights kept
    source_test_accuracy: float | None


@dataclass(frozen=True)
class TransferPlan:
    """What :func:`lth_prune.imp.transfer.transfer` trains: checked tickets and how they were fitted.

    ``rewind_points`` are the source seeds' full rewind points (pruned positions included, the
    output layer's tensors left out when it is new): where the ticket and every branch start.
    """

    levels: list[int]
    tickets: dict[tuple[int, int], FittedTicket]  # by (source seed, level)
    rewind_points: dict[int, dict[str, Tensor]]  # by source seed
    source_seeds: dict[int, int]  # target seed -> source seed
    output_layer: str  # "new" or "transferred"
    output_name: str
    info: dict[str, Any]


def plan_transfer(
    source: RunStore, source_config: ExperimentConfig, config: ExperimentConfig, data: DataSplits,
    levels: Sequence[int] | None, seed: int | None, resize: bool,
) -> tuple[TransferPlan, DataSplits]:
    """Choose the levels and seeds, read the tickets and check they fit the target, before anything trains.

    Args:
        source: the source run's store.
        source_config: its settings.
        config: the target settings (their ``seeds`` are the trainings on the target).
        data: the target data.
        levels: source levels; ``None`` for all (level 0 is always added).
        seed: the source seed for every target seed; ``None`` pairs equal seeds.
        resize: resize ``data`` to the source's input shape if they differ.

    Returns:
        The plan, and the target data (resized if asked and needed).

    Raises:
        ValueError: if a seed or level is not in the source run, or a tensor does not fit (the
            message names it, its shapes and both input shapes).
    """
    source_dir = source.run_dir
    source_seeds = {target_seed: (target_seed if seed is None else seed) for target_seed in config.seeds}
    chosen: list[int] = []
    for source_seed in sorted(set(source_seeds.values())):
        available = source.finished_levels(source_seed)
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
    used = sorted(set(source_seeds.values()))
    masks = {(source_seed, level): source.ticket(level, source_seed)[0] for source_seed in used for level in chosen}
    points = {source_seed: source.rewind_point(source_seed).state for source_seed in used}
    point = points[used[0]]
    output_name = _output_name(models.get(config.model, num_classes=data.num_classes, input_shape=data.input_shape))
    target_shape = data.input_shape
    source_shape = _source_input_shape(source, source_config, point, output_name) if resize else None
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
        _raise_misfit(key, value, expected, source, source_config, point, output_name, data, resize)
    dropped = output_keys if new_output else set()
    tickets = {key: _fit(key, ticket_masks, output_name, dropped, source) for key, ticket_masks in masks.items()}
    fitted_points = {
        source_seed: {name: value for name, value in state.items() if name not in dropped}
        for source_seed, state in points.items()
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
    plan = TransferPlan(chosen, tickets, fitted_points, source_seeds, info["output_layer"], output_name, info)
    return plan, data


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
    # The same statistics as every data set's (training split, population std), in pixel units.
    new_mean, new_std = channel_statistics(splits[0])
    for images in splits:
        normalise_(images, new_mean, new_std)
    return DataSplits(
        train_x=splits[0], train_y=data.train_y, val_x=splits[1], val_y=data.val_y, test_x=splits[2],
        test_y=data.test_y, name=data.name, num_classes=data.num_classes,
        input_shape=tuple(int(side) for side in input_shape),  # type: ignore[arg-type]
        mean=tuple(float(v) for v in new_mean), std=tuple(float(v) for v in new_std),
        class_names=data.class_names,
    )


def _fit(
    key: tuple[int, int], masks: dict[str, Tensor], output_name: str, dropped: set[str], source: RunStore,
) -> FittedTicket:
    source_seed, level = key
    output_mask = masks.get(output_name)
    fraction = 1.0 if output_mask is None else float(torch.count_nonzero(output_mask)) / output_mask.numel()
    accuracy = source.record(level, source_seed).get("test_accuracy")
    kept = {name: mask for name, mask in masks.items() if name not in dropped}
    return FittedTicket(source_seed, level, kept, fraction, accuracy)


def _raise_misfit(
    key: str, value: Tensor | None, expected: Tensor | None, source: RunStore, source_config: ExperimentConfig,
    point: Mapping[str, Tensor], output_name: str, data: DataSplits, resize: bool,
) -> None:
    source_shape = _source_input_shape(source, source_config, point, output_name)
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
    source: RunStore, source_config: ExperimentConfig, point: Mapping[str, Tensor], output_name: str
) -> tuple[int, int, int] | None:
    """The source run's input shape: recorded, or that of its named data set if the ticket fits it."""
    seed = source_config.seeds[0]
    recorded = source.record(0, seed).get("input_shape") if 0 in source.finished_levels(seed) else None
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
    output = output_layer(model)
    names = {id(module): name for name, module in model.named_modules()}
    if output is None:
        raise ValueError(f"transfer(): the model must end in an nn.Linear output layer, got {type(model).__name__}.")
    return f"{names[id(output)]}.weight" if names[id(output)] else "weight"
