"""Batch-level augmentations for :class:`~lth_prune.data.InMemoryLoader`.

They act on a whole ``(N, C, H, W)`` batch with a few tensor operations (no per-image Python work),
on whatever device the batch is on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["RandomCropFlip", "crop_flip", "random_crop_flip"]


class RandomCropFlip:
    """Random crop of a zero-padded batch plus random horizontal flip, the standard CIFAR recipe.

    Every image of the batch gets its own offsets in ``[0, 2 * padding]`` and, when ``flip`` is on,
    is mirrored with probability 1/2. The batch is padded once and the crops are gathered with
    per-image indices. Since the loaders see normalised images, a ``fill`` of 0 pads with the
    training set's mean colour rather than black.

    Args:
        padding: pixels of padding on each side, a non-negative int (4 for CIFAR-10).
        flip: mirror half of the images horizontally.
        fill: value of the padding.
        generator: source of the offsets and flips; ``None`` uses torch's global generator of the
            batch's device. Random numbers are drawn on the generator's device.

    Raises:
        TypeError: if ``padding`` is not an int, ``flip`` not a bool or ``generator`` not a generator.
        ValueError: if ``padding`` is negative.

    Example:
        >>> import torch
        >>> augment = RandomCropFlip(padding=4, generator=torch.Generator().manual_seed(0))
        >>> augment(torch.randn(8, 3, 32, 32)).shape
        torch.Size([8, 3, 32, 32])
    """

    def __init__(
        self,
        padding: int = 4,
        *,
        flip: bool = True,
        fill: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        if isinstance(padding, bool) or not isinstance(padding, int):
            raise TypeError(f"RandomCropFlip(): padding must be an int, got {type(padding).__name__}.")
        if padding < 0:
            raise ValueError(f"RandomCropFlip(): padding must be >= 0, got {padding}.")
        if not isinstance(flip, bool):
            raise TypeError(f"RandomCropFlip(): flip must be a bool, got {type(flip).__name__}.")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"RandomCropFlip(): generator must be a torch.Generator or None, got {type(generator).__name__}."
            )
        self.padding = padding
        self.flip = flip
        self.fill = float(fill)
        self.generator = generator

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Augment a batch.

        Args:
            images: ``(N, C, H, W)`` batch; it is not modified.

        Returns:
            A new ``(N, C, H, W)`` batch on the same device.
        """
        _check_images("RandomCropFlip()", images)
        count = images.shape[0]
        device = self.generator.device if self.generator is not None else images.device
        draws = torch.randint(0, 2 * self.padding + 1, (2, count), generator=self.generator, device=device)
        if self.flip:
            flipped = torch.randint(0, 2, (count,), generator=self.generator, device=device).bool()
        else:
            flipped = torch.zeros(count, dtype=torch.bool, device=device)
        top, left, flipped = draws[0].to(images.device), draws[1].to(images.device), flipped.to(images.device)
        # Not crop_flip(): its check of the offsets reads them back from the device, four
        # waits for an accelerator per batch, for offsets drawn in range just above.
        return _gather_crops(images, top, left, flipped, self.padding, self.fill)

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip}, fill={self.fill})"


def random_crop_flip(
    padding: int = 4,
    *,
    flip: bool = True,
    fill: float = 0.0,
    generator: torch.Generator | None = None,
) -> RandomCropFlip:
    """Build the batch augmentation of :class:`RandomCropFlip`, for ``InMemoryLoader(augment=...)``.

    Args:
        padding: pixels of padding on each side, a non-negative int.
        flip: mirror half of the images horizontally.
        fill: value of the padding (0 is the mean colour of normalised images).
        generator: source of the random offsets and flips, for reproducible augmentation.

    Returns:
        A callable ``(N, C, H, W) -> (N, C, H, W)``.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``padding`` is negative.

    Example:
        >>> import torch
        >>> identity = random_crop_flip(padding=0, flip=False)
        >>> batch = torch.randn(2, 3, 4, 4)
        >>> torch.equal(identity(batch), batch)
        True
    """
    return RandomCropFlip(padding, flip=flip, fill=fill, generator=generator)


