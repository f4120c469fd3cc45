"""Tests of lth_prune.data: idx reader, named data sets, splits, loader and augmentation."""
from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lth_prune.data as data
from lth_prune.data import (
    DataSplits,
    InMemoryLoader,
    crop_flip,
    DATASETS,
    load_dataset,
    make_synthetic,
    random_crop_flip,
    read_idx,
)
from lth_prune.data import files
from lth_prune.data.sampling import stratified_indices
from tests.datafiles import write_cifar10
from tests.devices import no_sync_allowed

FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


# --------------------------------------------------------------------------- helpers


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    """Write ``array`` in the idx format, independently of the reader under test."""
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    header = bytes([0, 0, IDX_TYPE_CODES[big_endian.dtype], array.ndim])
    content = header + struct.pack(f">{array.ndim}I", *array.shape) + big_endian.tobytes()
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def write_mnist_files(directory: Path, *, train: int = 40, test: int = 10, compress: bool = False,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Write the four MNIST idx files (small) and return the arrays written."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(test) % 10).astype(np.uint8),
    }
    for filename, array in arrays.items():
        write_idx(directory / (filename + (".gz" if compress else "")), array, compress=compress)
    return arrays


def pixels(images: torch.Tensor, splits: DataSplits, scale: float) -> np.ndarray:
    """Undo the normalisation: raw integer pixel values, one flattened row per example."""
    mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
    std = torch.tensor(splits.std).view(1, -1, 1, 1)
    return torch.round((images * std + mean) * scale).to(torch.int64).flatten(1).numpy()


def row_counts(rows: np.ndarray) -> Counter:
    return Counter(row.tobytes() for row in np.ascontiguousarray(rows, dtype=np.int64))


# --------------------------------------------------------------------------- API surface


def test_public_api_surface() -> None:
    assert sorted(data.__all__) == sorted([
        "DATASETS", "DatasetSource", "DataSplits", "InMemoryLoader", "RandomCropFlip", "RawData", "crop_flip", "load_dataset",
        "make_synthetic", "random_crop_flip", "read_idx",
    ])


def test_the_registry_holds_the_built_in_data_sets() -> None:
    assert DATASETS.names()[:5] == ["digits", "mnist", "fashion-mnist", "cifar10", "synthetic"]
    assert DATASETS.canonical("FashionMNIST") == "fashion-mnist" and DATASETS.get("CIFAR-10").default_val_size == 5000


# --------------------------------------------------------------------------- idx reader


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([7, 2, 1, 0, 255], dtype=np.uint8),
        np.array([[-5, 70000], [1, 2]], dtype=">i4"),
        np.array([0.5, -1.25], dtype=">f4"),
    ],
    ids=["images-ubyte", "labels-ubyte", "int32", "float32"],
)
def test_read_idx_round_trip(tmp_path: Path, array: np.ndarray, compress: bool) -> None:
    path = write_idx(tmp_path / "file-idx", array, compress=compress)
    result = read_idx(path)
    assert result.shape == array.shape
    assert result.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(result, array)


def test_read_idx_bad_magic_names_file(tmp_path: Path) -> None:
    path = tmp_path / "bad-magic-idx3-ubyte"
    path.write_bytes(bytes([0x50, 0x4B, 8, 1, 0, 0, 0, 1, 9]))
    with pytest.raises(ValueError, match=r"read_idx\(\): .*bad-magic-idx3-ubyte.*magic number.*0x504b0801"):
        read_idx(path)


def test_read_idx_unknown_type_code(tmp_path: Path) -> None:
    path = tmp_path / "odd-type"
    path.write_bytes(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 9]))
    with pytest.raises(ValueError, match="odd-type.*type code"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_read_idx_truncated_payload_names_file(tmp_path: Path, compress: bool) -> None:
    content = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 4]) + bytes(31)  # needs 32
    path = tmp_path / "short-images-idx3-ubyte"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(ValueError, match=r"short-images-idx3-ubyte.*32 bytes.*got 31 \(truncated\)"):
        read_idx(path)


