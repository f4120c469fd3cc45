"""Train / validation / test splits of one data set, normalised and ready for the loaders."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from lth_prune.data.loader import InMemoryLoader
from lth_prune.data.sampling import stratified_indices

# channel_statistics and normalise_ are shared with lth_prune.imp.transfer, not part of the API.
__all__ = ["DataSplits"]

# Keeps normalisation finite for a constant channel (e.g. a synthetic set with one flat channel).
_MIN_STD = 1e-6
# Images per step when accumulating statistics.
_CHUNK = 4096


@dataclass(frozen=True, eq=False, repr=False)
class DataSplits:
    """The three splits of a data set as tensors, normalised with the training split's statistics.

    Validation examples are always held out of the training set; the test set is never used for
    model selection.

    Attributes:
        train_x: training images, float32 ``(N_train, C, H, W)``, normalised.
        train_y: training labels, int64 ``(N_train,)`` in ``[0, num_classes)``.
        val_x: validation images held out of the original training set, ``(N_val, C, H, W)``.
        val_y: validation labels, ``(N_val,)``.
        test_x: test images, ``(N_test, C, H, W)``.
        test_y: test labels, ``(N_test,)``.
        name: canonical data set name, e.g. ``"fashion-mnist"``.
        num_classes: number of classes.
        input_shape: ``(C, H, W)`` of one example.
        mean: per-channel mean of the training split, in the raw pixel units divided by the data
            set's pixel scale (``[0, 1]`` for 8-bit images), that was subtracted.
        std: per-channel standard deviation of the training split that was divided by.
        class_names: optional human-readable class names, ``num_classes`` of them or empty.

    Example:
        >>> import torch
        >>> splits = DataSplits.from_arrays(
        ...     torch.rand(100, 1, 4, 4), torch.arange(100) % 2,
        ...     torch.rand(20, 1, 4, 4), torch.arange(20) % 2, name="toy", val_size=10)
        >>> splits.train_x.shape, splits.val_x.shape, splits.num_classes
        (torch.Size([90, 1, 4, 4]), torch.Size([10, 1, 4, 4]), 2)
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for split in ("train", "val", "test"):
            images, labels = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            _check_split(split, images, labels, self.input_shape)
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"DataSplits(): num_classes must be a positive int, got {self.num_classes!r}.")
        channels = self.input_shape[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(
                f"DataSplits(): mean and std must have one value per channel ({channels}), "
                f"got {len(self.mean)} and {len(self.std)}."
            )
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"DataSplits(): class_names must be empty or have num_classes ({self.num_classes}) "
                f"entries, got {len(self.class_names)}."
            )

    def __repr__(self) -> str:
        return (
            f"DataSplits(name={self.name!r}, num_classes={self.num_classes}, "
            f"input_shape={self.input_shape}, train={len(self.train_y)}, val={len(self.val_y)}, "
            f"test={len(self.test_y)})"
        )

    def summary(self) -> str:
        """Describe the splits in a few lines: sizes, shape, classes and normalisation.

        Returns:
            A multi-line, human-readable description.

        Example:
            >>> import torch
            >>> splits = DataSplits.from_arrays(
            ...     torch.zeros(8, 1, 2, 2), torch.arange(8) % 2,
            ...     torch.zeros(4, 1, 2, 2), torch.arange(4) % 2, name="toy", val_size=2)
            >>> print(splits.summary().splitlines()[1])
            train: 6 examples
        """
        mean = ", ".join(f"{value:.4f}" for value in self.mean)
        std = ", ".join(f"{value:.4f}" for value in self.std)
        return "\n".join(
            [
                f"{self.name}: {self.num_classes} classes, input shape {self.input_shape}",
                f"train: {len(self.train_y)} examples",
                f"val: {len(self.val_y)} examples (held out of the training set)",
                f"test: {len(self.test_y)} examples",
                f"normalisation (training split): mean ({mean}), std ({std})",
            ]
        )

    def loaders(
        self,
        batch_size: int,
        *,
        device: torch.device | str | None = None,
        seed: int = 0,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[InMemoryLoader, InMemoryLoader, InMemoryLoader]:
        """Build in-memory loaders for the three splits.

        Only the training loader shuffles (with a CPU generator seeded with ``seed``, so the order
        is the same on every device) and augments; validation and test keep their order and their
        last partial batch.

        Args:
            batch_size: examples per batch, a positive int.
            device: where to put the tensors once (``None`` keeps them where they are).
            seed: seed of the training loader's shuffling.
            augment: optional batch-level augmentation of training images, e.g.
                :func:`lth_prune.data.random_crop_flip`.

        Returns:
            ``(train_loader, val_loader, test_loader)``.

        Raises:
            TypeError: if ``seed`` is not an int or an argument of the loaders has a wrong type.
            ValueError: if ``batch_size`` is not positive.

        Example:
            >>> import torch
            >>> splits = DataSplits.from_arrays(
            ...     torch.rand(50, 1, 4, 4), torch.arange(50) % 5,
            ...     torch.rand(10, 1, 4, 4), torch.arange(10) % 5, name="toy", val_size=10)
            >>> train, val, test = splits.loaders(16)
            >>> len(train), len(val), len(test)
            (3, 1, 1)
        """
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"DataSplits.loaders(): seed must be an int, got {type(seed).__name__}.")
        generator = torch.Generator().manual_seed(seed)
        train = InMemoryLoader(
            self.train_x, self.train_y, batch_size, shuffle=True, augment=augment,
            generator=generator, device=device,
        )
        val = InMemoryLoader(self.val_x, self.val_y, batch_size, shuffle=False, device=device)
        test = InMemoryLoader(self.test_x, self.test_y, batch_size, shuffle=False, device=device)
        return train, val, test

    @classmethod
    def from_arrays(
        cls,
        train_x: np.ndarray | torch.Tensor,
        train_y: np.ndarray | torch.Tensor,
        test_x: np.ndarray | torch.Tensor,
        test_y: np.ndarray | torch.Tensor,
        *,
        name: str,
        val_size: int | float = 0.1,
        seed: int = 0,
        limit: int | None = None,
        num_classes: int | None = None,
        pixel_scale: float = 1.0,
        class_names: Sequence[str] = (),
    ) -> DataSplits:
        """Split, subsample and normalise raw arrays; the path every named data set goes through.

        A stratified, seeded hold-out of ``val_size`` training examples becomes the validation
        split; ``limit`` then keeps a stratified, seeded subset of the remaining training examples
        (the validation split does not change with ``limit``). Images are divided by
        ``pixel_scale``, then normalised per channel with the mean and standard deviation of the
        final training split.

        Args:
            train_x: training images ``(N, C, H, W)`` or ``(N, H, W)`` (one channel), any numeric dtype.
            train_y: training labels ``(N,)``, integers in ``[0, num_classes)``.
            test_x: test images, same layout as ``train_x``.
            test_y: test labels.
            name: the data set's name, kept in the result.
            val_size: number of training examples to hold out (int in ``[0, N)``), or a fraction
                in ``[0, 1)`` of them.
            seed: seed of the validation hold-out and of the ``limit`` subset.
            limit: keep at most this many training examples (a positive int), or ``None`` for all.
            num_classes: number of classes; ``None`` means ``max(label) + 1`` over both sets.
            pixel_scale: raw value of a full-intensity pixel (255 for 8-bit images), positive.
            class_names: optional names of the classes.

        Returns:
            The normalised :class:`DataSplits`.

        Raises:
            TypeError: if an argument has the wrong type.
            ValueError: if shapes, labels, ``val_size``, ``limit`` or ``pixel_scale`` are invalid.

        Example:
            >>> import numpy as np
            >>> images = np.random.default_rng(0).integers(0, 256, (30, 2, 3, 3), dtype=np.uint8)
            >>> splits = DataSplits.from_arrays(images, np.arange(30) % 3, images[:6], np.arange(6) % 3,
            ...                                 name="toy", val_size=0.2, pixel_scale=255.0)
            >>> len(splits.train_y), len(splits.val_y), splits.input_shape
            (24, 6, (2, 3, 3))
        """
        train_images, train_labels = _as_images("train", train_x), _as_labels("train", train_y)
        test_images, test_labels = _as_images("test", test_x), _as_labels("test", test_y)
        if len(train_images) != len(train_labels) or len(test_images) != len(test_labels):
            raise ValueError(
                "DataSplits.from_arrays(): images and labels must have the same length, got "
                f"train {len(train_images)}/{len(train_labels)}, test {len(test_images)}/{len(test_labels)}."
            )
        if train_images.shape[1:] != test_images.shape[1:]:
            raise ValueError(
                "DataSplits.from_arrays(): train and test images must have the same (C, H, W), got "
                f"{tuple(train_images.shape[1:])} and {tuple(test_images.shape[1:])}."
            )
        if not pixel_scale > 0:
            raise ValueError(f"DataSplits.from_arrays(): pixel_scale must be positive, got {pixel_scale!r}.")
        num_classes = _resolve_num_classes(num_classes, train_labels, test_labels)
        val_count = _resolve_val_size(val_size, len(train_labels))
        held_out = stratified_indices(train_labels.numpy(), val_count, np.random.default_rng(seed))
        kept = np.setdiff1d(np.arange(len(train_labels)), held_out)
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"DataSplits.from_arrays(): limit must be a positive int or None, got {limit!r}.")
            if limit < len(kept):
                # A separate stream, so the validation split is the same with and without a limit.
                subset_rng = np.random.default_rng([seed, 1])
                kept = kept[stratified_indices(train_labels[kept].numpy(), limit, subset_rng)]
        held_index, kept_index = torch.from_numpy(held_out), torch.from_numpy(kept)
        train_float = train_images[kept_index].float().div_(pixel_scale)
        mean, std = channel_statistics(train_float)
        return cls(
            train_x=normalise_(train_float, mean, std),
            train_y=train_labels[kept_index],
            val_x=normalise_(train_images[held_index].float().div_(pixel_scale), mean, std),
            val_y=train_labels[held_index],
            # copy=True: `test_images` may share memory with the caller's array.
            test_x=normalise_(test_images.to(torch.float32, copy=True).div_(pixel_scale), mean, std),
            test_y=test_labels,
            name=name,
            num_classes=num_classes,
            input_shape=tuple(int(size) for size in train_images.shape[1:]),  # type: ignore[arg-type]
            mean=tuple(float(value) for value in mean),
            std=tuple(float(value) for value in std),
            class_names=tuple(class_names),
        )


