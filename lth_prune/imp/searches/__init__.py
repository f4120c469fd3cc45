"""Searches: how each level's ticket is found, one module per method.

* ``"imp"`` (:mod:`~lth_prune.imp.searches.iterative`): iterative magnitude pruning of the
  trained network, reset by the rewind policy;
* every criterion of :mod:`lth_prune.criteria` (:mod:`~lth_prune.imp.searches.at_init`):
  the initialization pruned to the level's count, then trained;
* ``"gmp"`` (:mod:`~lth_prune.imp.searches.gradual`): pruned during training.

The level loop asks the search for each level's network and trains it; levels, seeds, branches,
results, tables and figures are the same for every method, so runs of different methods
compare directly. A new method is one module here, registered with :func:`register_search`.

Example:
    >>> [search_for(method).__name__ for method in ("imp", "snip", "gmp")]
    ['IterativeMagnitude', 'AtInitialization', 'GradualMagnitude']
"""
from __future__ import annotations

from lth_prune.imp.searches.base import AT_INIT, LevelStart, Search, register_search, search_for

# Importing a search registers it.
from lth_prune.imp.searches import at_init, gradual, iterative  # noqa: E402, F401  isort: skip

__all__ = ["AT_INIT", "LevelStart", "Search", "register_search", "search_for"]