def test_read_idx_truncated_header_and_trailing_bytes(tmp_path: Path) -> None:
    header_only = tmp_path / "header-only"
    header_only.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 2]))
    with pytest.raises(ValueError, match="header-only.*3 dimension sizes"):
        read_idx(header_only)
    too_long = tmp_path / "too-long"
    too_long.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]))
    with pytest.raises(ValueError, match="too-long.*trailing bytes"):
        read_idx(too_long)


def test_read_idx_truncated_gzip_names_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "labels-idx1-ubyte.gz", np.arange(200, dtype=np.uint8), compress=True)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match="labels-idx1-ubyte.gz.*gzip"):
        read_idx(path)


def test_read_idx_implausible_header_is_reported_without_overflow(tmp_path: Path) -> None:
    # 2**31 x 2**16 x 2**16 one-byte entries: 2**63 bytes, one past numpy's int64.
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**31, 2**16, 2**16) + bytes(12))
    with pytest.raises(ValueError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert f"{str(path)!r} must hold 9223372036854775808 bytes of data for shape (2147483648, 65536, 65536)" in message
    assert "got 12 (truncated: the file is far too short for the shape its header claims" in message
    assert "header is damaged or this is not an idx file" in message and "-9223372036854775808" not in message


def test_read_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="read_idx"):
        read_idx(tmp_path / "absent")


# --------------------------------------------------------------------------- MNIST / Fashion-MNIST files


@pytest.mark.parametrize("subdir", ["", "MNIST/raw", "mnist"])
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_load_mnist_from_idx_files(tmp_path: Path, subdir: str, compress: bool) -> None:
    written = write_mnist_files(tmp_path / subdir, compress=compress)
    splits = load_dataset("MNIST", data_dir=tmp_path, val_size=10, seed=3)
    assert (splits.name, splits.num_classes, splits.input_shape) == ("mnist", 10, (1, 28, 28))
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (30, 10, 10)
    train_rows = written["train-images-idx3-ubyte"].reshape(40, -1)
    recovered = np.concatenate([pixels(splits.train_x, splits, 255), pixels(splits.val_x, splits, 255)])
    assert row_counts(recovered) == row_counts(train_rows)
    np.testing.assert_array_equal(pixels(splits.test_x, splits, 255),
                                  written["t10k-images-idx3-ubyte"].reshape(10, -1))
    np.testing.assert_array_equal(splits.test_y.numpy(), written["t10k-labels-idx1-ubyte"])
    # Labels travel with their images.
    label_of = {row.tobytes(): label for row, label in
                zip(train_rows.astype(np.int64), written["train-labels-idx1-ubyte"])}
    for rows, labels in ((pixels(splits.train_x, splits, 255), splits.train_y),
                         (pixels(splits.val_x, splits, 255), splits.val_y)):
        assert [label_of[row.tobytes()] for row in rows] == labels.tolist()


@pytest.mark.parametrize("subdir", ["fashion-mnist", "FashionMNIST/raw"])
def test_load_fashion_mnist_from_data_dir_subfolder(tmp_path: Path, subdir: str) -> None:
    write_mnist_files(tmp_path / subdir, compress=True)
    splits = load_dataset("fashion_mnist", data_dir=tmp_path, val_size=0.25)
    assert splits.name == "fashion-mnist"
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (30, 10, 10)
    assert splits.class_names[0] == "T-shirt/top"


def test_load_mnist_corrupt_file_names_it(tmp_path: Path) -> None:
    write_mnist_files(tmp_path)
    broken = tmp_path / "t10k-labels-idx1-ubyte"
    broken.write_bytes(broken.read_bytes()[:-3])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*truncated"):
        load_dataset("mnist", data_dir=tmp_path)


def test_load_mnist_label_count_mismatch(tmp_path: Path) -> None:
    write_mnist_files(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(39, dtype=np.uint8))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.*one label per image.*40"):
        load_dataset("mnist", data_dir=tmp_path)