def crop_flip(
    images: torch.Tensor,
    top: torch.Tensor,
    left: torch.Tensor,
    flipped: torch.Tensor,
    *,
    padding: int,
    fill: float = 0.0,
) -> torch.Tensor:
    """Crop each padded image at its own offset and mirror the selected ones: the deterministic core.

    Output image ``i`` is ``pad(images[i])[:, top[i]:top[i] + H, left[i]:left[i] + W]``, flipped
    left-right where ``flipped[i]``.

    Args:
        images: ``(N, C, H, W)`` batch.
        top: ``(N,)`` integer row offsets in ``[0, 2 * padding]`` into the padded images.
        left: ``(N,)`` integer column offsets in ``[0, 2 * padding]``.
        flipped: ``(N,)`` bool, which images to mirror.
        padding: pixels of padding on each side, a non-negative int.
        fill: value of the padding.

    Returns:
        The ``(N, C, H, W)`` crops.

    Raises:
        TypeError: if ``images`` is not a tensor.
        ValueError: if shapes or offsets are invalid.

    Example:
        >>> import torch
        >>> image = torch.arange(4.0).view(1, 1, 2, 2)
        >>> centre = torch.ones(1, dtype=torch.long)  # offset `padding`: the unshifted crop
        >>> crop_flip(image, centre, centre, torch.tensor([True]), padding=1).flatten().tolist()
        [1.0, 0.0, 3.0, 2.0]
        >>> crop_flip(image, centre - 1, centre - 1, torch.tensor([False]), padding=1).flatten().tolist()
        [0.0, 0.0, 0.0, 0.0]
    """
    _check_images("crop_flip()", images)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"crop_flip(): padding must be a non-negative int, got {padding!r}.")
    count, channels, height, width = images.shape
    for argument, offsets in (("top", top), ("left", left), ("flipped", flipped)):
        if not isinstance(offsets, torch.Tensor) or tuple(offsets.shape) != (count,):
            raise ValueError(f"crop_flip(): {argument} must be a tensor of shape ({count},), got {_shape(offsets)}.")
    for argument, offsets in (("top", top), ("left", left)):
        if count and (int(offsets.min()) < 0 or int(offsets.max()) > 2 * padding):
            raise ValueError(
                f"crop_flip(): {argument} must be in [0, {2 * padding}], got values in "
                f"[{int(offsets.min())}, {int(offsets.max())}]."
            )
    return _gather_crops(images, top, left, flipped, padding, fill)


def _gather_crops(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flipped: torch.Tensor, padding: int, fill: float
) -> torch.Tensor:
    """:func:`crop_flip` of arguments already checked: no value is read from the device."""
    count, channels, height, width = images.shape
    padded = F.pad(images, (padding,) * 4, value=fill) if padding else images
    device = images.device
    rows = top.to(device).long()[:, None] + torch.arange(height, device=device)
    columns = torch.arange(width, device=device)
    # A mirrored crop reads the same columns right to left, so the flip costs no extra pass.
    columns = torch.where(flipped.to(device).bool()[:, None], width - 1 - columns, columns)
    columns = left.to(device).long()[:, None] + columns
    padded_width = padded.shape[3]
    row_index = rows[:, None, :, None].expand(count, channels, height, padded_width)
    cropped_rows = padded.gather(2, row_index)
    column_index = columns[:, None, None, :].expand(count, channels, height, width)
    return cropped_rows.gather(3, column_index)


def _check_images(caller: str, images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{caller}: images must be a tensor (N, C, H, W), got {type(images).__name__}.")
    if images.dim() != 4:
        raise ValueError(f"{caller}: images must be (N, C, H, W), got shape {tuple(images.shape)}.")


def _shape(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)}"
    return type(value).__name__
