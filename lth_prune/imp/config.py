"""The experiment's settings: :class:`ExperimentConfig`, its validation and the paper's presets."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from lth_prune.data import DATASETS
from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.rewinding import REWIND_POLICIES
from lth_prune.imp.searches.base import METHODS
from lth_prune.models import MODELS
from lth_prune.models.external import check_external, is_external
from lth_prune.registry import load_plugins

__all__ = ["PRESETS", "ExperimentConfig"]

# Settings chosen from a registry (MODELS, DATASETS, METHODS, REWIND_POLICIES, BRANCHES) are
# checked against it when a config is made, never against a copy: an entry registered later, from
# a user's module, is a valid setting. The fixed choices:
OPTIMIZERS = ("sgd", "adam", "adamw")
DECAYS = ("constant", "cosine", "step")
# Settings that say how a run executes, not what it computes: they are left out of the run's
# name and may change when a run is resumed.
EXECUTION_SETTINGS = ("device", "data_dir", "download", "jobs", "tensorboard", "plugins")
PRUNING_MODES = ("layerwise", "global")
BATCHNORM_MODES = ("plain", "reestimate")


@dataclass(frozen=True)
class ExperimentConfig:
    """Every setting of an iterative magnitude pruning (IMP) experiment.

    The defaults are the quick built-in run: LeNet-300-100 on scikit-learn's digits at the
    paper's rates (fully connected 20 %, output 10 % per round), with the random
    re-initialization control. ``ExperimentConfig.preset(name)`` gives the paper's settings.

    Args:
        model: a name from :data:`lth_prune.models.MODELS`, or another library's model,
            ``"torchvision:<name>"`` or ``"timm:<name>"`` (freshly initialized for the data).
        model_kwargs: keyword arguments for the model's builder, e.g. ``{"image_size": 32}``
            for a torchvision ViT; the data's class count is passed for you.
        dataset: a name from :data:`lth_prune.data.DATASETS`.
        data_dir: where to look for the data set's files first.
        download: let torchvision download MNIST, Fashion-MNIST or CIFAR-10 into ``data_dir``
            when they are not found (needs a network).
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        lr: peak learning rate.
        momentum: SGD momentum.
        weight_decay: weight decay of the optimizer.
        batch_size: training batch size.
        epochs: training length per round in epochs; used when ``iterations`` is ``None``.
        iterations: training length per round in optimizer steps.
        warmup: optimizer steps of linear learning-rate warm-up.
        decay: learning-rate decay after warm-up: ``"constant"``, ``"cosine"`` or ``"step"``.
        method: how each level's ticket is found, a name from
            :data:`lth_prune.imp.METHODS`: ``"imp"`` (iterative magnitude pruning of the
            trained network, rewound), ``"gmp"`` (gradual magnitude pruning to the level's
            sparsity during training, from 10 % to 75 % of the steps), ``"transfer"`` (the tickets
            of the run in ``transfer_from``, trained on this data set), or a criterion that
            prunes the freshly initialized network to the level's sparsity (``"snip"``,
            ``"grasp"``, ``"synflow"``, ``"magnitude-init"``, ``"random"``).
        rounds: pruning rounds; the run has ``rounds + 1`` levels (level 0 is dense).
        pruning: ``"layerwise"`` (each layer at its own rate) or ``"global"`` (one ranking);
            ``None`` is the method's own default: ``"global"`` for the criteria at
            initialization, ``"layerwise"`` for imp and gmp.
        rate: fraction of remaining weights pruned per round: the fully connected rate when
            layer-wise, the overall rate when global.
        conv_rate: the convolution rate when layer-wise.
        output_rate: the output layer's rate when layer-wise; ``None`` is ``rate / 2``.
        exclude: layer names never pruned.
        rewind: a name from :data:`lth_prune.imp.rewinding.REWIND_POLICIES`: ``"init"`` (to
            initialization), ``"step"`` (to ``rewind_step``, late rewinding), ``"lr"`` (keep
            weights, replay the learning-rate schedule) or ``"finetune"`` (keep weights, train at
            the schedule's final learning rate).
        rewind_step: the optimizer step rewound to when ``rewind="step"``.
        one_shot: prune to each level's sparsity in one step from the dense trained network
            instead of iteratively.
        transfer_from: with ``method="transfer"``: the run directory whose tickets are trained
            on this data set (Morcos et al. 2019; :func:`lth_prune.imp.transfer.transfer`).
        transfer_levels: the source run's levels to transfer; empty: every finished one (level
            0, the dense network, always).
        transfer_seed: the source seed whose tickets every seed trains; ``None``: the same seed.
        resize: resize this data set's images to the source run's input shape where a layer
            would not fit otherwise.
        controls: the branches trained next to the ticket at every level, names from
            :data:`lth_prune.imp.branches.BRANCHES`:
            ``"random_reinit"`` (the ticket's mask on a fresh initialization),
            ``"random_pruning"`` (a random mask with the ticket's per-layer sparsity),
            ``"inverted_scores"`` (keep what the method would prune) and ``"stability"`` (two
            copies from the rewind point, the error along the line between them).
        stability_levels: the levels the ``stability`` branch measures; empty: every level.
        stability_batchnorm: ``"plain"`` (BatchNorm statistics interpolated with the weights) or
            ``"reestimate"`` (recomputed on training batches at every point of the path).
        seeds: one IMP run per seed; results give the mean and spread.
        val_size: examples held out of the training set for validation (int) or a fraction;
            ``None`` uses the data set's default.
        limit: cap on training examples (for quick runs); ``None`` uses all.
        augment: random crop and flip of training batches; ``None`` means on for CIFAR-10.
        eval_every: optimizer steps between validation evaluations; ``None`` is once an epoch.
        masked_training: train pruned networks with :func:`lth_prune.masked_training` (dense
            cost, 1-byte masks) instead of ``torch.nn.utils.prune``'s forward pre-hooks.
        sparse_density: with ``masked_training``, linear layers of at least 2**20 weights
            with at most this fraction of them left train through sparse kernels (Network's
            fully connected layers: 0.57-0.86x the dense step from 10 % down on a 2-core CPU);
            0 keeps every layer dense.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        tensorboard: a directory to write TensorBoard logs into (one run per seed): training loss
            and learning rate, evaluations, each level's accuracies, weights remaining per layer,
            histograms of the surviving weights, the config; needs ``pip install
            lth_prune[tensorboard]``. ``None``: no logs.
        jobs: seeds run side by side in this many processes (each with its share of the CPU
            threads); under ``torchrun`` seeds run one after the other.
        plugins: modules (importable names, or paths of ``.py`` files) that register models,
            data sets, methods, branches or rewind modes of your own; imported before the other
            settings are checked, and again wherever the settings are read back (worker
            processes, sweep jobs, a resumed run, ``lth-prune report`` and ``compare``). See
            :func:`lth_prune.registry.load_plugins`.
    """

    model: str = "lenet300_100"
    model_kwargs: dict[str, Any] | None = None
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    optimizer: str = "adam"
    lr: float = 1.2e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 60
    epochs: float = 10.0
    iterations: int | None = None
    warmup: int = 0
    decay: str = "constant"
    rounds: int = 12
    method: str = "imp"
    pruning: str | None = None
    rate: float = 0.2
    conv_rate: float = 0.1
    output_rate: float | None = None
    exclude: tuple[str, ...] = ()
    rewind: str = "init"
    rewind_step: int = 0
    one_shot: bool = False
    transfer_from: str | None = None
    transfer_levels: tuple[int, ...] = ()
    transfer_seed: int | None = None
    resize: bool = False
    controls: tuple[str, ...] = ("random_reinit",)
    stability_levels: tuple[int, ...] = ()
    stability_batchnorm: str = "plain"
    seeds: tuple[int, ...] = (0,)
    val_size: int | float | None = None
    limit: int | None = None
    augment: bool | None = None
    eval_every: int | None = None
    masked_training: bool = True
    sparse_density: float = 0.1
    device: str = "auto"
    jobs: int = 1
    tensorboard: str | None = None
    plugins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("exclude", "controls", "seeds", "stability_levels", "plugins", "transfer_levels"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
            else:
                # A lone string would be taken as its letters, a lone int is not iterable.
                raise TypeError(
                    f"ExperimentConfig: {name} must be a list or tuple, got {value!r}; pass ({value!r},)."
                )
        for name in ("data_dir", "tensorboard", "transfer_from"):
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        if isinstance(self.transfer_from, str) and self.transfer_from:
            # The source is named by its absolute path, so a worker or a resume elsewhere finds it.
            object.__setattr__(self, "transfer_from", str(Path(self.transfer_from).resolve()))
        # A plugin file is named by its absolute path, so workers and later runs find it anywhere.
        object.__setattr__(self, "plugins", tuple(
            str(Path(plugin).resolve()) if isinstance(plugin, str) and plugin.endswith(".py") else plugin
            for plugin in self.plugins
        ))
        load_plugins(self.plugins, "ExperimentConfig")
        _validate(self)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # Rebuilt from its settings in another process, so that its plugins are imported there
        # before anything looks up the names they register.
        return (ExperimentConfig.from_dict, (self.to_dict(),))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ExperimentConfig:
        """The settings of a named preset (see :data:`PRESETS`), with ``overrides`` applied.

        Raises:
            ValueError: if ``name`` is not a preset (the message lists them) or an override
                is not a valid setting.

        Example:
            >>> ExperimentConfig.preset("conv2-cifar10").iterations
            20000
        """
        if name not in PRESETS:
            raise ValueError(
                f"ExperimentConfig.preset(): name must be one of {sorted(PRESETS)}, got {name!r}."
            )
        return cls.from_dict({**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ExperimentConfig:
        """Build a config from a mapping (e.g. a run's ``config.json``), rejecting unknown keys.

        Raises:
            ValueError: if a key is not a setting.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"ExperimentConfig: unknown settings {unknown}; valid settings are {sorted(known)}."
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def pruning_mode(self) -> str:
        """``pruning``, or where it is ``None`` the method's default (its search's
        ``default_pruning``): ``"global"`` for the criteria at initialization, ``"layerwise"``
        for imp and gmp.

        Example:
            >>> ExperimentConfig().pruning_mode, ExperimentConfig(method="snip").pruning_mode
            ('layerwise', 'global')
        """
        if self.pruning is not None:
            return self.pruning
        return METHODS.get(self.method).default_pruning

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def run_name(self) -> str:
        """``<model>-<dataset>-<hash>``: the hash covers only settings that differ from the
        defaults, so adding a new setting later never renames existing runs.

        Example:
            >>> ExperimentConfig().run_name()
            'lenet300_100-digits-default'
        """
        defaults = ExperimentConfig()
        changed = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in EXECUTION_SETTINGS and getattr(self, f.name) != getattr(defaults, f.name)
        }
        if not changed:
            suffix = "default"
        else:
            text = json.dumps(
                {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(changed.items())}, sort_keys=True
            )
            suffix = hashlib.sha256(text.encode()).hexdigest()[:10]
        return f"{self.model.replace(':', '-')}-{self.dataset}-{suffix}"


# The paper's settings (Frankle & Carbin 2019, Figure 2) and the original Network study.
PRESETS: dict[str, dict[str, Any]] = {
    "lenet-digits": {},
    "lenet-mnist": dict(
        model="lenet300_100", dataset="mnist", optimizer="adam", lr=1.2e-3, batch_size=60,
        iterations=50_000, rate=0.2, output_rate=0.1, val_size=5000, rounds=20,
        eval_every=1000,
    ),
    "lenet-fashion-mnist": dict(
        model="lenet300_100", dataset="fashion-mnist", optimizer="adam", lr=1.2e-3, batch_size=60,
        iterations=50_000, rate=0.2, output_rate=0.1, val_size=5000, rounds=20,
        eval_every=1000,
    ),
    "conv2-cifar10": dict(
        model="conv2", dataset="cifar10", optimizer="adam", lr=2e-4, batch_size=60,
        iterations=20_000, conv_rate=0.1, rate=0.2, output_rate=0.1, val_size=5000, rounds=20,
        augment=False, eval_every=1000,
    ),
    "conv4-cifar10": dict(
        model="conv4", dataset="cifar10", optimizer="adam", lr=3e-4, batch_size=60,
        iterations=25_000, conv_rate=0.1, rate=0.2, output_rate=0.1, val_size=5000, rounds=20,
        augment=False, eval_every=1000,
    ),
    "conv6-cifar10": dict(
        model="conv6", dataset="cifar10", optimizer="adam", lr=3e-4, batch_size=60,
        iterations=30_000, conv_rate=0.15, rate=0.2, output_rate=0.1, val_size=5000, rounds=20,
        augment=False, eval_every=1000,
    ),
    "network-cifar10": dict(
        model="network", dataset="cifar10", optimizer="sgd", lr=0.008, momentum=0.9,
        batch_size=128, epochs=10.0, pruning="global", rate=0.2, rounds=5, val_size=5000,
        augment=True, controls=("random_reinit", "random_pruning"),
    ),
}


def _validate(config: ExperimentConfig) -> None:
    if is_external(config.model):
        try:
            check_external(config.model)
        except ValueError as error:
            raise ValueError(f"ExperimentConfig: {error}") from None
    elif not isinstance(config.model, str) or config.model not in MODELS:
        raise ValueError(
            f"ExperimentConfig: model must be one of {MODELS.names()}, or 'torchvision:<name>' or 'timm:<name>', "
            f"got {config.model!r}."
        )
    if config.model_kwargs is not None and (
        not isinstance(config.model_kwargs, dict) or not all(isinstance(key, str) for key in config.model_kwargs)
    ):
        raise TypeError(f"ExperimentConfig: model_kwargs must be a dict of keyword arguments or None, got {config.model_kwargs!r}.")
    DATASETS.entry(config.dataset, caller="ExperimentConfig")
    _choice(config, "optimizer", OPTIMIZERS)
    _choice(config, "decay", DECAYS)
    search = METHODS.get(config.method, caller="ExperimentConfig")
    if config.pruning is not None:
        _choice(config, "pruning", PRUNING_MODES)
    policy = REWIND_POLICIES.get(config.rewind, caller="ExperimentConfig")
    search.validate(config, config.method)
    for name in ("lr", "epochs"):
        _number(config, name, low=0.0, low_open=True)
    for name in ("momentum", "sparse_density"):
        _number(config, name, low=0.0, high=1.0)
    # A round that prunes every remaining weight of a layer leaves nothing of it to train.
    for name in ("rate", "conv_rate"):
        _number(config, name, low=0.0, high=1.0, high_open=True)
    _number(config, "weight_decay", low=0.0)
    _integer(config, "batch_size", low=1)
    _integer(config, "rounds", low=0)
    _integer(config, "warmup", low=0)
    _integer(config, "rewind_step", low=0)
    _integer(config, "jobs", low=1)
    for name, low in (("iterations", 1), ("limit", 1), ("eval_every", 1)):
        if getattr(config, name) is not None:
            _integer(config, name, low=low)
    if config.output_rate is not None:
        _number(config, "output_rate", low=0.0, high=1.0, high_open=True)
    if config.val_size is not None:
        _number(config, "val_size", low=0.0, low_open=True)
    for control in config.controls:
        if control not in BRANCHES:
            raise ValueError(f"ExperimentConfig: controls must hold names from {BRANCHES.names()}, got {control!r}.")
    if len(set(config.controls)) != len(config.controls):
        raise ValueError(f"ExperimentConfig: controls must be distinct, got {list(config.controls)!r}.")
    if not config.seeds or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in config.seeds):
        raise ValueError(f"ExperimentConfig: seeds must be a non-empty list of ints, got {list(config.seeds)!r}.")
    if len(set(config.seeds)) != len(config.seeds):
        raise ValueError(f"ExperimentConfig: seeds must be distinct, got {list(config.seeds)!r}.")
    _choice(config, "stability_batchnorm", BATCHNORM_MODES)
    if not all(isinstance(level, int) and not isinstance(level, bool) and 0 < level <= config.rounds
               for level in config.stability_levels):
        raise ValueError(
            f"ExperimentConfig: stability_levels must be pruned levels, ints in [1, rounds={config.rounds}], "
            f"got {list(config.stability_levels)!r}."
        )
    policy.validate(config.rewind_step, config.one_shot)
    if config.iterations is not None:
        policy(config.rewind_step).check_length(config.iterations, "ExperimentConfig")
        if config.warmup >= config.iterations:
            raise ValueError(
                f"ExperimentConfig: warmup must be shorter than the iterations per round ({config.iterations}), "
                f"got {config.warmup}."
            )
    for name in config.exclude:
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"ExperimentConfig: exclude must hold layer names (dotted module names, not empty), got {name!r}."
            )
    for name in ("data_dir", "tensorboard", "transfer_from"):
        value = getattr(config, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"ExperimentConfig: {name} must be a path (str) or None, got {value!r}.")
    if not all(isinstance(level, int) and not isinstance(level, bool) and level >= 0 for level in config.transfer_levels):
        raise ValueError(f"ExperimentConfig: transfer_levels must be levels, ints >= 0, got {list(config.transfer_levels)!r}.")
    if config.transfer_seed is not None:
        _integer(config, "transfer_seed", low=-(2**63))
    for name in ("one_shot", "masked_training", "download", "resize"):
        if not isinstance(getattr(config, name), bool):
            raise TypeError(f"ExperimentConfig: {name} must be a bool, got {getattr(config, name)!r}.")
    if config.augment is not None and not isinstance(config.augment, bool):
        raise TypeError(f"ExperimentConfig: augment must be a bool or None, got {config.augment!r}.")
    if not isinstance(config.device, str) or not (
        config.device in ("auto", "cpu", "cuda", "mps") or config.device.startswith("cuda:")
    ):
        raise ValueError(
            f"ExperimentConfig: device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {config.device!r}."
        )


def _choice(config: ExperimentConfig, name: str, valid: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"ExperimentConfig: {name} must be one of {list(valid)}, got {value!r}.")


def _number(config: ExperimentConfig, name: str, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"ExperimentConfig: {name} must be a number, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"ExperimentConfig: {name} must be a finite number, got {value}.")
    too_low = low is not None and (value < low or (low_open and value == low))
    too_high = high is not None and (value > high or (high_open and value == high))
    if too_low or too_high:
        bounds = f"{'>' if low_open else '>='} {low}" + (
            f" and {'<' if high_open else '<='} {high}" if high is not None else "")
        raise ValueError(f"ExperimentConfig: {name} must be {bounds}, got {value}.")


def _integer(config: ExperimentConfig, name: str, low: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"ExperimentConfig: {name} must be an int, got {value!r}.")
    if value < low:
        raise ValueError(f"ExperimentConfig: {name} must be >= {low}, got {value}.")