def channel_statistics(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population standard deviation of ``(N, C, H, W)`` images, float64."""
    count = images.numel() // max(images.shape[1], 1)
    if count == 0:
        ones = torch.ones(images.shape[1], dtype=torch.float64)
        return ones - 1, ones
    # float64 accumulation, in chunks so CIFAR-10 never needs a float64 copy of the whole set.
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    for chunk in images.split(_CHUNK):
        total += chunk.sum(dim=(0, 2, 3), dtype=torch.float64)
    mean = total / count
    squares = torch.zeros_like(total)
    for chunk in images.split(_CHUNK):
        squares += (chunk.double() - mean.view(1, -1, 1, 1)).square().sum(dim=(0, 2, 3))
    return mean, (squares / count).sqrt().clamp_min(_MIN_STD)


def normalise_(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Normalise float images in place (a second copy of CIFAR-10's training set costs 600 MB)."""
    shape = (1, -1, 1, 1)
    return images.sub_(mean.float().view(shape)).div_(std.float().view(shape))


def _check_split(split: str, images: torch.Tensor, labels: torch.Tensor, input_shape: tuple[int, ...]) -> None:
    if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError(
            f"DataSplits(): {split}_x and {split}_y must be tensors, got {_describe(images)} and {_describe(labels)}."
        )
    if images.dtype != torch.float32 or images.dim() != 4:
        raise ValueError(
            f"DataSplits(): {split}_x must be a float32 tensor (N, C, H, W), got "
            f"{_describe(images)}."
        )
    if labels.dtype != torch.int64 or labels.dim() != 1:
        raise ValueError(f"DataSplits(): {split}_y must be an int64 tensor (N,), got {_describe(labels)}.")
    if len(images) != len(labels):
        raise ValueError(
            f"DataSplits(): {split}_x and {split}_y must have the same length, got {len(images)} and {len(labels)}."
        )
    if tuple(images.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"DataSplits(): {split}_x must have examples of input_shape {tuple(input_shape)}, "
            f"got {tuple(images.shape[1:])}."
        )


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _as_images(split: str, images: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = _as_tensor(f"{split}_x", images)
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.dim() != 4:
        raise ValueError(
            f"DataSplits.from_arrays(): {split}_x must have shape (N, C, H, W) or (N, H, W), "
            f"got {tuple(tensor.shape)}."
        )
    return tensor


def _as_labels(split: str, labels: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = _as_tensor(f"{split}_y", labels)
    if tensor.dim() != 1 or tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(
            f"DataSplits.from_arrays(): {split}_y must be a 1-D integer array, got "
            f"{tensor.dtype} of shape {tuple(tensor.shape)}."
        )
    return tensor.long()


def _as_tensor(argument: str, value: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise TypeError(
        f"DataSplits.from_arrays(): {argument} must be a numpy array or a torch.Tensor, got {type(value).__name__}."
    )


def _resolve_num_classes(num_classes: int | None, train_labels: torch.Tensor, test_labels: torch.Tensor) -> int:
    labels = torch.cat([train_labels, test_labels])
    if len(labels) and int(labels.min()) < 0:
        raise ValueError(f"DataSplits.from_arrays(): labels must be >= 0, got {int(labels.min())}.")
    largest = int(labels.max()) if len(labels) else -1
    if num_classes is None:
        return max(largest + 1, 1)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= largest:
        raise ValueError(
            f"DataSplits.from_arrays(): num_classes must be an int above the largest label ({largest}), "
            f"got {num_classes!r}."
        )
    return num_classes


def _resolve_val_size(val_size: int | float, train_count: int) -> int:
    if isinstance(val_size, bool) or not isinstance(val_size, (int, float)):
        raise TypeError(
            f"DataSplits.from_arrays(): val_size must be an int or a float, got {type(val_size).__name__}."
        )
    if isinstance(val_size, float):
        if not 0.0 <= val_size < 1.0:
            raise ValueError(f"DataSplits.from_arrays(): val_size as a fraction must be in [0, 1), got {val_size}.")
        val_size = round(val_size * train_count)
    if not 0 <= val_size < train_count:
        raise ValueError(
            f"DataSplits.from_arrays(): val_size must leave at least one training example, i.e. be in "
            f"[0, {train_count}), got {val_size}."
        )
    return int(val_size)
