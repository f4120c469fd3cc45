"""The run store and the results: everything a run directory holds, in one package.

:class:`RunStore` is the one owner of a run directory's layout, its lock, its atomic writes and
its validated reads, and the one judge of whether a directory is fresh, resumable or foreign
(:meth:`RunStore.check_start`); :class:`Results` aggregates a run's per-seed records and is
written and read through it. The engine (:mod:`lth_prune.imp`) writes here; the report, the
analysis and the studies read here.
"""
from __future__ import annotations

from lth_prune.imp.store.results import METRICS, Results
from lth_prune.imp.store.rundir import TRANSFER_FILE, RunDirectoryError, RunStore, TicketPath

__all__ = ["METRICS", "Results", "RunDirectoryError", "RunStore", "TRANSFER_FILE", "TicketPath"]
