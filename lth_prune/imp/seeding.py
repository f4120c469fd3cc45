"""Reproducible seeding: every phase of a run draws from a seed of its own."""
from __future__ import annotations

import hashlib

__all__ = ["derive_seed"]


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed for one phase of a run (e.g. ``derive_seed(0, "train", 3)``).

    Each phase seeds itself from the run seed and its own name, so its randomness does not
    depend on what ran before it: a resumed run replays exactly what an uninterrupted run does,
    and adding a branch does not change the ticket's numbers.

    Example:
        >>> derive_seed(0, "train", 3) == derive_seed(0, "train", 3) != derive_seed(1, "train", 3)
        True
    """
    text = repr((int(seed),) + tuple(str(part) for part in parts)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & (2**63 - 1)
