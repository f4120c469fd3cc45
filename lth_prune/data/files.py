"""Finding and reading the on-disk data sets: MNIST and Fashion-MNIST idx files, CIFAR-10 batches.

Nothing here downloads unless asked to (``download=True`` hands over to torchvision); a missing
data set raises a ``FileNotFoundError`` that lists every directory searched and how to get it.
"""
from __future__ import annotations

import math
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
    """Read CIFAR-10 from a ``cifar-10-batches-py`` directory of python batches.

    torchvision refuses any copy whose md5 sums differ from the official release (a subset, a test
    fixture, a re-pickled copy). So the sums are checked here, once, against torchvision's own list,
    and a mismatch loads anyway, with a ``UserWarning``. Each batch is read here (as torchvision
    reads it, ``pickle`` with ``latin1`` strings) and validated, and errors name the batch file:
    a batch is a dict with ``data`` and ``labels`` keys, as ``str`` (the official batches, pickled
    by Python 2) or as ``bytes`` (a batch pickled again by Python 3); ``data`` holds ``uint8``
    pixels, ``N`` rows of 3,072 (3 x 32 x 32, channel-major); ``labels`` one integer in [0, 10)
    per row. Pixels of another dtype are refused, not converted: CIFAR-10's batches hold raw
    8-bit values, and the scale of any other array is unknown (a float array may hold values
    already divided by 255, which a conversion would silently turn into near-black images).

    Args:
        data_dir: the directory holding ``cifar-10-batches-py`` (or that directory itself), or
            ``None`` for :func:`default_data_dir`.
        download: let torchvision download and verify the archive into ``data_dir`` if missing.

    Returns:
        ``uint8`` images ``(50000, 3, 32, 32)`` / ``(10000, 3, 32, 32)`` and labels, ``pixel_scale`` 255.

    Raises:
        FileNotFoundError: if no searched directory holds all the batch files; the message lists them.
        ValueError: if a batch file is unreadable, lacks its keys, holds pixels of another dtype
            or shape, or labels outside [0, 10) or not one per image; the message names the file.

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
    # Imported here: torchvision.datasets adds about 1.5 s to `import lth_prune`.
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
    train = [_read_cifar10_batch(folder / filename) for filename, _ in CIFAR10.train_list]
    test = [_read_cifar10_batch(folder / filename) for filename, _ in CIFAR10.test_list]
    return RawData(
        train_x=np.concatenate([images for images, _ in train]),
        train_y=np.concatenate([labels for _, labels in train]),
        test_x=np.concatenate([images for images, _ in test]),
        test_y=np.concatenate([labels for _, labels in test]),
        num_classes=10,
        pixel_scale=255.0,
        class_names=_read_cifar10_names(folder / CIFAR10.meta["filename"], CIFAR10.meta["key"]),
        source=str(folder),
    )


_CIFAR10_BATCH = "a CIFAR-10 python batch (a pickled dict with 'data', uint8 (N, 3072), and 'labels')"


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)``, validated."""
    entry = _unpickle(path, _CIFAR10_BATCH)
    missing = [key for key in ("data", "labels") if key not in entry]
    if missing:
        raise ValueError(
            f"load_dataset(): {str(path)!r} must be {_CIFAR10_BATCH}, got a dict without "
            f"{missing} (its keys: {sorted(entry)[:8]})."
        )
    data, labels = entry["data"], entry["labels"]
    if not isinstance(data, np.ndarray) or data.ndim < 2 or math.prod(data.shape[1:]) != 3 * 32 * 32:
        found = f"shape {data.shape}" if isinstance(data, np.ndarray) else f"a {type(data).__name__}"
        raise ValueError(
            f"load_dataset(): {str(path)!r} must hold its images as an array of N rows of 3072 "
            f"values (3 x 32 x 32) in 'data', got {found}."
        )
    if data.dtype != np.uint8:
        raise ValueError(
            f"load_dataset(): {str(path)!r} must hold uint8 pixels in 'data', as CIFAR-10's batches "
            f"do, got {data.dtype}; if it holds raw 0-255 values, write it back with "
            "data.astype(np.uint8) (the scale of other arrays is unknown, so they are not converted)."
        )
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(
            f"load_dataset(): {str(path)!r} must hold one integer label per image in 'labels', got "
            f"an array of {labels.dtype} with shape {labels.shape}."
        )
    if len(labels) != len(data):
        raise ValueError(
            f"load_dataset(): {str(path)!r} must hold one label per image, got {len(labels)} labels "
            f"for {len(data)} images."
        )
    outside = np.flatnonzero((labels < 0) | (labels >= 10))
    if outside.size:
        raise ValueError(
            f"load_dataset(): {str(path)!r} must hold labels in [0, 10), the 10 CIFAR-10 classes, got "
            f"{int(labels[outside[0]])} at position {int(outside[0])} ({outside.size} of "
            f"{len(labels)} labels out of range)."
        )
    return np.ascontiguousarray(data.reshape(len(data), 3, 32, 32)), labels.astype(np.int64)


def _read_cifar10_names(path: Path, key: str) -> tuple[str, ...]:
    meta = _unpickle(path, f"CIFAR-10's batches.meta (a pickled dict with {key!r})")
    names = meta.get(key)
    if not isinstance(names, (list, tuple)) or len(names) != 10:
        raise ValueError(
            f"load_dataset(): {str(path)!r} must hold the 10 class names under {key!r}, got {names!r:.80}."
        )
    return tuple(_text(name) for name in names)


def _unpickle(path: Path, expected: str) -> dict[str, object]:
    """A pickled dict with its keys as str, bytes keys decoded (Python 3 re-pickled batches)."""
    try:
        with path.open("rb") as handle:
            # latin1, as torchvision: Python 2 strings (the official keys) become str, numpy
            # arrays pickled by Python 2 load intact.
            entry = pickle.load(handle, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, AttributeError,
            ImportError, IndexError) as error:
        raise ValueError(
            f"load_dataset(): {str(path)!r} must be {expected}, got an unreadable file ({error!r})."
        ) from error
    if not isinstance(entry, dict):
        raise ValueError(f"load_dataset(): {str(path)!r} must be {expected}, got a {type(entry).__name__}.")
    return {_text(key): value for key, value in entry.items()}


def _text(value: object) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)
