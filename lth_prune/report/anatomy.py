"""Tables and figures of what a ticket looks like: mask overlap, weights per layer, initial values.

The numbers come from :mod:`lth_prune.analysis`; this module only draws them, on
:class:`matplotlib.figure.Figure` objects with the Agg canvas (no ``pyplot``), as the rest of
:mod:`lth_prune.report` does. :func:`plot_analysis` writes all of them for a run directory.

Example:
    >>> from lth_prune.analysis import OverlapMatrix
    >>> matrix = OverlapMatrix(("a", "b"), ("a", "b"), ((1.0, 0.25), (0.25, 1.0)))
    >>> print(format_overlap(matrix))
    | mask overlap   |    a |    b |
    |----------------|------|------|
    | a              | 1.00 | 0.25 |
    | b              | 0.25 | 1.00 |
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from tabulate import tabulate
from torch import Tensor

from lth_prune import analysis
from lth_prune.imp import Results
from lth_prune.report._cells import check_table_format
from lth_prune.report._drawing import check_results, new_figure, run_title, save_figure, sparsity_axis
from lth_prune.report.tables import percent_labels

__all__ = [
    "ANALYSIS_FIGURE_NAMES",
    "format_layers",
    "format_overlap",
    "init_values_figure",
    "layers_figure",
    "overlap_figure",
    "plot_analysis",
]

ANALYSIS_FIGURE_NAMES = ("layers", "overlap_levels", "overlap_seeds", "init_values")
# Cells are annotated with their value up to this many; beyond, the colour bar alone reads better.
_MAX_ANNOTATED_CELLS = 225
_MAX_PANELS = 12
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def format_overlap(matrix: analysis.OverlapMatrix, *, tablefmt: str = "github") -> str:
    """The overlap matrix as a text table: one row per row ticket, Jaccard indices to two decimals.

    Args:
        matrix: from :func:`lth_prune.analysis.overlap_matrix` or its run-directory twins.
        tablefmt: a :mod:`tabulate` table format.

    Returns:
        The table (no trailing newline); its corner cell names what is compared.

    Raises:
        ValueError: if ``tablefmt`` is not a format tabulate knows.

    Example:
        >>> from lth_prune.analysis import OverlapMatrix
        >>> matrix = OverlapMatrix(("seed 0", "seed 1"), ("seed 0", "seed 1"), ((1.0, 0.34), (0.34, 1.0)), title="seeds")
        >>> print(format_overlap(matrix, tablefmt="plain"))
        seeds      seed 0    seed 1
        seed 0       1.00      0.34
        seed 1       0.34      1.00
    """
    check_table_format("format_overlap", tablefmt)
    corner = matrix.title if matrix.layer is None else f"{matrix.title} ({matrix.layer})"
    rows = [[label] + [f"{value:.2f}" for value in values] for label, values in zip(matrix.rows, matrix.values)]
    return tabulate(rows, headers=[corner, *matrix.columns], tablefmt=tablefmt, disable_numparse=True,
                    colalign=("left",) + ("right",) * len(matrix.columns))


def format_layers(results: Results, *, tablefmt: str = "github") -> str:
    """Percent of weights remaining in each layer at each level (the mean over seeds).

    Args:
        results: the outcome of :func:`lth_prune.imp.run` or :meth:`Results.load`.
        tablefmt: a :mod:`tabulate` table format.

    Returns:
        The table: one row per level, one column per layer.

    Raises:
        TypeError: if ``results`` is not a :class:`lth_prune.imp.Results`.
        ValueError: if it has no levels or ``tablefmt`` is unknown.

    Example:
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [{"level": 1, "seed": 0, "weights_remaining": 0.8, "layers": {"fc1": 0.8, "fc2": 0.9}}]
        >>> print(format_layers(Results.from_records(ExperimentConfig(), records), tablefmt="plain"))
          level    total    fc1    fc2
              1     80.0   80.0   90.0
    """
    check_results("format_layers", results)
    check_table_format("format_layers", tablefmt)
    names = list(results.levels[0]["layers"])
    rows = [
        [str(level["level"])] + [percent_labels([value])[0] for value in (level["weights_remaining"], *(level["layers"][n] for n in names))]
        for level in results.levels
    ]
    return tabulate(rows, headers=["level", "total", *names], tablefmt=tablefmt, disable_numparse=True,
                    colalign=("right",) * (len(names) + 2))


def overlap_figure(matrix: analysis.OverlapMatrix) -> Figure:
    """A heat map of an overlap matrix (Jaccard index from 0 to 1, values written in the cells).

    Args:
        matrix: from :func:`lth_prune.analysis.overlap_matrix` or its run-directory twins.

    Returns:
        A :class:`matplotlib.figure.Figure` with an Agg canvas.

    Example:
        >>> from lth_prune.analysis import OverlapMatrix
        >>> figure = overlap_figure(OverlapMatrix(("a", "b"), ("a", "b"), ((1.0, 0.3), (0.3, 1.0))))
        >>> figure.axes[1].get_ylabel()
        'Jaccard index of surviving weights'
    """
    rows, columns = len(matrix.rows), len(matrix.columns)
    figure, axes = new_figure()
    figure.set_size_inches(max(4.8, 1.4 + 0.62 * columns + 0.06 * max(map(len, matrix.rows))), max(3.6, 1.6 + 0.42 * rows))
    axes.grid(False)
    image = axes.imshow(matrix.values, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    axes.set_xticks(range(columns), matrix.columns, rotation=35, ha="right", fontsize=8)
    axes.set_yticks(range(rows), matrix.rows, fontsize=8)
    if rows * columns <= _MAX_ANNOTATED_CELLS:
        for i, values in enumerate(matrix.values):
            for j, value in enumerate(values):
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="black" if value > 0.6 else "white")
    figure.colorbar(image, ax=axes, label="Jaccard index of surviving weights")
    axes.set_title(matrix.title + ("" if matrix.layer is None else f", {matrix.layer}"), fontsize=10)
    return figure


def layers_figure(results: Results) -> Figure:
    """Percent of weights remaining in each layer against the whole network's (log axes).

    Args:
        results: the outcome of :func:`lth_prune.imp.run` or :meth:`Results.load`.

    Returns:
        A :class:`matplotlib.figure.Figure`, one line per layer.

    Raises:
        TypeError: if ``results`` is not a :class:`lth_prune.imp.Results`.
        ValueError: if it has no levels.

    Example:
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [{"level": n, "seed": 0, "weights_remaining": 0.8 ** n,
        ...             "layers": {"fc1": 0.8 ** n, "fc2": 0.9 ** n}} for n in range(3)]
        >>> figure = layers_figure(Results.from_records(ExperimentConfig(), records))
        >>> [line.get_label() for line in figure.axes[0].get_lines()]
        ['fc1', 'fc2']
    """
    check_results("layers_figure", results)
    figure, axes = new_figure()
    x = [100.0 * level["weights_remaining"] for level in results.levels]
    for index, name in enumerate(results.levels[0]["layers"]):
        y = [100.0 * level["layers"][name] for level in results.levels]
        # Layers pruned at the same rate draw the same line: distinct markers and sizes keep each visible.
        axes.plot(x, y, label=name or "(model)", marker=_MARKERS[index % len(_MARKERS)],
                  markersize=max(2.5, 6.5 - 0.5 * index), linewidth=1.3, alpha=0.85,
                  color=f"C{index % 10}", linestyle="-" if index < 10 else "--")
    axes.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axes.yaxis.set_major_formatter(plain)
    low, high = axes.get_ylim()
    # Within one decade the minor ticks are the only labels; over several they would crowd.
    axes.yaxis.set_minor_formatter(plain if high / max(low, 1e-12) <= 10 else NullFormatter())
    axes.tick_params(axis="y", which="minor", labelsize=7)
    axes.set_ylabel("Weights remaining in the layer (%, log scale)")
    axes.set_title(run_title(results.config, False).splitlines()[0] + "\nweights remaining per layer", fontsize=10)
    sparsity_axis(axes, results.levels)
    axes.legend(loc="best", fontsize=8, frameon=False)
    return figure


def init_values_figure(values: Mapping[str, tuple[Tensor, Tensor]], *, title: str = "", pooled: bool = False) -> Figure:
    """Histograms of the rewind-point values of surviving against pruned weights.

    Each histogram is a density, so a layer that keeps 2 % of its weights still shows both
    shapes. Magnitude pruning keeps weights far from zero: the surviving values are bimodal.

    Args:
        values: ``{layer: (surviving values, pruned values)}``, from
            :func:`lth_prune.analysis.init_values`.
        title: a title above the panels.
        pooled: one panel for all layers, each layer's values divided by its standard
            deviation (layers start at different scales); default: one panel per layer (the
            first 12).

    Returns:
        A :class:`matplotlib.figure.Figure`.

    Raises:
        ValueError: if ``values`` is empty.

    Example:
        >>> import torch
        >>> weights = torch.linspace(-1, 1, 101)
        >>> figure = init_values_figure({"fc1": (weights[weights.abs() > 0.5], weights[weights.abs() <= 0.5])})
        >>> figure.axes[0].get_title()
        'fc1: 49.5 % kept'
    """
    if not values:
        raise ValueError("init_values_figure(): values must hold at least one layer, got none.")
    if pooled:
        scaled = [(kept / _scale(kept, pruned), pruned / _scale(kept, pruned)) for kept, pruned in values.values()]
        panels = {"all layers (each in units of its standard deviation)": (
            torch.cat([kept for kept, _ in scaled]), torch.cat([pruned for _, pruned in scaled]))}
    else:
        panels = dict(list(values.items())[:_MAX_PANELS])
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(3.4 * columns + 0.4, 2.6 * rows + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    for index, (name, (kept, pruned)) in enumerate(panels.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        both = torch.cat([kept.flatten(), pruned.flatten()]).float()
        low, high = (float(both.min()), float(both.max())) if both.numel() else (-1.0, 1.0)
        bins = torch.linspace(low, high if high > low else low + 1.0, 61).tolist()
        share = 100.0 * kept.numel() / max(1, kept.numel() + pruned.numel())
        if pruned.numel():
            axes.hist(pruned.float().numpy(), bins=bins, density=True, color="0.6", alpha=0.7, label="pruned")
        if kept.numel():
            axes.hist(kept.float().numpy(), bins=bins, density=True, color="C0", alpha=0.7, label="surviving")
        axes.set_title(f"{name.removesuffix('.weight')}: {share:.3g} % kept", fontsize=9)
        axes.tick_params(labelsize=7)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        if index == 0:
            axes.legend(fontsize=7, frameon=False)
    figure.supxlabel("Value at the rewind point", fontsize=9)
    figure.supylabel("Density", fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def plot_analysis(
    run_dir: str | os.PathLike[str], *, seed: int | None = None, level: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write a run's analysis figures, each as PNG and SVG.

    ``layers``: weights remaining per layer; ``overlap_levels``: mask overlap between levels of
    ``seed``; ``overlap_seeds``: between seeds at ``level`` (only with several seeds);
    ``init_values``: rewind-point values of surviving and pruned weights at ``level``.

    Args:
        run_dir: a finished run directory (``results.json`` and the tickets).
        seed: the seed whose tickets are drawn; default: the run's first.
        level: the level of the seed overlap and the histograms; default: the last finished.
        out_dir: where to write; default: ``run_dir``.

    Returns:
        The paths written, in :data:`ANALYSIS_FIGURE_NAMES` order, PNG before SVG.

    Raises:
        FileNotFoundError: if the results or a ticket are missing.

    Example:
        >>> plot_analysis("no/such/run")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        FileNotFoundError: ...
    """
    results = Results.load(run_dir)
    seed = results.config.seeds[0] if seed is None else seed
    levels = analysis.finished_levels(run_dir, seed)
    level = levels[-1] if level is None else level
    out = Path(run_dir if out_dir is None else out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = save_figure(layers_figure(results), out / "layers")
    written += save_figure(overlap_figure(analysis.level_overlap(run_dir, seed)), out / "overlap_levels")
    if len(results.config.seeds) > 1:
        written += save_figure(overlap_figure(analysis.seed_overlap(run_dir, level)), out / "overlap_seeds")
    remaining = next((entry["weights_remaining"] for entry in results.levels if entry["level"] == level), None)
    share = "" if remaining is None else f" ({100.0 * remaining:.3g} % of weights remaining)"
    title = f"{run_title(results.config, False).splitlines()[0]}: rewind-point values, level {level}{share}, seed {seed}"
    written += save_figure(init_values_figure(analysis.init_values(run_dir, level, seed), title=title), out / "init_values")
    return written


def _scale(kept: Tensor, pruned: Tensor) -> float:
    spread = float(torch.cat([kept.flatten(), pruned.flatten()]).float().std()) if kept.numel() + pruned.numel() > 1 else 0.0
    return spread if spread > 0 else 1.0
