"""Finding and reading the on-disk data sets: MNIST and Fashion-MNIST idx files, CIFAR-10 batches.

Nothing here downloads unless asked to (``download=True`` hands over to torchvision); a missing
data set raises a ``FileNotFoundError`` that lists every directory searched and how to get it.
"""
from __future__ import annotations

import functools
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lth_prune.data.idx import read_idx

__all__ = ["RawData", "default_data_dir", "read_cifar10", "read_mnist_like", "search_dirs"]

# The original file names; each may also be gzip-compressed with a ".gz" suffix.
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Where system packages install the data (Debian's `dataset-fashion-mnist`).
SYSTEM_DATA_DIRS: dict[str, tuple[Path, ...]] = {
    "mnist": (),
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
# Sub-directories of the data directory that are searched, in order; the `*/raw` ones are where
# torchvision's MNIST / FashionMNIST classes put their downloads.
IDX_SUBDIRS: dict[str, tuple[str, ...]] = {
    "mnist": ("", "mnist", "MNIST", "MNIST/raw", "mnist/raw"),
    "fashion-mnist": (
        "", "fashion-mnist", "fashion_mnist", "FashionMNIST", "FashionMNIST/raw", "fashion-mnist/raw",
    ),
}
CIFAR10_SUBDIRS: tuple[str, ...] = ("", "cifar10", "cifar-10", "CIFAR10")
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES: tuple[str, ...] = (
    "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch", "batches.meta",
)

_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_HOW_TO_GET: dict[str, str] = {
    "mnist": (
        "put the four files from http://yann.lecun.com/exdb/mnist/ (raw or .gz) in one of these "
        "directories, point data_dir (--data-dir) at them, or pass download=True (--download) to let "
        "torchvision fetch them into data_dir/MNIST/raw."
    ),
    "fashion-mnist": (
        "install Debian's package (apt-get install dataset-fashion-mnist, files in "
        "/usr/share/datasets/fashion-mnist), put the four files from "
        "https://github.com/zalandoresearch/fashion-mnist (raw or .gz) in one of these directories, "
        "point data_dir (--data-dir) at them, or pass download=True (--download) to let torchvision "
        "fetch them into data_dir/FashionMNIST/raw."
    ),
    "cifar10": (
        "pass download=True (--download) to let torchvision fetch it (163 MB) into data_dir, or extract "
        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html so that "
        "data_dir/cifar-10-batches-py exists, and point data_dir (--data-dir) at it."
    ),
}


@dataclass(frozen=True)
class RawData:
    """A data set as read from disk, before splitting and normalisation.

    Attributes:
        train_x: training images ``(N, C, H, W)`` or ``(N, H, W)``, raw pixel values.
        train_y: training labels ``(N,)``.
        test_x: test images.
        test_y: test labels.
        num_classes: number of classes.
        pixel_scale: raw value of a full-intensity pixel (255 for 8-bit images).
        class_names: names of the classes, or empty.
        source: where the data came from (a directory, or a description).
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    pixel_scale: float
    class_names: tuple[str, ...] = ()
    source: str = ""


def default_data_dir() -> Path:
    """Directory searched (and downloaded into) when no ``data_dir`` is given.

    Returns:
        ``~/.cache/lth_prune``.

    Example:
        >>> default_data_dir().name
        'lth_prune'
    """
    return Path.home() / ".cache" / "lth_prune"


def search_dirs(name: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Directories searched for a file-based data set, in order.

    ``data_dir`` (or :func:`default_data_dir`) and its conventional sub-directories come first,
    then system locations such as ``/usr/share/datasets/fashion-mnist``. For CIFAR-10 these are the
    directories expected to contain ``cifar-10-batches-py``.

    Args:
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        data_dir: the user's data directory, or ``None``.

    Returns:
        The candidate directories, without duplicates.

    Raises:
        ValueError: if ``name`` is not a file-based data set.

    Example:
        >>> [str(path) for path in search_dirs("mnist", "/data")][:3]
        ['/data', '/data/mnist', '/data/MNIST']
    """
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if name == "cifar10":
        candidates = [root / sub if sub else root for sub in CIFAR10_SUBDIRS]
        if root.name == CIFAR10_FOLDER:
            candidates.insert(0, root.parent)
    elif name in IDX_SUBDIRS:
        candidates = [root / sub if sub else root for sub in IDX_SUBDIRS[name]] + list(SYSTEM_DATA_DIRS[name])
    else:
        raise ValueError(
            f"search_dirs(): name must be one of ['cifar10', 'fashion-mnist', 'mnist'], got {name!r}."
        )
    return list(dict.fromkeys(candidates))


def read_mnist_like(name: str, data_dir: str | os.PathLike[str] | None, *, download: bool = False) -> RawData:
    """Read MNIST or Fashion-MNIST from the first directory holding all four idx files.

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        data_dir: the user's data directory, or ``None`` for :func:`default_data_dir`.
        download: fetch the files with torchvision into ``data_dir`` first if they are missing there.

    Returns:
        ``uint8`` images ``(60000, 28, 28)`` / ``(10000, 28, 28)`` and labels, with ``pixel_scale`` 255.

    Raises:
        FileNotFoundError: if no searched directory has all four files; the message lists them all.
        ValueError: if a file is corrupt or the files disagree in size; the message names the file.

    Example:
        >>> data = read_mnist_like("fashion-mnist", None)  # doctest: +SKIP
        >>> data.train_x.shape  # doctest: +SKIP
        (60000, 28, 28)
    """
    if download:
        _torchvision_download(name, data_dir)
    searched: list[str] = []
    for directory in search_dirs(name, data_dir):
        paths = {role: _idx_path(directory, filename) for role, filename in IDX_FILES.items()}
        found = sum(path is not None for path in paths.values())
        if found == len(IDX_FILES):
            return _read_idx_set(name, directory, {role: path for role, path in paths.items() if path})
        searched.append(f"  {directory}" + (f" (has only {found} of the 4 files)" if found else ""))
    raise FileNotFoundError(
        f"load_dataset(): data set {name!r} was not found. Looked for "
        f"{', '.join(IDX_FILES.values())} (each raw or .gz) in:\n" + "\n".join(searched)
        + f"\nTo get it: {_HOW_TO_GET[name]}"
    )


def read_cifar10(data_dir: str | os.PathLike[str] | None, *, download: bool = False) -> RawData:
    """Read CIFAR-10 from a ``cifar-10-batches-py`` directory with torchvision's ``CIFAR10`` code.

    torchvision refuses any copy whose md5 sums differ from the official release (a subset, a test
    fixture, a re-pickled copy). So the sums are checked here, once, against torchvision's own list,
    and the batches are then read by torchvision's loading code with its check switched off; a
    mismatch loads anyway, with a ``UserWarning``. Shapes and labels are still validated.

    Args:
        data_dir: the directory holding ``cifar-10-batches-py`` (or that directory itself), or
            ``None`` for :func:`default_data_dir`.
        download: let torchvision download and verify the archive into ``data_dir`` if missing.

    Returns:
        ``uint8`` images ``(50000, 3, 32, 32)`` / ``(10000, 3, 32, 32)`` and labels, ``pixel_scale`` 255.

    Raises:
        FileNotFoundError: if no searched directory holds all the batch files; the message lists them.
        ValueError: if a batch file is unreadable or has the wrong shape; the message names the folder.

    Example:
        >>> data = read_cifar10("data", download=True)  # doctest: +SKIP
        >>> data.train_x.shape  # doctest: +SKIP
        (50000, 3, 32, 32)
    """
    candidates = search_dirs("cifar10", data_dir)
    if download:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(candidates[0]), train=True, download=True)
    for root in candidates:
        folder = root / CIFAR10_FOLDER
        if all((folder / filename).is_file() for filename in CIFAR10_FILES):
            return _read_cifar10_folder(root)
    listing = "\n".join(f"  {root / CIFAR10_FOLDER}" for root in candidates)
    raise FileNotFoundError(
        f"load_dataset(): data set 'cifar10' was not found. Looked for {', '.join(CIFAR10_FILES)} in:\n"
        f"{listing}\nTo get it: {_HOW_TO_GET['cifar10']}"
    )


def _idx_path(directory: Path, filename: str) -> Path | None:
    # The uncompressed file wins: it reads without a decompression pass.
    for candidate in (directory / filename, directory / f"{filename}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_set(name: str, directory: Path, paths: dict[str, Path]) -> RawData:
    arrays = {role: read_idx(path) for role, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        image_path, label_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"load_dataset(): {str(image_path)!r} must hold uint8 images (N, H, W), got "
                f"{images.dtype} of shape {images.shape}."
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"load_dataset(): {str(label_path)!r} must hold one label per image of "
                f"{str(image_path)!r} ({len(images)}), got shape {labels.shape}."
            )
        if len(labels) and int(labels.max()) >= 10:
            raise ValueError(
                f"load_dataset(): {str(label_path)!r} must hold labels in [0, 10), got {int(labels.max())}."
            )
    return RawData(
        train_x=arrays["train_images"],
        train_y=arrays["train_labels"].astype(np.int64),
        test_x=arrays["test_images"],
        test_y=arrays["test_labels"].astype(np.int64),
        num_classes=10,
        pixel_scale=255.0,
        class_names=_FASHION_CLASSES if name == "fashion-mnist" else tuple(str(digit) for digit in range(10)),
        source=str(directory),
    )


def _torchvision_download(name: str, data_dir: str | os.PathLike[str] | None) -> None:
    from torchvision import datasets

    root = str(Path(data_dir).expanduser() if data_dir is not None else default_data_dir())
    dataset_class = datasets.FashionMNIST if name == "fashion-mnist" else datasets.MNIST
    # Constructing with download=True fetches and md5-checks the .gz files into root/<Class>/raw.
    dataset_class(root, train=True, download=True)


def _read_cifar10_folder(root: Path) -> RawData:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    expected = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    folder = root / CIFAR10_FOLDER
    if not all(check_integrity(str(folder / filename), md5) for filename, md5 in expected):
        warnings.warn(
            f"load_dataset(): the files in {str(folder)!r} differ from the official CIFAR-10 release "
            "(md5 mismatch); loading them anyway, as a subset or modified copy.",
            UserWarning,
            stacklevel=5,  # the caller of load_dataset(), through the registry and read_cifar10()
        )
    try:
        train, test = (_unchecked_cifar10()(str(root), train=split) for split in (True, False))
    except (OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(
            f"load_dataset(): {str(folder)!r} must hold CIFAR-10 python batches (pickled dicts with "
            f"b'data' uint8 (N, 3072) and b'labels'), got unreadable files ({error!r})."
        ) from error
    arrays = []
    for dataset in (train, test):
        labels = np.asarray(dataset.targets, dtype=np.int64)
        if len(labels) != len(dataset.data) or (len(labels) and not 0 <= labels.min() <= labels.max() < 10):
            raise ValueError(
                f"load_dataset(): {str(folder)!r} must hold one label in [0, 10) per image, got "
                f"{len(labels)} labels for {len(dataset.data)} images."
            )
        # torchvision keeps (N, H, W, C) for PIL; the models take (N, C, H, W).
        arrays.append((np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)), labels))
    return RawData(
        train_x=arrays[0][0],
        train_y=arrays[0][1],
        test_x=arrays[1][0],
        test_y=arrays[1][1],
        num_classes=10,
        pixel_scale=255.0,
        class_names=tuple(train.classes),
        source=str(folder),
    )


@functools.cache
def _unchecked_cifar10() -> type:
    """torchvision's ``CIFAR10`` with its md5 checks off (they are done by ``_read_cifar10_folder``)."""
    # Imported here: torchvision.datasets adds about 1.5 s to `import lth_prune`.
    from torchvision.datasets import CIFAR10

    class UncheckedCIFAR10(CIFAR10):
        train_list = [[filename, None] for filename, _ in CIFAR10.train_list]
        test_list = [[filename, None] for filename, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return UncheckedCIFAR10
