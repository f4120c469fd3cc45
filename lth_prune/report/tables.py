"""The per-level table of an IMP run: accuracy and early stopping at every sparsity level."""
from __future__ import annotations

import math
from typing import Sequence

from tabulate import tabulate

from lth_prune.imp import Results
from lth_prune.imp.branches import BRANCHES
from lth_prune.report._cells import check_table_format, format_cell, several_seeds

__all__ = ["format_table", "percent_labels"]


def format_table(results: Results, *, tablefmt: str = "github") -> str:
    """A text table of ``results``, one row per pruning level.

    Columns: level, percent of weights remaining, test accuracy after retraining, accuracy
    right after pruning without retraining, the accuracy of each control that was run, and
    the early-stopping iteration (the step of minimum validation loss). Accuracies are in
    percent; with several seeds each cell is ``mean ± std``. Only measured columns appear;
    a level that did not measure a value (level 0 has no no-retrain or control accuracy)
    shows ``-``.

    Args:
        results: the outcome of :func:`lth_prune.imp.run` or :meth:`Results.load`.
        tablefmt: a :mod:`tabulate` table format, e.g. ``"github"``, ``"latex_booktabs"``,
            ``"plain"``.

    Returns:
        The table as one string (no trailing newline).

    Raises:
        TypeError: if ``results`` is not a :class:`lth_prune.imp.Results`.
        ValueError: if ``tablefmt`` is not a format tabulate knows.

    Example:
        >>> from lth_prune import imp
        >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=1, epochs=1, controls=())
        >>> print(format_table(imp.run(config, progress=False)).splitlines()[0])
        |   level |   weights remaining (%) |   test accuracy (%) |   no retraining (%) |   early stop (iteration) |
    """
    if not isinstance(results, Results):
        raise TypeError(f"format_table(): results must be a lth_prune.imp.Results, got {type(results).__name__}.")
    check_table_format("format_table", tablefmt)
    levels = results.levels
    several = several_seeds(results)
    # (key, header, whether it is an accuracy); a column appears only when some level measured
    # it, so a branch that did not run never shows up as a column of dashes.
    candidates = [
        ("test_accuracy", "test accuracy (%)", True),
        ("no_retrain_accuracy", "no retraining (%)", True),
        *((BRANCHES.get(name).metrics[0], f"{BRANCHES.title(name)} (%)", True) for name in results.branches),
        ("early_stop_iteration", "early stop (iteration)", False),
    ]
    columns = [c for c in candidates if any(level.get(c[0]) is not None for level in levels)]
    headers = ["level", "weights remaining (%)"] + [header for _, header, _ in columns]
    remaining = percent_labels([level["weights_remaining"] for level in levels])
    rows = [
        [str(level["level"]), label]
        + [format_cell(level, key, accuracy, several) for key, _, accuracy in columns]
        for level, label in zip(levels, remaining)
    ]
    # Numbers are pre-formatted so tabulate must not re-parse them (it would drop "80.20"'s 0).
    return tabulate(
        rows, headers=headers, tablefmt=tablefmt, disable_numparse=True,
        colalign=("right",) * len(headers),
    )


def percent_labels(fractions: Sequence[float]) -> list[str]:
    """Fractions of weights remaining written as percentages that tell every level apart.

    One decimal down to 1 % (``100.0``, ``80.2``, ``1.2``), then two significant digits
    (``0.94``, ``0.075``), and more decimals for all when two different fractions would
    still print the same.

    Args:
        fractions: values in ``[0, 1]``.

    Returns:
        One label per fraction, without the ``%`` sign.

    Example:
        >>> percent_labels([1.0, 0.802, 0.0094, 0.0075])
        ['100.0', '80.2', '0.94', '0.75']
    """
    percents = [100.0 * float(f) for f in fractions]
    for extra in range(4):
        labels = [f"{p:.{_decimals(p) + extra}f}" for p in percents]
        if len(set(labels)) == len(set(percents)):  # distinct levels, distinct labels
            break
    return labels


def _decimals(percent: float) -> int:
    if percent <= 0.0 or percent >= 1.0:
        return 1
    return 1 - math.floor(math.log10(percent))
