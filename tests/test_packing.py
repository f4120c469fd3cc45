"""Mask encodings: exact round trips and the smallest form chosen."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lth_prune.packing import pack_mask, unpack_mask


@given(bits=st.lists(st.booleans(), min_size=1, max_size=300), rows=st.integers(1, 3))
@settings(max_examples=80, deadline=None)
def test_round_trip(bits, rows):
    mask = torch.tensor(bits * rows).reshape(rows, len(bits))
    assert torch.equal(unpack_mask(pack_mask(mask)), mask)


@pytest.mark.parametrize(("density", "encoding"), [(0.5, "bits"), (0.02, "gaps16"), (0.0, "gaps16")])
def test_smallest_encoding(density, encoding):
    mask = torch.rand(100_000, generator=torch.Generator().manual_seed(0)) < density
    packed = pack_mask(mask)
    assert packed["encoding"] == encoding
    assert torch.equal(unpack_mask(packed), mask)


def test_long_gaps_use_int32():
    mask = torch.zeros(200_000, dtype=torch.bool)
    mask[[0, 100_000]] = True
    packed = pack_mask(mask)
    assert packed["encoding"] == "gaps32" and packed["data"].dtype == torch.int32
    assert torch.equal(unpack_mask(packed), mask)


def test_corrupt_data_is_rejected():
    packed = pack_mask(torch.tensor([True, False, True]))
    with pytest.raises(ValueError, match="the file says 3"):
        unpack_mask({**packed, "kept": 3})
    with pytest.raises(ValueError, match="encoding must be 'bits', 'gaps16' or 'gaps32', got 'rle'"):
        unpack_mask({**packed, "encoding": "rle"})
