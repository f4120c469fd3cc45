"""Figures of an IMP run in the style of Frankle & Carbin (2019): metrics against sparsity.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, never
through ``pyplot``, so they work headless, in threads and inside other people's scripts
without touching global plotting state.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from lth_prune.data import DATASETS
from lth_prune.imp import Results
from lth_prune.imp.store import RunStore
from lth_prune.models import MODELS
from lth_prune.report._cells import several_seeds
from lth_prune.report._drawing import (
    FIGURE_FORMATS,
    NO_RETRAIN_STYLE,
    TICKET_STYLE,
    branch_curves,
    check_results,
    curve,
    legend,
    new_figure,
    run_title,
    save_figure,
    sparsity_axis,
    ticket_label,
)
from lth_prune.report.stability import stability_figure

__all__ = [
    "FIGURE_NAMES", "FIGURE_FORMATS", "accuracy_figure", "early_stop_figure", "figure_paths", "plot_results",
    "plot_run", "plot_transfer",
]

FIGURE_NAMES = ("accuracy", "early_stop", "stability")


def plot_results(results: Results, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw the run's figures and write each as PNG and SVG into ``out_dir``.

    ``accuracy.png`` / ``.svg``: test accuracy against the percent of weights remaining (log
    axis, sparser to the right) for the ticket, each control that was run and the pruned
    network before retraining, with the dense accuracy as a dashed line and error bars (one
    standard deviation over seeds) when there are several seeds. ``early_stop.png`` /
    ``.svg``: the ticket's early-stopping iteration against the same axis (skipped when the
    run did not record it). ``stability.png`` / ``.svg``: the ticket's instability against the
    same axis, when the run recorded the ``stability`` branch
    (:func:`lth_prune.report.stability.stability_figure`).

    Args:
        results: the outcome of :func:`lth_prune.imp.run` or :meth:`Results.load`.
        out_dir: directory to write into; created if missing. Existing figures are replaced.

    Returns:
        The paths written, in the order accuracy, early stop, stability; PNG before SVG.

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
    check_results("plot_results", results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    figures = (("accuracy", accuracy_figure(results)), ("early_stop", early_stop_figure(results)),
               ("stability", stability_figure(results)))
    for name, figure in figures:
        if figure is not None:
            written.extend(save_figure(figure, out_dir / name))
    return written


def plot_run(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Draw the figures of the run in ``run_dir`` into it: the one call after :func:`lth_prune.imp.run`.

    A transfer's directory gets :func:`plot_transfer`'s figures, any other run
    :func:`plot_results`'.

    Args:
        run_dir: a finished run directory (its ``results.json``).

    Returns:
        The paths written.

    Raises:
        FileNotFoundError: if ``run_dir`` holds no results.
        lth_prune.imp.store.RunDirectoryError: if its results are unreadable.

    Example:
        >>> import tempfile
        >>> from lth_prune import imp
        >>> run_dir = tempfile.mkdtemp()
        >>> _ = imp.run(imp.ExperimentConfig(dataset="synthetic", rounds=1, epochs=1), run_dir=run_dir, progress=False)
        >>> [path.name for path in plot_run(run_dir)][:2]
        ['accuracy.png', 'accuracy.svg']
    """
    results = Results.load(run_dir)
    transfer = RunStore(run_dir).read_transfer()
    if transfer is not None:
        return plot_transfer(results, run_dir, transfer)
    return plot_results(results, run_dir)


def plot_transfer(results: Results, out_dir: str | os.PathLike[str], transfer: dict[str, Any]) -> list[Path]:
    """The figures of a ticket transfer: those of :func:`plot_results`, titled with where the
    tickets were found and how the output layer was fitted.

    Args:
        results: the outcome of :func:`lth_prune.imp.transfer.transfer`.
        out_dir: directory to write into; created if missing.
        transfer: the transfer's description (``transfer.json``,
            :func:`lth_prune.imp.transfer.read_transfer`).

    Returns:
        The paths written (accuracy, then early stop; PNG, then SVG).

    Raises:
        TypeError: if ``results`` is not a :class:`lth_prune.imp.Results`.
        ValueError: if it has no levels.

    Example:
        >>> import tempfile
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [{"level": n, "seed": 0, "weights_remaining": 0.8 ** n, "layers": {},
        ...             "test_accuracy": 0.9} for n in range(2)]
        >>> results = Results.from_records(ExperimentConfig(), records)
        >>> paths = plot_transfer(results, tempfile.mkdtemp(), {"source_dataset": "fashion-mnist", "output_layer": "new"})
        >>> [path.name for path in paths]
        ['accuracy.png', 'accuracy.svg']
    """
    check_results("plot_transfer", results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = MODELS.title(results.config.model)
    source = DATASETS.title(transfer.get("source_dataset", "another data set"))
    target = DATASETS.title(results.config.dataset)
    resized = f"images resized to {'x'.join(map(str, transfer['input_shape'][1:]))}, " if transfer.get("resized") else ""
    output = "new output layer" if transfer.get("output_layer") == "new" else "output layer transferred"
    title = f"{model}: tickets found on {source}, trained on {target}\n{resized}{output}"
    ticket = ticket_label(results.config)
    written: list[Path] = []
    for name, figure in (("accuracy", accuracy_figure(results)), ("early_stop", early_stop_figure(results))):
        if figure is None:
            continue
        axes = figure.axes[0]
        axes.set_title(title, fontsize=10)
        # Lines carry the labels of single-seed curves, error-bar containers those of several seeds.
        for artist in [*axes.get_lines(), *axes.containers]:
            if artist.get_label() == ticket:
                artist.set_label(f"ticket from {source}")
        legend(axes)
        written.extend(save_figure(figure, out_dir / name))
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
    check_results("accuracy_figure", results)
    figure, axes = new_figure()
    several = several_seeds(results)
    curves = [
        ("test_accuracy", ticket_label(results.config), TICKET_STYLE),
        *branch_curves(results),
        ("no_retrain_accuracy", "no retraining", NO_RETRAIN_STYLE),
    ]
    for key, label, style in curves:
        curve(axes, results.levels, key, label, style, several, scale=100.0)
    dense = results.levels[0].get("test_accuracy") if results.levels[0]["level"] == 0 else None
    if dense is not None:
        axes.axhline(100.0 * dense, color="0.35", linestyle="--", linewidth=1.0, zorder=1,
                     label=f"dense ({100.0 * dense:.1f} %)")
    axes.set_ylabel("Test accuracy (%)")
    axes.set_title(run_title(results.config, several), fontsize=10)
    sparsity_axis(axes, results.levels)
    legend(axes)
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
    check_results("early_stop_figure", results)
    if all(level.get("early_stop_iteration") is None for level in results.levels):
        return None
    figure, axes = new_figure()
    several = several_seeds(results)
    curve(axes, results.levels, "early_stop_iteration", ticket_label(results.config), TICKET_STYLE, several, scale=1.0)
    axes.set_ylabel("Early-stop iteration (optimizer steps)")
    # From zero, so a small wobble does not look like a trend; headroom keeps top points off the frame.
    axes.set_ylim(0, 1.08 * max(axes.get_ylim()[1], 1.0))
    axes.set_title(run_title(results.config, several) + "\nstep of minimum validation loss", fontsize=10)
    sparsity_axis(axes, results.levels)
    legend(axes)
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
