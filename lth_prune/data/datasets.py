"""Named data sets: ``load_dataset(name)`` and the registry behind it, :data:`DATASETS`.

Every data set goes through :meth:`DataSplits.from_arrays`, so all share the same rules: validation
is a seeded, stratified hold-out of the training set; normalisation uses the training split only.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lth_prune.data.files import RawData, read_cifar10, read_mnist_like
from lth_prune.data.sampling import stratified_indices
from lth_prune.data.splits import DataSplits
from lth_prune.registry import Registry

__all__ = ["DATASETS", "DatasetSource", "load_dataset", "make_synthetic"]

# The held-out validation set of Frankle & Carbin (2019) for MNIST and CIFAR-10.
PAPER_VAL_SIZE = 5000
# Seed of the train/test split of the data sets that ship without one (digits, synthetic). Fixed, so
# the test set is the same for every `seed` and test accuracies of different seeds compare.
TEST_SPLIT_SEED = 0

_Reader = Callable[["Path | None", bool], RawData]


@dataclass(frozen=True)
class DatasetSource:
    """How :func:`load_dataset` gets a registered data set.

    Attributes:
        read: ``(data_dir, download) -> RawData``: the images and labels of the training and
            test sets, as on disk (``data_dir`` is ``None`` where the user gave none).
        default_val_size: the training examples held out for validation where the user gives
            no ``val_size``: a count, or a fraction in ``[0, 1)``.

    Example:
        >>> import numpy as np
        >>> from lth_prune.data import RawData
        >>> def read_stripes(data_dir, download):
        ...     images = np.tile(np.eye(4, dtype=np.float32), (40, 1, 1))
        ...     labels = np.arange(40) % 2
        ...     return RawData(images[:30], labels[:30], images[30:], labels[30:], num_classes=2, pixel_scale=1.0)
        >>> source = DatasetSource(read_stripes, default_val_size=6)
        >>> source.read(None, False).train_x.shape
        (30, 4, 4)

        ``DATASETS.register("stripes", source, title="Stripes", help="4x4 stripes")`` then makes
        it ``load_dataset("stripes")``, ``ExperimentConfig(dataset="stripes")`` and
        ``lth-prune run --dataset stripes`` (from a ``--plugin`` module).
    """

    read: _Reader
    default_val_size: int | float = 0.1


#: The data sets :func:`load_dataset` knows, by name (case, ``-`` and ``_`` ignored):
#: ``DATASETS.register("name", DatasetSource(read), title=..., help=...)`` adds one.
DATASETS: Registry[DatasetSource] = Registry(
    "dataset", normalize=True, accepts=(lambda value: isinstance(value, DatasetSource), "a DatasetSource")
)


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    val_size: int | float | None = None,
    seed: int = 0,
    download: bool = False,
    limit: int | None = None,
) -> DataSplits:
    """Load a named data set as normalised train / validation / test tensors.

    ``digits`` (scikit-learn's 8x8 digits, 1,797 images) and ``synthetic`` need no files.
    ``mnist`` and ``fashion-mnist`` read the original idx files (raw or ``.gz``) from ``data_dir``,
    its sub-directories ``mnist``, ``MNIST/raw``, ``fashion-mnist``, ``FashionMNIST/raw`` and the
    like, and, for Fashion-MNIST, ``/usr/share/datasets/fashion-mnist`` (Debian's
    ``dataset-fashion-mnist``). ``cifar10`` reads ``data_dir/cifar-10-batches-py`` with torchvision;
    see :func:`lth_prune.data.files.read_cifar10` for how md5 sums are handled. Digits and synthetic
    have a fixed 20 % stratified test split; the others use their official test sets.

    Args:
        name: a name from :data:`DATASETS`; case, ``-`` and ``_`` are ignored
            (``"FashionMNIST"``, ``"CIFAR-10"``).
        data_dir: directory to search first (and download into); ``None`` means ``~/.cache/lth_prune``.
        val_size: training examples held out for validation, as a count or a fraction in ``[0, 1)``;
            ``None`` means 5,000 for MNIST, Fashion-MNIST and CIFAR-10 (as in Frankle & Carbin, 2019)
            and 10 % for digits and synthetic.
        seed: seed of the validation hold-out and of the ``limit`` subset.
        download: let torchvision download MNIST, Fashion-MNIST or CIFAR-10 into ``data_dir``.
        limit: keep at most this many training examples (stratified), for quick runs; the
            validation and test splits are unchanged.

    Returns:
        The :class:`DataSplits`.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``name`` is unknown (the message lists the valid names), ``val_size`` or
            ``limit`` is out of range, or a data file is corrupt.
        FileNotFoundError: if the files of a data set are missing; the message lists every
            directory searched and how to get the data.

    Example:
        >>> splits = load_dataset("digits", seed=0)
        >>> splits.input_shape, splits.num_classes, len(splits.test_y)
        ((1, 8, 8), 10, 359)
    """
    if not isinstance(name, str):
        raise TypeError(f"load_dataset(): name must be a str, got {type(name).__name__}.")
    entry = DATASETS.entry(name, caller="load_dataset()")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"load_dataset(): data_dir must be a str, a path or None, got {type(data_dir).__name__}.")
    if not isinstance(download, bool):
        raise TypeError(f"load_dataset(): download must be a bool, got {type(download).__name__}.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"load_dataset(): seed must be an int, got {type(seed).__name__}.")
    raw = entry.value.read(Path(data_dir) if data_dir is not None else None, download)
    return DataSplits.from_arrays(
        raw.train_x,
        raw.train_y,
        raw.test_x,
        raw.test_y,
        name=entry.name,
        val_size=entry.value.default_val_size if val_size is None else val_size,
        seed=seed,
        limit=limit,
        num_classes=raw.num_classes,
        pixel_scale=raw.pixel_scale,
        class_names=raw.class_names,
    )


def make_synthetic(
    num_samples: int = 512,
    *,
    num_classes: int = 4,
    input_shape: tuple[int, int, int] = (1, 8, 8),
    noise: float = 0.75,
    data_seed: int = 0,
    val_size: int | float = 0.1,
    seed: int = 0,
    limit: int | None = None,
) -> DataSplits:
    """A learnable synthetic image classification set: one Gaussian blob pattern per class plus noise.

    Each class owns a prototype image, a Gaussian bump (standard deviation a sixth of the image side)
    at a random position with a random amplitude in ``[0.5, 1.5]`` per channel; an example is its class's prototype plus
    i.i.d. ``N(0, noise**2)`` pixels. With the defaults (410 training examples before the validation hold-out, 102 test) a
    logistic regression reaches about 90 % test accuracy and the nearest class mean about 93 %, so
    a network learns it in seconds on a CPU with room left to lose when pruned. 20 % (stratified,
    fixed) is the test split.

    Args:
        num_samples: total number of examples, at least ``5 * num_classes``.
        num_classes: number of classes, at least 2.
        input_shape: ``(C, H, W)`` of one example.
        noise: standard deviation of the pixel noise, non-negative.
        data_seed: seed of the prototypes and the examples.
        val_size: validation examples held out of the training part (count or fraction in ``[0, 1)``).
        seed: seed of the validation hold-out and the ``limit`` subset.
        limit: keep at most this many training examples.

    Returns:
        The :class:`DataSplits`, named ``"synthetic"``.

    Raises:
        ValueError: if an argument is out of range.

    Example:
        >>> splits = make_synthetic(200, num_classes=2, input_shape=(3, 4, 4))
        >>> splits.train_x.shape[1:], splits.num_classes
        (torch.Size([3, 4, 4]), 2)
    """
    raw = _synthetic_raw(num_samples, num_classes, input_shape, noise, data_seed)
    return DataSplits.from_arrays(
        raw.train_x, raw.train_y, raw.test_x, raw.test_y, name="synthetic", val_size=val_size,
        seed=seed, limit=limit, num_classes=raw.num_classes, class_names=raw.class_names,
    )


def _read_digits(data_dir: Path | None, download: bool) -> RawData:
    # Imported here: scikit-learn costs about a second and only this data set needs it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = bunch.images.astype(np.float32), bunch.target.astype(np.int64)
    test = stratified_indices(labels, round(0.2 * len(labels)), np.random.default_rng(TEST_SPLIT_SEED))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return RawData(
        train_x=images[train], train_y=labels[train], test_x=images[test], test_y=labels[test],
        num_classes=10, pixel_scale=16.0,  # the digits' pixels count ink in 4x4 cells: 0..16
        class_names=tuple(str(digit) for digit in range(10)), source="sklearn.datasets.load_digits",
    )


def _read_mnist(data_dir: Path | None, download: bool) -> RawData:
    return read_mnist_like("mnist", data_dir, download=download)


def _read_fashion_mnist(data_dir: Path | None, download: bool) -> RawData:
    return read_mnist_like("fashion-mnist", data_dir, download=download)


def _read_cifar10(data_dir: Path | None, download: bool) -> RawData:
    return read_cifar10(data_dir, download=download)


def _read_synthetic(data_dir: Path | None, download: bool) -> RawData:
    # The defaults of make_synthetic(); a test pins that both give the same data.
    return _synthetic_raw(512, 4, (1, 8, 8), 0.75, data_seed=0)


def _synthetic_raw(
    num_samples: int,
    num_classes: int,
    input_shape: tuple[int, int, int],
    noise: float,
    data_seed: int,
) -> RawData:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"make_synthetic(): num_classes must be an int >= 2, got {num_classes!r}.")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 5 * num_classes:
        raise ValueError(
            f"make_synthetic(): num_samples must be an int >= 5 * num_classes ({5 * num_classes}), "
            f"got {num_samples!r}."
        )
    if len(input_shape) != 3 or not all(isinstance(size, int) and size >= 1 for size in input_shape):
        raise ValueError(f"make_synthetic(): input_shape must be (C, H, W) of positive ints, got {input_shape!r}.")
    if not noise >= 0:
        raise ValueError(f"make_synthetic(): noise must be >= 0, got {noise!r}.")
    rng = np.random.default_rng(data_seed)
    channels, height, width = input_shape
    centres = rng.uniform(0, 1, (num_classes, 2)) * [height - 1, width - 1]
    amplitudes = rng.uniform(0.5, 1.5, (num_classes, channels))
    spread = max(height, width) / 6
    rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    squared_distance = (rows - centres[:, 0, None, None]) ** 2 + (columns - centres[:, 1, None, None]) ** 2
    prototypes = amplitudes[:, :, None, None] * np.exp(-squared_distance / (2 * spread**2))[:, None]
    labels = rng.permutation(np.arange(num_samples) % num_classes).astype(np.int64)
    images = (prototypes[labels] + noise * rng.standard_normal((num_samples, *input_shape))).astype(np.float32)
    test = stratified_indices(labels, round(0.2 * num_samples), np.random.default_rng(TEST_SPLIT_SEED))
    train = np.setdiff1d(np.arange(num_samples), test)
    return RawData(
        train_x=images[train], train_y=labels[train], test_x=images[test], test_y=labels[test],
        num_classes=num_classes, pixel_scale=1.0,
        class_names=tuple(f"class {index}" for index in range(num_classes)), source="make_synthetic()",
    )


DATASETS.register("digits", DatasetSource(_read_digits, 0.1), title="digits (8x8)",
                  help="scikit-learn's 1,797 8x8 handwritten digits, shipped with it")
DATASETS.register("mnist", DatasetSource(_read_mnist, PAPER_VAL_SIZE), title="MNIST",
                  help="the idx files of MNIST in --data-dir")
DATASETS.register("fashion-mnist", DatasetSource(_read_fashion_mnist, PAPER_VAL_SIZE), title="Fashion-MNIST",
                  help="the idx files of Fashion-MNIST (Debian: apt-get install dataset-fashion-mnist)")
DATASETS.register("cifar10", DatasetSource(_read_cifar10, PAPER_VAL_SIZE), title="CIFAR-10",
                  help="the Python version of CIFAR-10 in --data-dir/cifar-10-batches-py")
DATASETS.register("synthetic", DatasetSource(_read_synthetic, 0.1), title="synthetic data",
                  help="512 noisy Gaussian blobs of 4 classes, 1x8x8: for tests and quick examples")
