"""Data sets and a fast in-memory loader.

``load_dataset(name)`` returns :class:`DataSplits`: normalised train / validation / test tensors,
validation held out of the training set. :class:`InMemoryLoader` serves batches from tensors already
on the training device; :func:`random_crop_flip` is the CIFAR augmentation, done per batch.
"""
from __future__ import annotations

from lth_prune.data.augment import RandomCropFlip, crop_flip, random_crop_flip
from lth_prune.data.datasets import DATASETS, DatasetSource, load_dataset, make_synthetic
from lth_prune.data.files import RawData
from lth_prune.data.idx import read_idx
from lth_prune.data.loader import InMemoryLoader
from lth_prune.data.splits import DataSplits

__all__ = [
    # data sets
    "DATASETS",
    "DatasetSource",
    "DataSplits",
    "RawData",
    "load_dataset",
    "make_synthetic",
    "read_idx",
    # loading
    "InMemoryLoader",
    # augmentation
    "RandomCropFlip",
    "crop_flip",
    "random_crop_flip",
]
