"""Figures of an IMP run in the style of Frankle & Carbin (2019): metrics against sparsity.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never
through ``pyplot``, so they work headless, in threads and inside other people's scripts
without touching global plotting state.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from lth_prune.imp.config import ExperimentConfig
from lth_prune.imp.results import Results
from lth_prune.report.tables import _several_seeds, percent_labels

__all__ = ["FIGURE_NAMES", "FIGURE_FORMATS", "accuracy_figure", "early_stop_figure", "figure_paths", "plot_results"]

FIGURE_NAMES = ("accuracy", "early_stop")
FIGURE_FORMATS = ("png", "svg")

# Frankle & Carbin draw tickets solid, controls dashed; colours are matplotlib's default cycle.
_ACCURACY_CURVES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("test_accuracy", "winning ticket", dict(color="C0", linestyle="-", marker="o")),
    ("random_reinit_accuracy", "random reinit", dict(color="C1", linestyle="--", marker="s")),
    ("random_pruning_accuracy", "random pruning", dict(color="C2", linestyle="-.", marker="^")),
    ("no_retrain_accuracy", "no retraining", dict(color="C7", linestyle=":", marker="x")),
)
_MODEL_TITLES = {
    "lenet300_100": "LeNet-300-100", "conv2": "Conv-2", "conv4": "Conv-4", "conv6": "Conv-6",
    "network": "Network", "resnet20": "ResNet-20", "vgg16": "VGG-16",
}
_DATASET_TITLES = {
    "digits": "digits (8x8)", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10", "synthetic": "synthetic data",
}
_MAX_TICK_LABELS = 10
_DPI = 200


def plot_results(results: Results, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw the run's figures and write each as PNG and SVG into ``out_dir``.

    ``accuracy.png`` / ``.svg``: test accuracy against the percent of weights remaining (log
    axis, sparser to the right) for the ticket, each control that was run and the pruned
    network before retraining, with the dense accuracy as a dashed line and error bars (one
    standard deviation over seeds) when there are several seeds. ``early_stop.png`` /
    ``.svg``: the ticket's early-stopping iteration against the same axis (skipped when the
    run did not record it).

    Args:
        results: the outcome of :func:`lth_prune.imp.run` or :meth:`Results.load`.
        out_dir: directory to write into; created if missing. Existing figures are replaced.

    Returns:
        The paths written, in the order accuracy PNG, accuracy SVG, early-stop PNG, early-stop SVG.

    Raises:
        TypeError: if ``results`` is not a :class:`lth_prune.imp.Results`.
        ValueError: if ``results`` has no levels.

    Example:
        >>> import tempfile
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [
        ...     {"level": level, "seed": 0, "weights_remaining": 0.8 ** level, "layers": {},
        ...      "test_accuracy": 0.97, "early_stop_iteration": 900}
        ...     for level in range(3)
        ... ]
        >>> paths = plot_results(Results.from_records(ExperimentConfig(), records), tempfile.mkdtemp())
        >>> [path.name for path in paths]
        ['accuracy.png', 'accuracy.svg', 'early_stop.png', 'early_stop.svg']
    """
    _check_results("plot_results", results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, figure in (("accuracy", accuracy_figure(results)), ("early_stop", early_stop_figure(results))):
        if figure is not None:
            written.extend(_save(figure, out_dir / name))
    return written


def accuracy_figure(results: Results) -> Figure:
    """Test accuracy against percent of weights remaining (the figure ``plot_results`` saves).

    Args:
        results: the outcome of :func:`lth_prune.imp.run` or :meth:`Results.load`.

    Returns:
        A :class:`matplotlib.figure.Figure` with an Agg canvas, to adjust or save yourself.

    Raises:
        TypeError: if ``results`` is not a :class:`lth_prune.imp.Results`.
        ValueError: if ``results`` has no levels.

    Example:
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [
        ...     {"level": 0, "seed": 0, "weights_remaining": 1.0, "layers": {}, "test_accuracy": 0.97},
        ...     {"level": 1, "seed": 0, "weights_remaining": 0.8, "layers": {}, "test_accuracy": 0.98},
        ... ]
        >>> figure = accuracy_figure(Results.from_records(ExperimentConfig(), records))
        >>> figure.axes[0].get_ylabel()
        'Test accuracy (%)'
    """
    _check_results("accuracy_figure", results)
    figure, axes = _new_figure()
    several = _several_seeds(results)
    labels = {"test_accuracy": _ticket_label(results.config)}
    for key, label, style in _ACCURACY_CURVES:
        _curve(axes, results.levels, key, labels.get(key, label), style, several, scale=100.0)
    dense = results.levels[0].get("test_accuracy") if results.levels[0]["level"] == 0 else None
    if dense is not None:
        axes.axhline(100.0 * dense, color="0.35", linestyle="--", linewidth=1.0, zorder=1,
                     label=f"dense ({100.0 * dense:.1f} %)")
    axes.set_ylabel("Test accuracy (%)")
    axes.set_title(_title(results.config, several), fontsize=10)
    _sparsity_axis(axes, results.levels)
    _legend(axes)
    return figure


def early_stop_figure(results: Results) -> Figure | None:
    """The ticket's early-stopping iteration against percent of weights remaining.

    Args:
        results: the outcome of :func:`lth_prune.imp.run` or :meth:`Results.load`.

    Returns:
        A :class:`matplotlib.figure.Figure`, or ``None`` if no level recorded an early-stop
        iteration.

    Raises:
        TypeError: if ``results`` is not a :class:`lth_prune.imp.Results`.
        ValueError: if ``results`` has no levels.

    Example:
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [
        ...     {"level": 0, "seed": 0, "weights_remaining": 1.0, "layers": {}, "early_stop_iteration": 900},
        ...     {"level": 1, "seed": 0, "weights_remaining": 0.8, "layers": {}, "early_stop_iteration": 700},
        ... ]
        >>> figure = early_stop_figure(Results.from_records(ExperimentConfig(), records))
        >>> figure.axes[0].get_ylabel()
        'Early-stop iteration (optimizer steps)'
    """
    _check_results("early_stop_figure", results)
    if all(level.get("early_stop_iteration") is None for level in results.levels):
        return None
    figure, axes = _new_figure()
    several = _several_seeds(results)
    style = dict(_ACCURACY_CURVES[0][2])
    _curve(axes, results.levels, "early_stop_iteration", _ticket_label(results.config), style, several, scale=1.0)
    axes.set_ylabel("Early-stop iteration (optimizer steps)")
    # From zero, so a small wobble does not look like a trend; headroom keeps top points off the frame.
    axes.set_ylim(0, 1.08 * max(axes.get_ylim()[1], 1.0))
    axes.set_title(_title(results.config, several) + "\nstep of minimum validation loss", fontsize=10)
    _sparsity_axis(axes, results.levels)
    _legend(axes)
    return figure


def figure_paths(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The figure files :func:`plot_results` wrote into ``out_dir`` that exist, in its order.

    Example:
        >>> figure_paths("no/such/run")
        []
    """
    out_dir = Path(out_dir)
    candidates = [out_dir / f"{name}.{ext}" for name in FIGURE_NAMES for ext in FIGURE_FORMATS]
    return [path for path in candidates if path.is_file()]


def _new_figure() -> tuple[Figure, Any]:
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.grid(True, which="major", color="0.9", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _curve(axes: Any, levels: Sequence[dict[str, Any]], key: str, label: str, style: dict[str, Any],
           several: bool, scale: float) -> None:
    points = [
        (100.0 * level["weights_remaining"], scale * level[key], scale * (level.get(key + "_std") or 0.0))
        for level in levels if _measured(level.get(key))
    ]
    if not points:
        return
    x, y, spread = (list(column) for column in zip(*points))
    if several:
        axes.errorbar(x, y, yerr=spread, label=label, capsize=2.5, markersize=4, linewidth=1.4,
                      elinewidth=0.9, **style)
    else:
        axes.plot(x, y, label=label, markersize=4, linewidth=1.4, **style)


def _legend(axes: Any) -> None:
    handles, labels = axes.get_legend_handles_labels()
    # matplotlib lists plain lines before error-bar containers; keep the drawing order instead,
    # with the dense reference last.
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("dense"))
    axes.legend([handles[i] for i in order], [labels[i] for i in order], loc="best", fontsize=8, frameon=False)


def _sparsity_axis(axes: Any, levels: Sequence[dict[str, Any]]) -> None:
    """Log axis of percent remaining, reversed (sparser to the right), labelled at the levels."""
    percents = [100.0 * level["weights_remaining"] for level in levels]
    labels = percent_labels([level["weights_remaining"] for level in levels])
    labels = ["100" if p >= 99.95 else label for p, label in zip(percents, labels)]
    every = max(1, math.ceil(len(percents) / _MAX_TICK_LABELS))
    chosen = list(range(0, len(percents), every))
    axes.set_xscale("log")
    # Reversed limits draw 100 % at the left, as in the paper.
    axes.set_xlim(max(percents) * 1.12, min(percents) / 1.12)
    axes.xaxis.set_major_locator(FixedLocator([percents[i] for i in chosen]))
    axes.xaxis.set_major_formatter(FixedFormatter([labels[i] for i in chosen]))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xlabel("Weights remaining (%, log scale)")


def _title(config: ExperimentConfig, several: bool) -> str:
    model = _MODEL_TITLES.get(config.model, config.model)
    dataset = _DATASET_TITLES.get(config.dataset, config.dataset)
    schedule = "one-shot" if config.one_shot else "iterative"
    pruning = "layer-wise" if config.pruning == "layerwise" else "global"
    rewind = {
        "init": "rewind to initialization",
        "step": f"rewind to step {config.rewind_step}",
        "lr": "learning-rate rewinding",
        "finetune": "fine-tuning",
    }.get(config.rewind, config.rewind)
    seeds = f", mean ± std of {len(config.seeds)} seeds" if several else ""
    return f"{model} on {dataset}\n{schedule} {pruning} pruning, {rewind}{seeds}"


def _ticket_label(config: ExperimentConfig) -> str:
    return {
        "init": "winning ticket",
        "step": f"winning ticket (rewind to step {config.rewind_step})",
        "lr": "IMP, learning-rate rewinding",
        "finetune": "IMP, fine-tuning",
    }.get(config.rewind, "winning ticket")


def _save(figure: Figure, stem: Path) -> list[Path]:
    paths = []
    for ext in FIGURE_FORMATS:
        path = stem.with_name(f"{stem.name}.{ext}")
        # Through a temporary name, like every file of a run directory, so a reader never sees half a figure.
        temporary = path.with_name(path.name + ".tmp")
        metadata = {"Date": None} if ext == "svg" else None  # no timestamp: re-drawing gives the same file
        figure.savefig(temporary, format=ext, dpi=_DPI, metadata=metadata)
        os.replace(temporary, path)
        paths.append(path)
    return paths


def _measured(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _check_results(function: str, results: Results) -> None:
    if not isinstance(results, Results):
        raise TypeError(f"{function}(): results must be a lth_prune.imp.Results, got {type(results).__name__}.")
    if not results.levels:
        raise ValueError(f"{function}(): results must hold at least one level, got none.")
