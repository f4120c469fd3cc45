"""A loader that serves batches by indexing tensors already in (device) memory.

Small data sets (MNIST, Fashion-MNIST, CIFAR-10) fit on any accelerator; indexing whole batches out
of resident tensors skips ``DataLoader``'s per-sample Python calls, collation and host-to-device
copies, which otherwise dominate the step time of the small networks lottery-ticket studies train.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

__all__ = ["InMemoryLoader"]


class InMemoryLoader:
    """Iterate ``(x, y)`` batches of tensors held in memory, one shuffled permutation per epoch.

    Each epoch draws one permutation of all examples (from ``generator`` when given, so the order
    is reproducible from its seed) and indexes whole batches with it. Without shuffling, batches
    are views (slices) of the stored tensors, so an ``augment`` callable must not modify its input
    in place.

    Args:
        x: inputs, any tensor whose first dimension indexes examples, e.g. ``(N, C, H, W)``.
        y: targets with the same first dimension ``N``.
        batch_size: examples per batch, a positive int.
        shuffle: draw a fresh random order every epoch.
        drop_last: skip the last batch when it has fewer than ``batch_size`` examples.
        augment: optional batch-level callable ``(B, ...) -> (B, ...)`` applied to every input batch,
            e.g. :func:`lth_prune.data.random_crop_flip`.
        generator: source of the permutations; ``None`` uses torch's global CPU generator. The
            permutation is drawn on the generator's device and moved to the data's device.
        device: move ``x`` and ``y`` there once, at construction; ``None`` keeps them where they are.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``x`` and ``y`` differ in length or ``batch_size`` is not positive.

    Example:
        >>> import torch
        >>> loader = InMemoryLoader(torch.arange(10.0), torch.arange(10), batch_size=4,
        ...                         generator=torch.Generator().manual_seed(0))
        >>> len(loader), [len(y) for _, y in loader]
        (3, [4, 4, 2])
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        for argument, value in (("x", x), ("y", y)):
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                raise TypeError(
                    f"InMemoryLoader(): {argument} must be a tensor with an example dimension, got "
                    f"{_describe(value)}."
                )
        if len(x) != len(y):
            raise ValueError(f"InMemoryLoader(): x and y must have the same length, got {len(x)} and {len(y)}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"InMemoryLoader(): batch_size must be an int, got {type(batch_size).__name__}.")
        if batch_size < 1:
            raise ValueError(f"InMemoryLoader(): batch_size must be positive, got {batch_size}.")
        for argument, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                raise TypeError(f"InMemoryLoader(): {argument} must be a bool, got {type(flag).__name__}.")
        if augment is not None and not callable(augment):
            raise TypeError(f"InMemoryLoader(): augment must be callable or None, got {type(augment).__name__}.")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"InMemoryLoader(): generator must be a torch.Generator or None, got {type(generator).__name__}."
            )
        if device is not None:
            x, y = x.to(device), y.to(device)
        self.x = x
        self.y = y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.augment = augment
        self.generator = generator

    def __len__(self) -> int:
        """Number of batches per epoch."""
        if self.drop_last:
            return len(self.y) // self.batch_size
        return -(-len(self.y) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the epoch's ``(x_batch, y_batch)`` pairs; each call starts a new epoch."""
        order = self._permutation() if self.shuffle else None
        # x and y may live on different devices when no `device` was given.
        target_order = order.to(self.y.device) if order is not None else None
        for batch in range(len(self)):
            start = batch * self.batch_size
            if order is None or target_order is None:
                inputs = self.x[start : start + self.batch_size]
                targets = self.y[start : start + self.batch_size]
            else:
                inputs = self.x[order[start : start + self.batch_size]]
                targets = self.y[target_order[start : start + self.batch_size]]
            if self.augment is not None:
                inputs = self.augment(inputs)
            yield inputs, targets

    def __repr__(self) -> str:
        return (
            f"InMemoryLoader(examples={self.num_examples}, batch_size={self.batch_size}, "
            f"batches={len(self)}, shuffle={self.shuffle}, drop_last={self.drop_last}, "
            f"device={self.device})"
        )

    @property
    def num_examples(self) -> int:
        """Number of examples held (``N``), including any the last dropped batch would skip."""
        return len(self.y)

    @property
    def device(self) -> torch.device:
        """Device of the stored inputs, where the batches are produced."""
        return self.x.device

    def _permutation(self) -> torch.Tensor:
        if self.generator is None:
            order = torch.randperm(len(self.y))
        else:
            order = torch.randperm(len(self.y), generator=self.generator, device=self.generator.device)
        return order.to(self.x.device)


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a 0-d tensor of shape {tuple(value.shape)}"
    return type(value).__name__
