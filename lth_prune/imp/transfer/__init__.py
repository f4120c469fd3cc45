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

(:mod:`lth_prune.imp.transfer.fitting` does this, before anything trains.)

Level 0 of a transfer is the dense network (the source's level-0 rewind point: its
initialization, or step k with late rewinding) trained on the target. Every network trains for
the target config's full schedule from step 0.

A transfer is a run of its own method, ``"transfer"`` (:mod:`lth_prune.imp.searches.transfer`),
through the one level loop of :func:`lth_prune.imp.run`: its config says where its tickets come
from (``transfer_from``, ``transfer_levels``, ``transfer_seed``, ``resize``), so a killed transfer
resumes (``resume=True``, ``lth-prune transfer ... --resume``) to the same results.
"""
from __future__ import annotations

import os
from typing import Any, Sequence, Union

from lth_prune.data import DataSplits
from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.experiment import run
from lth_prune.imp.store import TRANSFER_FILE, Results, RunStore
from lth_prune.imp.transfer.fitting import resize_inputs

__all__ = ["TRANSFER_FILE", "default_controls", "read_transfer", "resize_inputs", "transfer"]

PathLike = Union[str, "os.PathLike[str]"]


def transfer(
    source: PathLike,
    target: ExperimentConfig | str,
    *,
    levels: Sequence[int] | None = None,
    seed: int | None = None,
    resize: bool = False,
    run_dir: PathLike | None = None,
    resume: bool = False,
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
        run_dir: where to write ``config.json`` (the target config, ``method="transfer"``),
            ``transfer.json`` (the source run, levels, seeds and how the ticket was fitted),
            results and one checkpoint per level and seed; ``None`` keeps everything in memory.
            Figures are drawn by :func:`lth_prune.report.plot_run` (``lth-prune transfer``
            calls it).
        resume: continue the transfer in ``run_dir`` from its last finished level.
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
            both input shapes), a control needs scores a transfer does not have, or ``run_dir``
            already holds a run and ``resume`` is false. All are checked before any training.

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
    if data is not None and not isinstance(data, DataSplits):
        raise TypeError(f"transfer(): data must be a lth_prune.data.DataSplits, got {type(data).__name__}.")
    source_config = RunStore(source).read_config()
    if source_config is None:
        raise FileNotFoundError(
            f"transfer(): source must be a run directory written by lth-prune run (with config.json), "
            f"got {str(source)!r}."
        )
    # Transferred networks train the target's full schedule from step 0: the source's rewind
    # settings said how it found its tickets, and no rewind applies here.
    config = _target_config(source_config, target).replace(
        method="transfer", transfer_from=os.fspath(source), transfer_levels=tuple(levels or ()), transfer_seed=seed,
        resize=resize, rewind="init", rewind_step=0, one_shot=False,
    )
    if run_dir is not None:
        RunStore(run_dir).check_start(config, resume, "transfer()")
    return run(config, run_dir=run_dir, resume=resume, data=data, progress=progress)


def read_transfer(run_dir: PathLike) -> dict[str, Any] | None:
    """What a transfer run directory says about its source (``transfer.json``), or ``None``.

    Returns:
        ``{"source_run", "source_dataset", "source_seeds", "levels", "output_layer", ...}``
        for a directory written by :func:`transfer`; ``None`` for an ordinary run.

    Example:
        >>> read_transfer("no/such/run") is None
        True
    """
    return RunStore(run_dir).read_transfer()


def default_controls() -> tuple[str, ...]:
    """The branches a transfer trains unless told otherwise: every control measuring an accuracy
    that needs no scores (a transferred ticket has no scores its mask was chosen by on the
    target data); ``stability`` may be asked for.

    Example:
        >>> default_controls()
        ('random_reinit', 'random_pruning')
    """
    return tuple(name for name in BRANCHES.names() if BRANCHES.get(name).accuracy and not BRANCHES.get(name).needs_scores)


def _target_config(source_config: ExperimentConfig, target: ExperimentConfig | str) -> ExperimentConfig:
    if isinstance(target, str):
        return source_config.replace(dataset=target, controls=default_controls())
    if not isinstance(target, ExperimentConfig):
        raise TypeError(f"transfer(): target must be a data set name or an ExperimentConfig, got {type(target).__name__}.")
    if _normalized(target.model) != _normalized(source_config.model):
        raise ValueError(
            f"transfer(): target.model must be the source run's model {source_config.model!r}, got {target.model!r}."
        )
    return target


def _normalized(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")
