"""Searches: how each level's ticket is found, one module per method.

* ``"imp"`` (:mod:`~lth_prune.imp.searches.iterative`): iterative magnitude pruning of the
  trained network, reset by the rewind policy;
* every criterion of :mod:`lth_prune.criteria` (:mod:`~lth_prune.imp.searches.at_init`):
  the initialization pruned to the level's count, then trained;
* ``"gmp"`` (:mod:`~lth_prune.imp.searches.gradual`): pruned during training;
* ``"transfer"`` (:mod:`~lth_prune.imp.searches.transfer`): another run's tickets, fitted to this
  run's data.

The level loop asks the search for each level's network and trains it; levels, seeds, branches,
results, tables and figures are the same for every method, so runs of different methods
compare directly. A new method is one module here (or in a user's ``--plugin`` module): a
:class:`Search` subclass registered with ``@METHODS.register("name", title=..., help=...)``.

Example:
    >>> [METHODS.get(method).__name__ for method in ("imp", "snip", "gmp")]
    ['IterativeMagnitude', 'AtInitialization', 'GradualMagnitude']
    >>> METHODS.names()
    ['gmp', 'imp', 'transfer', 'snip', 'grasp', 'synflow', 'magnitude-init', 'random']
"""
from __future__ import annotations

from lth_prune.imp.searches.base import METHODS, LevelStart, Search

# The built-in searches (at_init, gradual, iterative) read the settings, which ask METHODS: so
# they are imported, and registered, by lth_prune.imp once the settings module exists.
__all__ = ["METHODS", "LevelStart", "Search"]
