"""What a ticket looks like: mask overlap (Jaccard) between tickets, and its weights' initial values.

:mod:`~lth_prune.analysis.overlap` compares masks you hold; :mod:`~lth_prune.analysis.runs`
reads the tickets of run directories. :mod:`lth_prune.report.anatomy` draws the results.

Example:
    >>> import torch
    >>> kept = {"fc.weight": torch.tensor([True, True, False, False])}
    >>> other = {"fc.weight": torch.tensor([True, False, True, False])}
    >>> round(mask_overlap(kept, other)["overall"], 4)
    0.3333
"""
from __future__ import annotations

from lth_prune.analysis.overlap import OverlapMatrix, mask_overlap, overlap_matrix
from lth_prune.analysis.runs import finished_levels, init_values, level_overlap, load_masks, run_overlap, seed_overlap

__all__ = [
    # comparing masks
    "OverlapMatrix",
    "mask_overlap",
    "overlap_matrix",
    # the tickets of run directories
    "finished_levels",
    "init_values",
    "level_overlap",
    "load_masks",
    "run_overlap",
    "seed_overlap",
]
