"""What the report's figures share: the look of a figure, its sparsity axis, its curves and titles.

Figures are :class:`matplotlib.figure.Figure` objects with the Agg canvas, never ``pyplot``,
so they work headless, in threads and inside other people's scripts without touching global
plotting state.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

from lth_prune.imp import ExperimentConfig, Results
from lth_prune.data import DATASETS
from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.rewinding import REWIND_POLICIES
from lth_prune.imp.searches import METHODS
from lth_prune.models import MODELS
from lth_prune.report.tables import percent_labels

FIGURE_FORMATS = ("png", "svg")
# Frankle & Carbin draw tickets solid and controls dashed; colours are matplotlib's default
# cycle, the ticket C0 and the branches from C1 on, in the order of the branch registry.
TICKET_STYLE: dict[str, Any] = dict(color="C0", linestyle="-", marker="o")
NO_RETRAIN_STYLE: dict[str, Any] = dict(color="C7", linestyle=":", marker="x")
_BRANCH_LINES = ("--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (5, 2)))
_BRANCH_MARKERS = ("s", "^", "D", "v", "P", "X")
_MAX_TICK_LABELS = 10
_DPI = 200


def check_results(function: str, results: Results) -> None:
    """Raise unless ``results`` is a :class:`~lth_prune.imp.Results` with at least one level."""
    if not isinstance(results, Results):
        raise TypeError(f"{function}(): results must be a lth_prune.imp.Results, got {type(results).__name__}.")
    if not results.levels:
        raise ValueError(f"{function}(): results must hold at least one level, got none.")


def branch_curves(results: Results) -> list[tuple[str, str, dict[str, Any]]]:
    """``(metric, label, style)`` of each branch whose accuracy the run measured, in registry order."""
    curves = []
    for index, name in enumerate(name for name in results.branches if BRANCHES.get(name).accuracy):
        branch = BRANCHES.get(name)
        style = dict(
            color=f"C{1 + index % 6}", linestyle=_BRANCH_LINES[index % len(_BRANCH_LINES)],
            marker=_BRANCH_MARKERS[index % len(_BRANCH_MARKERS)],
        )
        curves.append((branch.metrics[0], BRANCHES.title(name), style))
    return curves


def new_figure() -> tuple[Figure, Any]:
    """A figure with one axes in the report's style."""
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, style_axes(figure.add_subplot())


def style_axes(axes: Any) -> Any:
    """Give ``axes`` the report's grid and spines; return it."""
    axes.grid(True, which="major", color="0.9", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return axes


def curve(axes: Any, levels: Sequence[dict[str, Any]], key: str, label: str, style: dict[str, Any],
          several: bool, scale: float) -> None:
    """Draw ``key`` against percent of weights remaining, with error bars when ``several`` seeds."""
    points = [
        (100.0 * level["weights_remaining"], scale * level[key], scale * (level.get(key + "_std") or 0.0))
        for level in levels if measured(level.get(key)) and level["weights_remaining"] > 0
    ]
    if not points:
        return
    x, y, spread = (list(column) for column in zip(*points))
    if several:
        axes.errorbar(x, y, yerr=spread, label=label, capsize=2.5, markersize=4, linewidth=1.4,
                      elinewidth=0.9, **style)
    else:
        axes.plot(x, y, label=label, markersize=4, linewidth=1.4, **style)


def legend(axes: Any, fontsize: float = 8) -> None:
    """The legend in drawing order, the dense reference last."""
    handles, labels = axes.get_legend_handles_labels()
    # matplotlib lists plain lines before error-bar containers; keep the drawing order instead.
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("dense"))
    axes.legend([handles[i] for i in order], [labels[i] for i in order], loc="best", fontsize=fontsize, frameon=False)


def sparsity_axis(axes: Any, levels: Sequence[dict[str, Any]]) -> None:
    """Log axis of percent remaining, reversed (sparser to the right), labelled at the levels.

    A level with no weight left has no place on a log axis and gets no tick (its points are
    not drawn either, see :func:`curve`).
    """
    levels = [level for level in levels if level["weights_remaining"] > 0]
    if not levels:
        return
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


def run_title(config: ExperimentConfig, several: bool) -> str:
    """``"<model> on <data set>"`` and a line saying how it was pruned (and rewound), by the titles
    the registries hold."""
    model = MODELS.title(config.model)
    dataset = DATASETS.title(config.dataset)
    pruning = "layer-wise" if config.pruning_mode == "layerwise" else "global"
    if METHODS.get(config.method).rewinds:
        schedule = "one-shot" if config.one_shot else "iterative"
        how = f"{schedule} {pruning} pruning, {_policy(config).description}"
    else:
        how = f"{METHODS.title(config.method)}, {pruning} pruning"
    seeds = f", mean ± std of {len(config.seeds)} seeds" if several else ""
    return f"{model} on {dataset}\n{how}{seeds}"


def ticket_label(config: ExperimentConfig) -> str:
    """What the legend calls the retrained pruned network: the rewind mode's name for it where
    the method rewinds (IMP), else the method's title."""
    if METHODS.get(config.method).rewinds:
        return _policy(config).ticket_label
    return METHODS.title(config.method)


def save_figure(figure: Figure, stem: Path) -> list[Path]:
    """Write ``figure`` as ``<stem>.png`` and ``<stem>.svg``; return the paths."""
    paths = []
    for ext in FIGURE_FORMATS:
        path = stem.with_name(f"{stem.name}.{ext}")
        # Through a temporary name, so a reader never sees half a figure.
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        metadata = {"Date": None} if ext == "svg" else None  # no timestamp: re-drawing gives the same file
        try:
            figure.savefig(temporary, format=ext, dpi=_DPI, metadata=metadata)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        paths.append(path)
    return paths


def measured(value: Any) -> bool:
    """Whether a level holds a value for a key (not missing, not NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _policy(config: ExperimentConfig) -> Any:
    return REWIND_POLICIES.get(config.rewind)(config.rewind_step)
