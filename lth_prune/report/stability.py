"""Figures of linear mode connectivity: instability against weights remaining, against the
rewind step, and the error along the path between two copies (Frankle et al., ICML 2020)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.figure import Figure

from lth_prune.data import DATASETS
from lth_prune.imp import Results
from lth_prune.studies.stability import RewindStability
from lth_prune.models import MODELS
from lth_prune.report._cells import several_seeds
from lth_prune.report._drawing import (
    check_results,
    curve,
    legend,
    new_figure,
    run_title,
    save_figure,
    sparsity_axis,
)

__all__ = ["path_figure", "plot_rewind_stability", "rewind_stability_figure", "stability_figure"]

METRIC = "stability_instability"
ERRORS = "stability_errors"


def stability_figure(results: Results) -> Figure | None:
    """Instability of the ticket (``stability`` branch) against percent of weights remaining.

    Args:
        results: a run that recorded the ``stability`` branch.

    Returns:
        A :class:`matplotlib.figure.Figure`, or ``None`` if no level measured stability.

    Example:
        >>> from lth_prune.imp import ExperimentConfig, Results
        >>> records = [{"level": n, "seed": 0, "weights_remaining": 0.8 ** n, "layers": {},
        ...             "stability_instability": 0.02 * n, "stability_errors": [0.1, 0.1 + 0.02 * n, 0.1]}
        ...            for n in range(1, 3)]
        >>> stability_figure(Results.from_records(ExperimentConfig(), records)).axes[0].get_ylabel()
        'Instability (% error)'
    """
    check_results("stability_figure", results)
    measured = [level for level in results.levels if level.get(METRIC) is not None]
    if not measured:
        return None
    figure, axes = new_figure()
    curve(axes, measured, METRIC, "ticket at its rewind point", dict(color="C0", linestyle="-", marker="o"),
          several_seeds(results), scale=100.0)
    axes.axhline(0.0, color="0.35", linestyle="--", linewidth=1.0, zorder=1)
    axes.set_ylabel("Instability (% error)")
    axes.set_title(run_title(results.config, several_seeds(results)) + "\nlinear mode connectivity", fontsize=10)
    sparsity_axis(axes, measured)
    legend(axes)
    return figure


def path_figure(paths: Mapping[str, Sequence[float]], *, title: str = "") -> Figure:
    """Test error along the line between two copies, one curve per label.

    Args:
        paths: errors (fractions in [0, 1]) at evenly spaced points from copy A to copy B, by label.
        title: a title.

    Raises:
        ValueError: if ``paths`` is empty or a path has fewer than 2 points.

    Example:
        >>> figure = path_figure({"level 1": [0.1, 0.3, 0.1]})
        >>> figure.axes[0].get_xlabel()
        'Interpolation (0: copy A, 1: copy B)'
    """
    if not paths or any(len(errors) < 2 for errors in paths.values()):
        raise ValueError("path_figure(): paths must hold at least one path of at least 2 points, got none.")
    figure, axes = new_figure()
    for index, (label, errors) in enumerate(paths.items()):
        alphas = [position / (len(errors) - 1) for position in range(len(errors))]
        axes.plot(alphas, [100.0 * error for error in errors], label=label, color=f"C{index % 10}", linewidth=1.4)
    axes.set_xlabel("Interpolation (0: copy A, 1: copy B)")
    axes.set_ylabel("Test error (%)")
    if title:
        axes.set_title(title, fontsize=10)
    legend(axes)
    return figure


def rewind_stability_figure(steps: Sequence[int], instability: Sequence[float], spread: Sequence[float] | None = None,
                            *, title: str = "") -> Figure:
    """Instability against the rewind step k (the paper's Figure 2 style, k on a log-like axis).

    Args:
        steps: the rewind steps (0: initialization).
        instability: the instability at each (a fraction).
        spread: its standard deviation over seeds, for error bars.
        title: a title.

    Example:
        >>> rewind_stability_figure([0, 10, 100], [0.3, 0.1, 0.0]).axes[0].get_xlabel()
        'Rewind step k (optimizer steps)'
    """
    if len(steps) != len(instability) or not steps:
        raise ValueError(f"rewind_stability_figure(): steps and instability must be equally long and not empty, got {len(steps)} and {len(instability)}.")
    figure, axes = new_figure()
    style: dict[str, Any] = dict(color="C0", marker="o", linewidth=1.4, markersize=4)
    values = [100.0 * value for value in instability]
    if spread is not None:
        axes.errorbar(list(steps), values, yerr=[100.0 * value for value in spread], capsize=2.5, **style)
    else:
        axes.plot(list(steps), values, **style)
    axes.set_xscale("symlog", linthresh=max(1, min((step for step in steps if step > 0), default=1)))
    axes.axhline(0.0, color="0.35", linestyle="--", linewidth=1.0, zorder=1)
    axes.set_xlabel("Rewind step k (optimizer steps)")
    axes.set_ylabel("Instability (% error)")
    if title:
        axes.set_title(title, fontsize=10)
    return figure


def plot_rewind_stability(result: RewindStability, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``stability_rewind`` (instability against k) and ``stability_paths`` (the error
    along each path), PNG and SVG, for a :func:`lth_prune.studies.stability.rewind_stability` result.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = result.config
    seeds = f", mean of {len(config.seeds)} seeds" if len(config.seeds) > 1 else ""
    title = f"{MODELS.title(config.model)} on {DATASETS.title(config.dataset)}: dense network{seeds}"
    written = save_figure(rewind_stability_figure(result.steps, result.instability, result.spread, title=title),
                          out / "stability_rewind")
    paths = {f"k = {k}": errors for k, errors in zip(result.steps, result.errors)}
    written += save_figure(path_figure(paths, title=title), out / "stability_paths")
    return written
