"""The lottery-ticket experiment: iterative magnitude pruning with rewinding and controls.

Example:
    >>> from lth_prune import imp
    >>> config = imp.ExperimentConfig(dataset="synthetic", rounds=2, epochs=1)
    >>> results = imp.run(config, progress=False)
    >>> len(results.levels)
    3
"""
from __future__ import annotations

from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.config import PRESETS, ExperimentConfig
from lth_prune.imp.experiment import run
from lth_prune.imp.store import METRICS, Results
from lth_prune.imp.rewinding import REWIND_POLICIES
from lth_prune.imp.searches import METHODS

# Importing a search registers it (after the settings, which they read).
from lth_prune.imp.searches import at_init, gradual, iterative, transfer  # noqa: E402, F401  isort: skip

__all__ = [
    # settings
    "ExperimentConfig",
    "PRESETS",
    # what the settings choose from: registries open to a user's own entries
    "METHODS",
    "REWIND_POLICIES",
    "BRANCHES",
    # running
    "run",
    # results
    "Results",
    "METRICS",
]
