"""Two or more runs side by side (``lth-prune compare``): one table, one figure.

Drawn like :mod:`lth_prune.report.figures`: :class:`matplotlib.figure.Figure` objects with the
Agg canvas, no ``pyplot``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

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
    new_figure,
    run_title,
    save_figure,
    sparsity_axis,
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
    """Test accuracy against percent of weights remaining for several runs on one axis.

    Each run has its colour: its ticket solid, its controls dashed, its dense accuracy a
    dotted line.

    Args:
        runs: the runs' results.
        labels: one label per run, used in the legend.

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
        >>> [text.get_text() for text in figure.axes[0].get_legend().get_texts()][:2]
        ['A: ticket', 'B: ticket']
    """
    if len(labels) != len(runs):
        raise ValueError(f"comparison_figure(): labels must have one label per run ({len(runs)}), got {len(labels)}.")
    for results in runs:
        check_results("comparison_figure", results)
    figure, axes = new_figure()
    for index, (label, results) in enumerate(zip(labels, runs)):
        colour = f"C{index % 10}"
        for key, name, style in _compared(results):
            curve(axes, results.levels, key, f"{label}: {name}", dict(style, color=colour), several_seeds(results), 100.0)
        dense = results.levels[0].get("test_accuracy") if results.levels[0]["level"] == 0 else None
        if dense is not None:
            axes.axhline(100.0 * dense, color=colour, linestyle=":", linewidth=1.0, zorder=1,
                         label=f"dense {label} ({100.0 * dense:.1f} %)")
    remaining = sorted({entry["weights_remaining"] for results in runs for entry in results.levels}, reverse=True)
    sparsity_axis(axes, [{"weights_remaining": value} for value in remaining])
    axes.set_ylabel("Test accuracy (%)")
    axes.set_title("\n".join(f"{label}: {run_title(results.config, False).splitlines()[0]}"
                             for label, results in zip(labels, runs)), fontsize=9)
    legend(axes)
    return figure


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
    """(key, short header, line style): the ticket solid, the branches as in accuracy_figure."""
    ticket = ("test_accuracy", "ticket", {k: v for k, v in TICKET_STYLE.items() if k != "color"})
    branches = [(key, label, {k: v for k, v in style.items() if k != "color"}) for key, label, style in branch_curves(results)]
    return [ticket, *branches]
