"""What a run needs before its first level: device, data, model factory, run directory."""
from __future__ import annotations

import copy
import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Union

import torch
from torch import nn

from lth_prune import distributed, models
from lth_prune.data import DataSplits, load_dataset
from lth_prune.imp.config import EXECUTION_SETTINGS, ExperimentConfig
from lth_prune.imp.results import RunStore

ModelSource = Union[nn.Module, Callable[[], nn.Module], None]


@dataclass
class Setup:
    """What every level of every seed shares."""

    config: ExperimentConfig
    data: DataSplits
    device: torch.device
    make_model: Callable[[int], nn.Module]
    iterations: int
    eval_every: int
    progress: bool
    test_loader: Any


def prepare(
    config: ExperimentConfig,
    model: ModelSource,
    data: DataSplits | None,
    progress: bool | None,
    device: torch.device | None = None,
) -> Setup:
    """Resolve the device, load and check the data, and work out the training length."""
    device = device or resolve_device(config.device)
    if data is None:
        data = load_dataset(
            config.dataset, data_dir=config.data_dir, val_size=config.val_size, limit=config.limit,
            download=config.download,
        )
    elif not isinstance(data, DataSplits):
        raise TypeError(f"run(): data must be a lth_prune.data.DataSplits, got {type(data).__name__}.")
    if data.train_x.device != device:
        # Moved once here, not by every round's loaders: on a GPU each round would copy it again.
        data = dataclasses.replace(data, **{
            name: getattr(data, name).to(device)
            for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
        })
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
    progress = progress and distributed.is_main_process()
    test_loader = data.loaders(1000, device=device)[2]
    return Setup(config, data, device, model_factory(config, model, data), iterations, eval_every, progress, test_loader)


def model_factory(config: ExperimentConfig, model: ModelSource, data: DataSplits) -> Callable[[int], nn.Module]:
    """A function ``seed -> freshly initialized model``."""
    if model is not None and not isinstance(model, nn.Module) and not callable(model):
        raise TypeError(f"run(): model must be an nn.Module or a function returning one, got {type(model).__name__}.")

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

    return build


def open_store(config: ExperimentConfig, run_dir: str | Path | None, resume: bool) -> RunStore | None:
    """Check ``run_dir`` against ``resume`` and the config it holds; write nothing yet."""
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
        current = config.to_dict()
        differs = sorted(
            key for key, value in saved.to_dict().items()
            if key not in EXECUTION_SETTINGS and current[key] != value
        )
        if differs:
            raise ValueError(
                f"run(): resume needs the config the run started with; these settings differ: {differs}."
            )
    return store


def make_optimizer(net: nn.Module, config: ExperimentConfig) -> torch.optim.Optimizer:
    """The config's optimizer over ``net``'s parameters."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return kind(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def augments(config: ExperimentConfig) -> bool:
    """Whether training batches get random crops and flips (default: CIFAR-10 only)."""
    return config.augment if config.augment is not None else config.dataset.lower().startswith("cifar")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` is CUDA when available; a CUDA device that is not there is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"run(): device must be available, got {name!r} but CUDA is not available here.")
    return device
