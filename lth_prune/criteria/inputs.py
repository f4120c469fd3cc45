"""What a criterion reads: the batches it scores on, and the mode it scores the network in.

Every score function takes its batches through :func:`iter_batches`, so each accepts the same
forms and refuses the rest with the same words; :func:`scoring_mode` resolves a criterion's
``mode`` argument against its paper's own choice.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Literal, Mapping, Union

from torch import Tensor

__all__ = ["BATCHES_EXPECTED", "Batch", "Batches", "Mode", "iter_batches", "scoring_mode"]

Batch = tuple[Tensor, Tensor]
# A list (any iterable) of (inputs, targets) batches, or one (inputs, targets) batch.
Batches = Union[Iterable[Batch], Batch]

# The mode a network is scored in: "train" (BatchNorm normalizes by the batch's statistics,
# Dropout drops) or "eval" (BatchNorm uses its running statistics, Dropout passes everything).
Mode = Literal["train", "eval"]

BATCHES_EXPECTED = "a list of (inputs, targets) batches, or one (inputs, targets) batch"


def iter_batches(batches: object, caller: str) -> Iterator[Batch]:
    """The ``(inputs, targets)`` batches in ``batches``: a list (any iterable) of them, or one.

    One batch is a tuple or list of two tensors, inputs first; a list of batches holds pairs,
    never a tensor, so the two cannot be mistaken for each other: ``[(x1, y1), (x2, y2)]`` is
    two batches, ``(x, y)`` one. The checks that need no batch are made at once; each batch is
    checked as it is read, so a data loader is not read ahead.

    Args:
        batches: what the caller was given.
        caller: the public function to name in errors, e.g. ``"snip_scores()"``.

    Returns:
        An iterator over the ``(inputs, targets)`` pairs.

    Raises:
        ValueError: if ``batches`` is ``None`` or yields nothing, or a batch's inputs and
            targets differ in their first (batch) dimension.
        TypeError: if ``batches`` is a tensor, or a batch is not a pair of tensors.

    Example:
        >>> import torch
        >>> x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
        >>> len(list(iter_batches((x, y), "f()"))), len(list(iter_batches([(x, y), (x, y)], "f()")))
        (1, 2)
    """
    if batches is None:
        raise ValueError(f"{caller}: batches must be {BATCHES_EXPECTED}, got None.")
    if isinstance(batches, Tensor):
        raise TypeError(f"{caller}: batches must be {BATCHES_EXPECTED}, got a Tensor of shape {tuple(batches.shape)}.")
    if isinstance(batches, (tuple, list)) and len(batches) == 2 and isinstance(batches[0], Tensor):
        if not isinstance(batches[1], Tensor):
            raise TypeError(f"{caller}: batches must be {BATCHES_EXPECTED}, got {_described(batches)}.")
        return iter([_checked_sizes(batches[0], batches[1], 0, caller)])
    if isinstance(batches, (Mapping, str)) or not isinstance(batches, Iterable):
        raise TypeError(f"{caller}: batches must be {BATCHES_EXPECTED}, got a {type(batches).__name__}.")
    return _each_batch(batches, caller)


def scoring_mode(mode: object, paper: Mode, caller: str) -> bool:
    """Whether to score in train mode: as ``mode`` says, or as the criterion's paper did where it is ``None``.

    Raises:
        ValueError: if ``mode`` is not ``"train"``, ``"eval"`` or ``None``.
    """
    if mode is None:
        mode = paper
    if not (isinstance(mode, str) and mode in ("train", "eval")):
        raise ValueError(f"{caller}: mode must be 'train', 'eval' or None (the paper's), got {mode!r}.")
    return mode == "train"


def _each_batch(batches: Iterable[object], caller: str) -> Iterator[Batch]:
    seen = 0
    for index, batch in enumerate(batches):
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(part, Tensor) for part in batch)):
            raise TypeError(
                f"{caller}: batches must be {BATCHES_EXPECTED}, got a {type(batches).__name__} whose batch {index} "
                f"is {_described(batch)}."
            )
        yield _checked_sizes(batch[0], batch[1], index, caller)
        seen += 1
    if not seen:
        raise ValueError(f"{caller}: batches must yield at least one batch, got none.")


def _described(batch: object) -> str:
    """``a Tensor``, ``a tuple of 3``, ``a tuple of (Tensor, list)``: what was passed as a batch."""
    if not isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__}"
    if len(batch) != 2:
        return f"a {type(batch).__name__} of {len(batch)}"
    return f"a {type(batch).__name__} of ({', '.join(type(part).__name__ for part in batch)})"


def _checked_sizes(inputs: Tensor, targets: Tensor, index: int, caller: str) -> Batch:
    if inputs.dim() == 0 or targets.dim() == 0:
        raise ValueError(
            f"{caller}: batch {index} must have a batch dimension in its inputs and targets, got shapes "
            f"{tuple(inputs.shape)} and {tuple(targets.shape)}."
        )
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"{caller}: batch {index} must hold as many targets as inputs, got {inputs.shape[0]} inputs and "
            f"{targets.shape[0]} targets."
        )
    return inputs, targets
