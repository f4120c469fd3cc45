"""Two or more runs side by side (``lth-prune compare``): one table, one figure.

Drawn like :mod:`lth_prune.report.figures`: :class:`matplotlib.figure.Figure` objects with the
Agg canvas, no ``pyplot``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tabulate import tabulate

from lth_prune.analysis import OverlapMatrix
from lth_prune.imp import Results
from lth_prune.report._cells import check_table_format, format_cell, several_seeds
from lth_prune.report._drawing import (
    TICKET_STYLE,
    branch_curves,
    check_results,
    curve,
    legend,
    run_title,
    save_figure,
    sparsity_axis,
    style_axes,
)
from lth_prune.report.anatomy import overlap_figure
from lth_prune.report.tables import percent_labels

__all__ = ["comparison_figure", "format_comparison", "plot_comparison"]


def format_comparison(
    runs: Sequence[Results], labels: Sequence[str], *, overlap: Mapping[int, Mapping[str, Any]] | None = None,
    tablefmt: str = "github",
) -> str:
    """One table of several runs by level: each run's weights remaining, ticket and controls.

    Args:
        runs: the runs' results.
        labels: one short label per run, prefixed to its columns.
        overlap: ``{level: mask_overlap(...) result}``: adds the overall Jaccard index of the
            first two runs' tickets at that level and what random masks would give.
        tablefmt: a :mod:`tabulate` table format.

    Returns:
        The table; a level a run does not have shows ``-``.

    Raises:
        TypeError: if a run is not a :class:`lth_prune.imp.Results`.
        ValueError: if ``labels`` does not have one label per run, a run has no levels, or
            ``tablefmt`` is unknown.

    Example:
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> def results(accuracy):
        ...     records = [{"level": n, "seed": 0, "weights_remaining": 0.8 ** n, "layers": {},
        ...                 "test_accuracy": accuracy} for n in range(2)]
        ...     return Results.from_records(ExperimentConfig(), records)
        >>> print(format_comparison([results(0.9), results(0.8)], ["A", "B"], tablefmt="plain"))
          level    A: remaining (%)    A: ticket (%)    B: remaining (%)    B: ticket (%)
              0               100.0            90.00               100.0            80.00
              1                80.0            90.00                80.0            80.00
    """
    if len(labels) != len(runs):
        raise ValueError(f"format_comparison(): labels must have one label per run ({len(runs)}), got {len(labels)}.")
    for results in runs:
        check_results("format_comparison", results)
    check_table_format("format_comparison", tablefmt)
    by_level = [{entry["level"]: entry for entry in results.levels} for results in runs]
    numbers = sorted(set().union(*by_level))
    headers, columns = ["level"], []
    for label, results, levels in zip(labels, runs, by_level):
        headers.append(f"{label}: remaining (%)")
        measured = [(key, name) for key, name, _ in _compared(results) if any(e.get(key) is not None for e in results.levels)]
        headers += [f"{label}: {name} (%)" for _, name in measured]
        columns.append((results, levels, measured))
    if overlap:
        headers += ["overlap (Jaccard)", "random masks"]
    rows = []
    for number in numbers:
        row = [str(number)]
        for results, levels, measured in columns:
            entry = levels.get(number)
            if entry is None:
                row += ["-"] * (1 + len(measured))
                continue
            row.append(percent_labels([e["weights_remaining"] for e in results.levels])[results.levels.index(entry)])
            row += [format_cell(entry, key, True, several_seeds(results)) for key, _ in measured]
        if overlap:
            found = overlap.get(number)
            row += ["-", "-"] if found is None else [f"{found['overall']:.3f}", f"{found['chance']:.3f}"]
        rows.append(row)
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True, colalign=("right",) * len(headers))


def comparison_figure(runs: Sequence[Results], labels: Sequence[str]) -> Figure:
    """Test accuracy against percent of weights remaining for several runs.

    The first axes holds one curve per run, its ticket, each in its colour, with error bars
    over seeds when a run has several, and the dense accuracy as a dotted line (one grey line
    when every run starts from the same dense network, else one per run in its colour). When
    a run measured branches (controls, sanity checks), a panel per run below shows its ticket
    against them, all panels on one accuracy scale: six runs with three controls each stay
    legible, where 24 curves on one axes would not.

    Args:
        runs: the runs' results.
        labels: one label per run, used in the legend and the panels' titles.

    Returns:
        A :class:`matplotlib.figure.Figure`.

    Raises:
        TypeError: if a run is not a :class:`lth_prune.imp.Results`.
        ValueError: if ``labels`` does not have one label per run, or a run has no levels.

    Example:
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [{"level": n, "seed": 0, "weights_remaining": 0.8 ** n, "layers": {},
        ...             "test_accuracy": 0.9} for n in range(2)]
        >>> results = Results.from_records(ExperimentConfig(), records)
        >>> figure = comparison_figure([results, results], ["A", "B"])
        >>> [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
        ['A', 'B', 'dense (90.0 %)']
    """
    if len(labels) != len(runs):
        raise ValueError(f"comparison_figure(): labels must have one label per run ({len(runs)}), got {len(labels)}.")
    for results in runs:
        check_results("comparison_figure", results)
    with_branches = [index for index, results in enumerate(runs) if branch_curves(results)]
    columns = min(3, len(with_branches)) if with_branches else 1
    rows = math.ceil(len(with_branches) / columns) if with_branches else 0
    figure = Figure(figsize=(max(6.4, 3.4 * columns), 4.4 + 2.9 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(1 + rows, columns, height_ratios=[1.5] + [1.0] * rows)
    remaining = [{"weights_remaining": value} for value in
                 sorted({entry["weights_remaining"] for results in runs for entry in results.levels}, reverse=True)]
    main = style_axes(figure.add_subplot(grid[0, :]))
    dense = [_dense_accuracy(results) for results in runs]
    shared_dense = all(value is not None for value in dense) and max(dense) - min(dense) < 1e-12
    for index, (label, results) in enumerate(zip(labels, runs)):
        colour = f"C{index % 10}"
        style = {key: value for key, value in TICKET_STYLE.items() if key != "color"}
        curve(main, results.levels, "test_accuracy", label, dict(style, color=colour), several_seeds(results), 100.0)
        if dense[index] is not None and not shared_dense:
            main.axhline(100.0 * dense[index], color=colour, linestyle=":", linewidth=1.0, zorder=1,
                         label=f"dense {label} ({100.0 * dense[index]:.1f} %)")
    if shared_dense:
        main.axhline(100.0 * dense[0], color="0.4", linestyle=":", linewidth=1.0, zorder=1,
                     label=f"dense ({100.0 * dense[0]:.1f} %)")
    sparsity_axis(main, remaining)
    main.set_ylabel("Test accuracy (%)")
    titles = {run_title(results.config, False).splitlines()[0] for results in runs}
    main.set_title(titles.pop() if len(titles) == 1 else "test accuracy of each run's ticket", fontsize=10)
    legend(main)
    panels = []
    for slot, index in enumerate(with_branches):
        axes = style_axes(figure.add_subplot(grid[1 + slot // columns, slot % columns],
                                             sharey=panels[0] if panels else None))
        results = runs[index]
        for key, name, style in _compared(results):
            colour = f"C{index % 10}" if key == "test_accuracy" else "0.35"
            curve(axes, results.levels, key, name, dict(style, color=colour), several_seeds(results), 100.0)
        sparsity_axis(axes, remaining)
        axes.set_title(labels[index], fontsize=9)
        axes.tick_params(labelsize=7)
        axes.xaxis.label.set_fontsize(7)
        legend(axes, fontsize=6)
        panels.append(axes)
    return figure


def _dense_accuracy(results: Results) -> float | None:
    """The run's level-0 test accuracy, or None when it has no level 0."""
    first = results.levels[0]
    return first.get("test_accuracy") if first["level"] == 0 else None


def plot_comparison(
    runs: Sequence[Results], labels: Sequence[str], out_dir: str | os.PathLike[str],
    overlap: OverlapMatrix | None = None,
) -> list[Path]:
    """Write ``compare.png``/``.svg`` (:func:`comparison_figure`) and, given the overlap of the
    runs' tickets, ``compare_overlap.png``/``.svg`` (:func:`lth_prune.report.anatomy.overlap_figure`).

    Args:
        runs: the runs' results.
        labels: one label per run.
        out_dir: where to write; created if missing.
        overlap: e.g. :func:`lth_prune.analysis.run_overlap` of the two runs.

    Returns:
        The paths written.

    Example:
        >>> import tempfile
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [{"level": n, "seed": 0, "weights_remaining": 0.8 ** n, "layers": {},
        ...             "test_accuracy": 0.9} for n in range(2)]
        >>> results = Results.from_records(ExperimentConfig(), records)
        >>> [path.name for path in plot_comparison([results, results], ["A", "B"], tempfile.mkdtemp())]
        ['compare.png', 'compare.svg']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = save_figure(comparison_figure(runs, labels), out / "compare")
    if overlap is not None:
        paths += save_figure(overlap_figure(overlap), out / "compare_overlap")
    return paths


def _compared(results: Results) -> list[tuple[str, str, dict[str, Any]]]:
    """(key, short header, line style): the ticket solid, the branches as in accuracy_figure
    but for colour, which the caller chooses."""
    ticket = ("test_accuracy", "ticket", {k: v for k, v in TICKET_STYLE.items() if k != "color"})
    branches = [(key, label, {k: v for k, v in style.items() if k != "color"}) for key, label, style in branch_curves(results)]
    return [ticket, *branches]
