"""The controls that make a ticket mean something, and reproducible seeding.

* random re-initialization: the ticket's mask on a fresh initialization from the same
  distribution (does the ticket's *initialization* matter?);
* random pruning: a random mask with the ticket's per-layer sparsity on the ticket's starting
  weights (does the ticket's *structure* matter?).
"""
from __future__ import annotations

import hashlib

import torch
from torch import Tensor

__all__ = ["derive_seed", "random_masks"]


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed for one phase of a run (e.g. ``derive_seed(0, "train", 3)``).

    Each phase seeds itself from the run seed and its own name, so its randomness does not
    depend on what ran before it: a resumed run replays exactly what an uninterrupted run does.

    Example:
        >>> derive_seed(0, "train", 3) == derive_seed(0, "train", 3) != derive_seed(1, "train", 3)
        True
    """
    text = repr((int(seed),) + tuple(str(part) for part in parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)


def random_masks(masks: dict[str, Tensor], seed: int) -> dict[str, Tensor]:
    """Boolean masks of the same shapes that keep as many entries as ``masks``, chosen at random.

    Args:
        masks: masks by weight name (nonzero meaning kept).
        seed: seed of the random choice.

    Returns:
        Masks by the same names, each with exactly as many kept entries as the given one.

    Example:
        >>> mask = torch.tensor([[1, 0], [0, 1]], dtype=torch.bool)
        >>> int(random_masks({"w": mask}, seed=0)["w"].sum())
        2
    """
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for name, mask in masks.items():
        kept = int(torch.count_nonzero(mask))
        order = torch.randperm(mask.numel(), generator=generator)
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[order[:kept]] = True
        result[name] = flat.view(mask.shape).to(mask.device)
    return result
