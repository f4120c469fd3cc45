"""Tables and figures of an IMP run, drawn from its results: ``lth-prune report`` and the figures
of ``lth-prune run``. The experiment never draws; after :func:`lth_prune.imp.run` (or
:func:`lth_prune.imp.transfer.transfer`) into a run directory, :func:`plot_run` draws its figures.

Example:
    >>> import tempfile
    >>> from lth_prune import imp, report
    >>> results = imp.run(imp.ExperimentConfig(dataset="synthetic", rounds=1, epochs=1), progress=False)
    >>> report.format_table(results).splitlines()[0].split("|")[1:4]
    ['   level ', '   weights remaining (%) ', '   test accuracy (%) ']
    >>> [path.name for path in report.plot_results(results, tempfile.mkdtemp())][:2]
    ['accuracy.png', 'accuracy.svg']
"""
from __future__ import annotations

from lth_prune.report.figures import (
    FIGURE_FORMATS,
    FIGURE_NAMES,
    accuracy_figure,
    early_stop_figure,
    figure_paths,
    plot_results,
    plot_run,
    plot_transfer,
)
from lth_prune.report.tables import format_table, percent_labels

__all__ = [
    # tables
    "format_table",
    "percent_labels",
    # figures
    "plot_run",
    "plot_results",
    "plot_transfer",
    "accuracy_figure",
    "early_stop_figure",
    "figure_paths",
    "FIGURE_NAMES",
    "FIGURE_FORMATS",
]
