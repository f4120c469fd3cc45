"""Branches: what is trained from a level's ticket next to the ticket itself.

The word is open_lth's. At every level after the dense one, each branch the config names in
``controls`` gets the level's :class:`LevelTicket` (masks, the seed's full rewind point, a model
builder) and a trainer with the run's schedule and data, and returns its measurements for the
level's record. The controls of Frankle & Carbin (2019) are the two built-in branches:

* ``random_reinit`` (:mod:`~lth_prune.imp.branches.random_reinit`): does the ticket's
  initialization matter?
* ``random_pruning`` (:mod:`~lth_prune.imp.branches.random_pruning`): does its structure matter?

and the third sanity check of Frankle et al. (ICLR 2021), whose other two are the controls:

* ``inverted_scores`` (:mod:`~lth_prune.imp.branches.inverted_scores`): keep what the method
  would prune;

and the stability analysis of Frankle et al. (ICML 2020):

* ``stability`` (:mod:`~lth_prune.imp.branches.stability`): two copies from the ticket's start,
  the error along the line between them.

Adding a branch is one module here (or in a user's ``--plugin`` module): a :class:`Branch`
subclass decorated with ``@BRANCHES.register(title=..., help=...)``. Results, tables, figures
and ``lth-prune compare`` take its metrics and title from the registry and never name a branch.

Example:
    >>> BRANCHES.names()
    ['random_reinit', 'random_pruning', 'inverted_scores', 'stability']
    >>> BRANCHES.title("random_pruning"), BRANCHES.get("random_pruning").metrics
    ('random pruning', ('random_pruning_accuracy',))
"""
from __future__ import annotations

from lth_prune.imp.branches.base import BRANCHES, Branch, LevelTicket, Trainer

# Importing a branch module registers it; this order is the order of columns, curves and
# results.csv fields.
from lth_prune.imp.branches import random_reinit, random_pruning, inverted_scores, stability  # noqa: E402, F401  isort: skip

__all__ = ["BRANCHES", "Branch", "LevelTicket", "Trainer"]
