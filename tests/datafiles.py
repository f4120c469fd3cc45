"""Data files in the real on-disk formats, written independently of the readers under test."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

__all__ = ["write_cifar10"]


class Py2Str(bytes):
    """A Python 2 ``str``: pickled as (SHORT_)BINSTRING, as in the real CIFAR-10 batches."""


class Py2Pickler(pickle._Pickler):  # the pure-Python pickler, whose dispatch table can be extended
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: Py2Str) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + bytes(obj))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + bytes(obj))

    dispatch[Py2Str] = save_py2_str


def write_cifar10(root: Path, *, per_batch: int = 4, test: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """Write a tiny ``cifar-10-batches-py`` in the on-disk format of the official release."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written: dict[str, np.ndarray] = {}
    batches = [(f"data_batch_{index}", per_batch) for index in range(1, 6)] + [("test_batch", test)]
    for offset, (filename, count) in enumerate(batches):
        pixels = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        labels = [int(label) for label in (np.arange(count) + offset) % 10]
        entry = {Py2Str(b"batch_label"): Py2Str(filename.encode()), Py2Str(b"labels"): labels,
                 Py2Str(b"data"): pixels, Py2Str(b"filenames"): [Py2Str(b"x.png")] * count}
        with (folder / filename).open("wb") as handle:
            Py2Pickler(handle, protocol=2).dump(entry)
        written[filename + "/data"], written[filename + "/labels"] = pixels, np.array(labels)
    names = [Py2Str(name.encode()) for name in ("airplane", "automobile", "bird", "cat", "deer", "dog",
                                                 "frog", "horse", "ship", "truck")]
    meta = {Py2Str(b"num_cases_per_batch"): per_batch, Py2Str(b"label_names"): names, Py2Str(b"num_vis"): 3072}
    with (folder / "batches.meta").open("wb") as handle:
        Py2Pickler(handle, protocol=2).dump(meta)
    return written
