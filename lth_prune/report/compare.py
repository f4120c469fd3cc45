"""Two or more runs side by side (``lth-prune compare``), and the figures of a ticket transfer.

Drawn like :mod:`lth_prune.report.figures`: :class:`matplotlib.figure.Figure` objects with the
Agg canvas, no ``pyplot``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.figure import Figure
from tabulate import tabulate

from lth_prune.imp.results import Results
from lth_prune.report.figures import (
    _DATASET_TITLES,
    _MODEL_TITLES,
    _check_results,
    _curve,
    _legend,
    _new_figure,
    _save,
    _sparsity_axis,
    _title,
    accuracy_figure,
    early_stop_figure,
)
from lth_prune.report.tables import _cell, _several_seeds, _table_formats, percent_labels

__all__ = ["comparison_figure", "format_comparison", "plot_transfer"]

# (key, short header, line style): the ticket solid, the controls as in accuracy_figure.
_COMPARED: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("test_accuracy", "ticket", dict(linestyle="-", marker="o")),
    ("random_reinit_accuracy", "random reinit", dict(linestyle="--", marker="s")),
    ("random_pruning_accuracy", "random pruning", dict(linestyle="-.", marker="^")),
)


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
        _check_results("format_comparison", results)
    if tablefmt not in _table_formats():
        raise ValueError(f"format_comparison(): tablefmt must be one of {sorted(_table_formats())}, got {tablefmt!r}.")
    by_level = [{entry["level"]: entry for entry in results.levels} for results in runs]
    numbers = sorted(set().union(*by_level))
    headers, columns = ["level"], []
    for label, results, levels in zip(labels, runs, by_level):
        headers.append(f"{label}: remaining (%)")
        measured = [(key, name) for key, name, _ in _COMPARED if any(e.get(key) is not None for e in results.levels)]
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
            row += [_cell(entry, key, True, _several_seeds(results)) for key, _ in measured]
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
        _check_results("comparison_figure", results)
    figure, axes = _new_figure()
    for index, (label, results) in enumerate(zip(labels, runs)):
        colour = f"C{index % 10}"
        for key, name, style in _COMPARED:
            _curve(axes, results.levels, key, f"{label}: {name}", dict(style, color=colour), _several_seeds(results), 100.0)
        dense = results.levels[0].get("test_accuracy") if results.levels[0]["level"] == 0 else None
        if dense is not None:
            axes.axhline(100.0 * dense, color=colour, linestyle=":", linewidth=1.0, zorder=1,
                         label=f"dense {label} ({100.0 * dense:.1f} %)")
    remaining = sorted({entry["weights_remaining"] for results in runs for entry in results.levels}, reverse=True)
    _sparsity_axis(axes, [{"weights_remaining": value} for value in remaining])
    axes.set_ylabel("Test accuracy (%)")
    axes.set_title("\n".join(f"{label}: {_title(results.config, False).splitlines()[0]}"
                             for label, results in zip(labels, runs)), fontsize=9)
    _legend(axes)
    return figure


def plot_transfer(results: Results, out_dir: str | os.PathLike[str], transfer: Mapping[str, Any]) -> list[Path]:
    """The figures of a ticket transfer: those of :func:`lth_prune.report.plot_results`, titled
    with where the tickets were found and how the output layer was fitted.

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
    _check_results("plot_transfer", results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = _MODEL_TITLES.get(results.config.model, results.config.model)
    source = _DATASET_TITLES.get(transfer.get("source_dataset", ""), transfer.get("source_dataset", "another data set"))
    target = _DATASET_TITLES.get(results.config.dataset, results.config.dataset)
    resized = f"images resized to {'x'.join(map(str, transfer['input_shape'][1:]))}, " if transfer.get("resized") else ""
    output = "new output layer" if transfer.get("output_layer") == "new" else "output layer transferred"
    title = f"{model}: tickets found on {source}, trained on {target}\n{resized}{output}"
    written: list[Path] = []
    for name, figure in (("accuracy", accuracy_figure(results)), ("early_stop", early_stop_figure(results))):
        if figure is None:
            continue
        axes = figure.axes[0]
        axes.set_title(title, fontsize=10)
        # Lines carry the labels of single-seed curves, error-bar containers those of several seeds.
        for artist in [*axes.get_lines(), *axes.containers]:
            if artist.get_label().startswith("winning ticket"):
                artist.set_label(f"ticket from {source}")
        _legend(axes)
        written.extend(_save(figure, out_dir / name))
    return written
