"""What a run needs before its first step, all checked before anything is trained or written.

:func:`prepare` resolves the device, loads and checks the data, works out the training length,
and builds the model once to check it against the data and the settings (``exclude`` names,
something to prune, the input shape): a mistake there costs nothing and leaves nothing behind.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Union

import torch
from torch import nn

from lth_prune import distributed, models
from lth_prune.data import DataSplits, InMemoryLoader, load_dataset, random_crop_flip
from lth_prune.execution.tensorboard import check_tensorboard
from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.pruning import check_pruning
from lth_prune.imp.rewinding import REWIND_POLICIES, RewindPolicy
from lth_prune.imp.searches.base import METHODS
from lth_prune.models.external import is_external
from lth_prune.training import LearningRateSchedule

__all__ = ["ModelSource", "Setup", "make_optimizer", "prepare", "resolve_device"]

ModelSource = Union[nn.Module, Callable[[], nn.Module], None]
# Evaluation batches: large, as evaluation needs no gradient; the split's order is kept.
EVAL_BATCH = 1000


@dataclass
class Setup:
    """What every level of every seed shares.

    Attributes:
        config: the settings.
        data: the splits, on ``device``.
        device: where everything trains.
        iterations: optimizer steps per training.
        eval_every: steps between validation evaluations.
        schedule: the learning-rate schedule every network trains with (the rewind policy may
            replace it for the ticket).
        policy: the rewind policy of ``config.rewind``.
        progress: whether to show progress bars.
        val_loader: the validation split in evaluation batches.
        test_loader: the test split in evaluation batches.
        needs_scores: whether a branch of the run needs the scores a level's mask was chosen by.
        plan: what the method worked out for the whole run before any work (its search's
            ``plan``; transfer: the source's tickets fitted to the data), or ``None``.
    """

    config: ExperimentConfig
    data: DataSplits
    device: torch.device
    iterations: int
    eval_every: int
    schedule: LearningRateSchedule
    policy: RewindPolicy
    progress: bool
    val_loader: InMemoryLoader
    test_loader: InMemoryLoader
    needs_scores: bool
    _factory: Callable[[int], nn.Module]
    plan: Any = None

    def build(self, seed: int) -> nn.Module:
        """A freshly initialized network under ``torch.manual_seed(seed)``, on the device."""
        return self._factory(seed).to(self.device)

    def train_loader(self, seed: int) -> InMemoryLoader:
        """Training batches shuffled by ``seed`` (and augmented where the config says so)."""
        augment = random_crop_flip(padding=4) if augments(self.config) else None
        return InMemoryLoader(
            self.data.train_x, self.data.train_y, self.config.batch_size, shuffle=True, augment=augment,
            generator=torch.Generator().manual_seed(seed),
        )


def prepare(
    config: ExperimentConfig,
    model: ModelSource,
    data: DataSplits | None,
    progress: bool | None,
    device: torch.device | None = None,
    *,
    caller: str = "run()",
) -> Setup:
    """Check everything a run depends on, and gather what its levels share.

    Args:
        config: the settings.
        model: the caller's model or model function, or ``None`` for ``config.model``.
        data: the caller's splits, or ``None`` to load ``config.dataset``.
        progress: show progress bars; ``None``: when standard error is a terminal.
        device: this rank's device under ``torchrun``; default: ``config.device``.
        caller: the public function named in error messages.

    Raises:
        TypeError: if ``model`` or ``data`` has the wrong type.
        ValueError: if the settings do not fit the data or the model (an ``exclude`` name that
            is not a layer, nothing to prune, a rewind step or warm-up beyond the training,
            inputs the model cannot take).
        FileNotFoundError: if the data set's files are not found.
    """
    check_tensorboard(config.tensorboard, caller)
    device = device or resolve_device(config.device)
    if data is None:
        data = load_dataset(
            config.dataset, data_dir=config.data_dir, val_size=config.val_size, limit=config.limit,
            download=config.download,
        )
    elif not isinstance(data, DataSplits):
        raise TypeError(f"{caller}: data must be a lth_prune.data.DataSplits, got {type(data).__name__}.")
    plan, data = METHODS.get(config.method).plan(config, data)
    if data.train_x.device != device:
        # Moved once here, not by every round's loaders: on a GPU each round would copy it again.
        data = dataclasses.replace(data, **{
            name: getattr(data, name).to(device)
            for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
        })
    per_epoch = math.ceil(len(data.train_y) / config.batch_size)
    iterations = config.iterations or max(1, math.ceil(config.epochs * per_epoch))
    policy = REWIND_POLICIES.get(config.rewind)(config.rewind_step)
    if config.warmup >= iterations:
        raise ValueError(
            f"{caller}: warmup must be shorter than the iterations per round ({iterations}), got {config.warmup}."
        )
    factory = _model_factory(config, model, data, caller)
    _check_model(factory(0), config, data, caller)
    if progress is None:
        progress = sys.stderr.isatty()
    return Setup(
        config=config, data=data, device=device, iterations=iterations,
        eval_every=config.eval_every or per_epoch,
        schedule=LearningRateSchedule(config.lr, iterations, config.warmup, config.decay),
        policy=policy, progress=progress and distributed.is_main_process(),
        val_loader=InMemoryLoader(data.val_x, data.val_y, EVAL_BATCH, shuffle=False),
        test_loader=InMemoryLoader(data.test_x, data.test_y, EVAL_BATCH, shuffle=False),
        needs_scores=any(BRANCHES.get(name).needs_scores for name in config.controls),
        _factory=factory, plan=plan,
    )


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


def _model_factory(
    config: ExperimentConfig, model: ModelSource, data: DataSplits, caller: str
) -> Callable[[int], nn.Module]:
    """A function ``seed -> freshly initialized model`` (on the CPU)."""
    if model is not None and not isinstance(model, nn.Module) and not callable(model):
        raise TypeError(f"{caller}: model must be an nn.Module or a function returning one, got {type(model).__name__}.")

    def build(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        if model is None:
            return models.get(config.model, num_classes=data.num_classes, input_shape=data.input_shape,
                              **(config.model_kwargs or {}))
        if isinstance(model, nn.Module):
            fresh = copy.deepcopy(model)
            for module in fresh.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            return fresh
        built = model()
        if not isinstance(built, nn.Module):
            raise TypeError(f"{caller}: model() must return an nn.Module, got {type(built).__name__}.")
        return built

    return build


def _check_model(net: nn.Module, config: ExperimentConfig, data: DataSplits, caller: str) -> None:
    check_pruning(net, config, caller)
    # Also loads what torch's optimizers import on first use (about 1.5 s, torch._dynamo), which
    # would otherwise be paid inside the first level.
    make_optimizer(net, config)
    inputs = data.val_x[:2] if len(data.val_y) else data.train_x[:2]
    net.to(inputs.device).eval()
    try:
        with torch.no_grad():
            logits = net(inputs)
    except Exception as error:  # whatever the model raises (timm asserts its input size): its own words
        hint = ""
        if is_external(config.model):
            hint = (
                "; another library's model is built for its own input size unless told otherwise: pass "
                "it in model_kwargs (--model-kwargs), e.g. img_size for timm, image_size for torchvision's "
                "ViT (torchvision's CNNs take 3-channel images)"
            )
        raise ValueError(
            f"{caller}: the model must take the data's inputs of shape {tuple(data.input_shape)} "
            f"({data.name}), got {type(error).__name__} from its forward pass: {str(error).rstrip('.')}{hint}."
        ) from error
    if logits.dim() != 2 or logits.shape[1] != data.num_classes:
        raise ValueError(
            f"{caller}: the model must output (N, {data.num_classes}) logits for {data.name}'s "
            f"{data.num_classes} classes, got shape {tuple(logits.shape)}."
        )
