"""The lottery-ticket experiment: iterative magnitude pruning with rewinding and controls.

Example:
    >>> from lth_prune import imp
    >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=2, epochs=1)
    >>> results = imp.run(config, progress=False)
    >>> len(results.levels)
    3
"""
from __future__ import annotations

from lth_prune.imp.config import CONTROLS, METHODS, PRESETS, REWIND_MODES, ExperimentConfig
from lth_prune.imp.experiment import run
from lth_prune.imp.results import METRICS, Results

__all__ = [
    # settings
    "ExperimentConfig",
    "PRESETS",
    "REWIND_MODES",
    "CONTROLS",
    "METHODS",
    # running
    "run",
    # results
    "Results",
    "METRICS",
]