def test_missing_mnist_lists_directories_searched(tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte", np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(FileNotFoundError) as caught:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(caught.value)
    for directory in (tmp_path, tmp_path / "mnist", tmp_path / "MNIST" / "raw"):
        assert f"  {directory}" in message
    assert f"{tmp_path / 'mnist'} (has only 1 of the 4 files)" in message
    assert "t10k-labels-idx1-ubyte" in message and "download=True" in message and "--data-dir" in message


def test_missing_fashion_mnist_suggests_debian_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system_dir = tmp_path / "system" / "fashion-mnist"
    monkeypatch.setitem(files.SYSTEM_DATA_DIRS, "fashion-mnist", (system_dir,))
    with pytest.raises(FileNotFoundError) as caught:
        load_dataset("fashion-mnist", data_dir=tmp_path / "mine")
    message = str(caught.value)
    for directory in (tmp_path / "mine", tmp_path / "mine" / "FashionMNIST" / "raw", system_dir):
        assert f"  {directory}" in message
    assert "apt-get install dataset-fashion-mnist" in message


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (/usr/share/datasets/fashion-mnist)")
def test_real_fashion_mnist_from_debian_package(tmp_path: Path) -> None:
    raw = files.read_mnist_like("fashion-mnist", tmp_path)  # nothing in tmp_path: falls through
    assert raw.source == str(FASHION_SYSTEM_DIR)
    assert raw.train_x.shape == (60000, 28, 28) and raw.test_x.shape == (10000, 28, 28)
    assert sorted(np.unique(raw.train_y)) == list(range(10))
    splits = DataSplits.from_arrays(raw.train_x, raw.train_y, raw.test_x, raw.test_y, name="fashion-mnist",
                                    val_size=5000, limit=1000, pixel_scale=255.0)
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (1000, 5000, 10000)
    assert torch.bincount(splits.train_y).tolist() == [100] * 10


# --------------------------------------------------------------------------- CIFAR-10


def test_load_cifar10_from_batches_directory(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    with pytest.warns(UserWarning, match="md5 mismatch"):
        splits = load_dataset("CIFAR-10", data_dir=tmp_path, val_size=4)
    assert (splits.name, splits.input_shape, splits.num_classes) == ("cifar10", (3, 32, 32), 10)
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (16, 4, 6)
    assert splits.class_names[:2] == ("airplane", "automobile")
    # The test batch keeps its order: pixels (channel-major rows of 3072) and labels match exactly.
    np.testing.assert_array_equal(pixels(splits.test_x, splits, 255), written["test_batch/data"])
    np.testing.assert_array_equal(splits.test_y.numpy(), written["test_batch/labels"])
    train_rows = np.concatenate([written[f"data_batch_{index}/data"] for index in range(1, 6)])
    recovered = np.concatenate([pixels(splits.train_x, splits, 255), pixels(splits.val_x, splits, 255)])
    assert row_counts(recovered) == row_counts(train_rows)


def test_load_cifar10_verified_copy_does_not_warn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import CIFAR10

    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    md5 = {path.name: hashlib.md5(path.read_bytes()).hexdigest() for path in folder.iterdir()}
    monkeypatch.setattr(CIFAR10, "train_list", [[name, md5[name]] for name, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5["batches.meta"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = load_dataset("cifar10", data_dir=folder, val_size=0)  # the folder itself also works
    assert len(splits.train_y) == 20 and len(splits.val_y) == 0


def test_missing_cifar10_lists_directories_searched(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        load_dataset("cifar10", data_dir=tmp_path)
    message = str(caught.value)
    assert f"  {tmp_path / 'cifar-10-batches-py'}" in message
    assert f"  {tmp_path / 'cifar10' / 'cifar-10-batches-py'}" in message
    assert "download=True" in message and "data_batch_5" in message


def test_corrupt_cifar10_batch_names_folder(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="cifar-10-batches-py.*unreadable"):
        load_dataset("cifar10", data_dir=tmp_path)


def _rewrite_batch(folder: Path, filename: str, *, bytes_keys: bool = False, **changes: object) -> None:
    """Load one batch and write it back with Python 3's pickle, its keys as str or bytes."""
    with (folder / filename).open("rb") as handle:
        entry = pickle.load(handle, encoding="latin1")
    entry.update(changes)
    entry = {(key.encode() if bytes_keys else key): value for key, value in entry.items()}
    with (folder / filename).open("wb") as handle:
        pickle.dump(entry, handle, protocol=pickle.HIGHEST_PROTOCOL)


def test_cifar10_batches_with_bytes_keys_load(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    for filename in ("data_batch_2", "test_batch", "batches.meta"):
        _rewrite_batch(folder, filename, bytes_keys=True)
    with pytest.warns(UserWarning, match="md5 mismatch"):
        splits = load_dataset("cifar10", data_dir=tmp_path, val_size=0)
    np.testing.assert_array_equal(pixels(splits.test_x, splits, 255), written["test_batch/data"])
    np.testing.assert_array_equal(splits.test_y.numpy(), written["test_batch/labels"])
    assert splits.class_names[-1] == "truck"


def _cifar10_error(tmp_path: Path, filename: str, **changes: object) -> str:
    write_cifar10(tmp_path)
    _rewrite_batch(tmp_path / "cifar-10-batches-py", filename, **changes)
    with pytest.warns(UserWarning), pytest.raises(ValueError) as caught:
        load_dataset("cifar10", data_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"load_dataset(): {str(tmp_path / 'cifar-10-batches-py' / filename)!r} must ")
    return message


def test_cifar10_label_out_of_range_is_named_with_the_valid_range(tmp_path: Path) -> None:
    message = _cifar10_error(tmp_path, "data_batch_4", labels=[3, 42, 1, 0])
    assert "must hold labels in [0, 10), the 10 CIFAR-10 classes, got 42 at position 1 (1 of 4 labels" in message


def test_cifar10_float_pixels_are_refused_naming_the_dtype(tmp_path: Path) -> None:
    message = _cifar10_error(tmp_path, "test_batch", data=np.zeros((6, 3072), dtype=np.float64))
    assert "must hold uint8 pixels in 'data', as CIFAR-10's batches do, got float64" in message
    assert "astype(np.uint8)" in message


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"labels": [1, 2]}, "must hold one label per image, got 2 labels for 4 images"),
        ({"labels": [0.5, 1.0, 2.0, 3.0]}, "must hold one integer label per image in 'labels', got an array of float64"),
        ({"data": np.zeros((4, 100), dtype=np.uint8)}, "N rows of 3072 values (3 x 32 x 32) in 'data', got shape (4, 100)"),
    ],
    ids=["label-count", "float-labels", "row-size"],
)
def test_cifar10_batch_contents_are_checked_and_the_file_named(tmp_path: Path, changes: dict, words: str) -> None:
    assert words in _cifar10_error(tmp_path, "data_batch_1", **changes)


def test_cifar10_batch_without_its_keys_is_named(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_5"
    with path.open("wb") as handle:
        pickle.dump({b"pixels": np.zeros((4, 3072), np.uint8)}, handle)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"data_batch_5' must be a CIFAR-10 python "
                                                  r"batch .*got a dict without \['data', 'labels'\] \(its keys: \['pixels'\]\)"):
        load_dataset("cifar10", data_dir=tmp_path)


# --------------------------------------------------------------------------- digits and synthetic


def test_digits_shapes_and_classes() -> None:
    splits = load_dataset("digits")
    assert (splits.name, splits.num_classes, splits.input_shape) == ("digits", 10, (1, 8, 8))
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (1294, 144, 359)
    assert splits.train_x.dtype == torch.float32 and splits.train_y.dtype == torch.int64
    assert torch.bincount(splits.test_y, minlength=10).min() >= 35  # stratified: ~36 per class
    # Normalised with the training split's own statistics.
    assert abs(float(splits.train_x.mean())) < 1e-5
    assert float(splits.train_x.std(unbiased=False)) == pytest.approx(1.0, abs=1e-4)
    assert "train: 1294 examples" in splits.summary() and "train=1294" in repr(splits)


def test_digits_splits_partition_the_data_and_val_comes_from_train() -> None:
    from sklearn.datasets import load_digits

    original = row_counts(load_digits().images.reshape(-1, 64).astype(np.int64))
    first, second = load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    for splits in (first, second):
        recovered = np.concatenate([pixels(getattr(splits, f"{split}_x"), splits, 16)
                                    for split in ("train", "val", "test")])
        assert row_counts(recovered) == original  # disjoint, and nothing lost or invented
    # The test split is fixed; the validation split is drawn from the training part with `seed`.
    assert row_counts(pixels(first.test_x, first, 16)) == row_counts(pixels(second.test_x, second, 16))
    assert row_counts(pixels(first.val_x, first, 16)) != row_counts(pixels(second.val_x, second, 16))
    def train_and_val(splits: DataSplits) -> Counter:
        return row_counts(np.concatenate([pixels(splits.train_x, splits, 16), pixels(splits.val_x, splits, 16)]))

    assert train_and_val(first) == train_and_val(second)


def test_digits_deterministic_for_a_seed() -> None:
    first, again = load_dataset("digits", seed=5), load_dataset("digits", seed=5)
    for split in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        assert torch.equal(getattr(first, split), getattr(again, split))


def test_limit_caps_training_set_and_keeps_validation() -> None:
    full, limited = load_dataset("digits", seed=2), load_dataset("digits", seed=2, limit=100)
    assert len(limited.train_y) == 100
    assert torch.bincount(limited.train_y, minlength=10).tolist() == [10] * 10
    np.testing.assert_array_equal(pixels(limited.val_x, limited, 16), pixels(full.val_x, full, 16))
    assert torch.equal(limited.val_y, full.val_y)


@pytest.mark.parametrize("val_size, expected", [(0, 0), (100, 100), (0.25, 360)])
def test_val_size_count_or_fraction(val_size: int | float, expected: int) -> None:
    splits = load_dataset("digits", val_size=val_size)
    assert len(splits.val_y) == expected and len(splits.train_y) == 1438 - expected


@pytest.mark.parametrize("val_size", [-1, 1438, 1.0, -0.1])
def test_val_size_out_of_range(val_size: int | float) -> None:
    with pytest.raises(ValueError, match="val_size"):
        load_dataset("digits", val_size=val_size)


@pytest.mark.parametrize("limit", [0, -3, 2.5])
def test_limit_must_be_positive_int(limit: object) -> None:
    with pytest.raises(ValueError, match=r"limit must be a positive int or None, got"):
        load_dataset("digits", limit=limit)  # type: ignore[arg-type]


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as caught:
        load_dataset("cifar-100")
    assert str(caught.value) == (
        "load_dataset(): dataset must be one of ['digits', 'mnist', 'fashion-mnist', 'cifar10', 'synthetic'], "
        "got 'cifar-100'."
    )


def test_argument_types() -> None:
    with pytest.raises(TypeError, match="name must be a str"):
        load_dataset(10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="download must be a bool"):
        load_dataset("digits", download="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int"):
        load_dataset("digits", seed=1.5)  # type: ignore[arg-type]


def test_synthetic_is_seeded_and_learnable() -> None:
    from sklearn.linear_model import LogisticRegression

    splits = load_dataset("Synthetic")
    assert (splits.num_classes, splits.input_shape) == (4, (1, 8, 8))
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (369, 41, 102)
    assert torch.equal(splits.train_x, load_dataset("synthetic").train_x)
    assert torch.equal(splits.test_x, make_synthetic().test_x)  # the name uses make_synthetic's defaults
    model = LogisticRegression(max_iter=2000).fit(splits.train_x.flatten(1).numpy(), splits.train_y.numpy())
    assert model.score(splits.test_x.flatten(1).numpy(), splits.test_y.numpy()) > 0.8


def test_make_synthetic_custom_shape_and_validation() -> None:
    splits = make_synthetic(300, num_classes=3, input_shape=(3, 6, 5), val_size=30)
    assert splits.train_x.shape == (210, 3, 6, 5) and splits.test_x.shape == (60, 3, 6, 5)
    assert splits.num_classes == 3 and len(splits.mean) == 3
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        make_synthetic(num_classes=1)
    with pytest.raises(ValueError, match="num_samples must be an int >= 5"):
        make_synthetic(10, num_classes=4)


def test_stratified_indices_exact_count_and_proportions() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    chosen = stratified_indices(labels, 10, np.random.default_rng(0))
    assert len(chosen) == 10 and len(np.unique(chosen)) == 10
    assert np.bincount(labels[chosen]).tolist() == [5, 3, 2]
    assert np.array_equal(chosen, stratified_indices(labels, 10, np.random.default_rng(0)))
    with pytest.raises(ValueError, match=r"count must be in \[0, 100\], got 101"):
        stratified_indices(labels, 101, np.random.default_rng(0))


def test_from_arrays_does_not_modify_inputs() -> None:
    test_x = torch.rand(6, 1, 3, 3)
    before = test_x.clone()
    DataSplits.from_arrays(torch.rand(20, 1, 3, 3), torch.arange(20) % 2, test_x, torch.arange(6) % 2,
                           name="toy", val_size=4)
    assert torch.equal(test_x, before)


def test_data_splits_validates_fields() -> None:
    good = make_synthetic(100, num_classes=2)
    with pytest.raises(ValueError, match=r"DataSplits\(\): train_y must be an int64 tensor"):
        DataSplits(good.train_x, good.train_y.int(), good.val_x, good.val_y, good.test_x, good.test_y,
                   name="x", num_classes=2, input_shape=good.input_shape, mean=good.mean, std=good.std)


# --------------------------------------------------------------------------- InMemoryLoader


def test_loader_yields_every_example_once_per_epoch() -> None:
    x = torch.arange(23.0).view(23, 1).expand(23, 3).contiguous()
    loader = InMemoryLoader(x, torch.arange(23), 5, generator=torch.Generator().manual_seed(0))
    for _ in range(2):
        seen = []
        for inputs, targets in loader:
            assert torch.equal(inputs[:, 0].long(), targets)  # inputs stay paired with targets
            seen.extend(targets.tolist())
        assert sorted(seen) == list(range(23)) and seen != list(range(23))


@pytest.mark.parametrize("drop_last, batches, sizes", [(False, 4, [3, 3, 3, 1]), (True, 3, [3, 3, 3])])
def test_loader_batch_count(drop_last: bool, batches: int, sizes: list[int]) -> None:
    loader = InMemoryLoader(torch.zeros(10, 2), torch.zeros(10), 3, shuffle=False, drop_last=drop_last)
    assert len(loader) == batches
    assert [len(targets) for _, targets in loader] == sizes


def test_loader_without_shuffle_keeps_order() -> None:
    loader = InMemoryLoader(torch.arange(7.0), torch.arange(7), 3, shuffle=False)
    assert [targets.tolist() for _, targets in loader] == [[0, 1, 2], [3, 4, 5], [6]]


def test_loader_same_seed_same_order() -> None:
    def orders(seed: int) -> list[list[int]]:
        loader = InMemoryLoader(torch.zeros(50, 1), torch.arange(50), 8,
                                generator=torch.Generator().manual_seed(seed))
        return [torch.cat([targets for _, targets in loader]).tolist() for _ in range(3)]

    first = orders(7)
    assert first == orders(7)
    assert first != orders(8)
    assert first[0] != first[1]  # each epoch draws a new permutation


def test_loader_applies_augment_to_inputs_only() -> None:
    loader = InMemoryLoader(torch.zeros(4, 1), torch.arange(4), 2, shuffle=False, augment=lambda batch: batch + 1)
    inputs, targets = next(iter(loader))
    assert torch.equal(inputs, torch.ones(2, 1)) and torch.equal(targets, torch.tensor([0, 1]))


def test_loader_validates_arguments() -> None:
    x, y = torch.zeros(4, 1), torch.zeros(4)
    with pytest.raises(ValueError, match=r"InMemoryLoader\(\): batch_size must be positive, got 0."):
        InMemoryLoader(x, y, 0)
    for bad in (2.5, True):
        with pytest.raises(TypeError, match="batch_size must be an int"):
            InMemoryLoader(x, y, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same length, got 4 and 3"):
        InMemoryLoader(x, torch.zeros(3), 2)
    with pytest.raises(TypeError, match="augment must be callable"):
        InMemoryLoader(x, y, 2, augment=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        InMemoryLoader(x, y, 2, generator=0)  # type: ignore[arg-type]


def test_data_splits_loaders() -> None:
    splits = make_synthetic(200, num_classes=2, val_size=20)
    train, val, test = splits.loaders(32, seed=1)
    assert (len(train), len(val), len(test)) == (5, 1, 2)
    assert train.shuffle and not val.shuffle and not test.shuffle
    first = torch.cat([targets for _, targets in train])
    again = torch.cat([targets for _, targets in splits.loaders(32, seed=1)[0]])
    assert torch.equal(first, again)
    assert torch.equal(torch.cat([inputs for inputs, _ in val]), splits.val_x)


# --------------------------------------------------------------------------- augmentation


def test_crop_flip_identity_without_padding_or_flip() -> None:
    images = torch.randn(5, 3, 7, 6)
    assert torch.equal(random_crop_flip(padding=0, flip=False)(images), images)


def test_crop_flip_matches_per_image_reference() -> None:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(12, 2, 5, 6, generator=generator)
    top, left = torch.randint(0, 5, (12,), generator=generator), torch.randint(0, 5, (12,), generator=generator)
    flipped = torch.randint(0, 2, (12,), generator=generator).bool()
    result = crop_flip(images, top, left, flipped, padding=2, fill=-1.0)
    for index in range(12):
        padded = F.pad(images[index], (2, 2, 2, 2), value=-1.0)
        expected = padded[:, top[index]: top[index] + 5, left[index]: left[index] + 6]
        if flipped[index]:
            expected = expected.flip(-1)
        assert torch.equal(result[index], expected)


def test_random_crop_flip_outputs_are_crops_or_flips_of_their_input() -> None:
    images = torch.randn(32, 2, 4, 5)
    augment = random_crop_flip(padding=2, generator=torch.Generator().manual_seed(3))
    result = augment(images)
    assert result.shape == images.shape
    used = set()
    for index in range(32):
        padded = F.pad(images[index], (2, 2, 2, 2))
        candidates = [
            (top, left, flip) for top in range(5) for left in range(5) for flip in (False, True)
            if torch.equal(result[index], _maybe_flip(padded[:, top: top + 4, left: left + 5], flip))
        ]
        assert candidates, f"output {index} is no crop or flip of its input"
        used.update(candidates)
    assert len(used) > 16 and {flip for *_, flip in used} == {False, True}


def test_random_crop_flip_reproducible_and_leaves_input_alone() -> None:
    images = torch.randn(8, 3, 8, 8)
    before = images.clone()
    first = random_crop_flip(4, generator=torch.Generator().manual_seed(1))(images)
    second = random_crop_flip(4, generator=torch.Generator().manual_seed(1))(images)
    assert torch.equal(first, second) and torch.equal(images, before)


def test_crop_flip_validation() -> None:
    with pytest.raises(ValueError, match=r"RandomCropFlip\(\): padding must be >= 0, got -1."):
        random_crop_flip(-1)
    with pytest.raises(ValueError, match=r"RandomCropFlip\(\): images must be \(N, C, H, W\)"):
        random_crop_flip(1)(torch.zeros(3, 4, 4))
    zero = torch.zeros(1, dtype=torch.long)
    with pytest.raises(ValueError, match=r"crop_flip\(\): top must be in \[0, 2\], got values in \[3, 3\]"):
        crop_flip(torch.zeros(1, 1, 2, 2), zero + 3, zero, zero.bool(), padding=1)


def test_random_crop_flip_on_the_device_reads_nothing_back(device: torch.device) -> None:
    images = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(0)).to(device)
    augment = random_crop_flip(4, generator=torch.Generator(device=device).manual_seed(5))
    with no_sync_allowed(device):
        result = augment(images)
    # The same draws, through the checked public function: the same crops.
    generator = torch.Generator(device=device).manual_seed(5)
    top, left = torch.randint(0, 9, (2, 16), generator=generator, device=device)
    flipped = torch.randint(0, 2, (16,), generator=generator, device=device).bool()
    assert torch.equal(result, crop_flip(images, top, left, flipped, padding=4))


def _maybe_flip(crop: torch.Tensor, flip: bool) -> torch.Tensor:
    return crop.flip(-1) if flip else crop
