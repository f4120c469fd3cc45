"""Compact encodings of masks and of the values that survive them, for ticket files.

A mask is stored in whichever of three forms is smallest: packed bits (1 bit per weight), or
the gaps between kept positions as int16 or int32 (2 or 4 bytes per kept weight). At 2 %
weights remaining the gaps take about 0.3 bits per weight, a tenth of the packed bits.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["pack_mask", "unpack_mask"]


def pack_mask(mask: Tensor) -> dict[str, Any]:
    """Encode a boolean mask; :func:`unpack_mask` gives it back exactly.

    Returns:
        ``{"shape", "encoding", "data", "kept"}``, made of lists, strs, ints and one tensor.

    Example:
        >>> mask = torch.zeros(1000, dtype=torch.bool)
        >>> mask[[3, 500, 999]] = True
        >>> packed = pack_mask(mask)
        >>> packed["encoding"], torch.equal(unpack_mask(packed), mask)
        ('gaps16', True)
    """
    flat = mask.detach().reshape(-1).to("cpu", torch.bool)
    kept_index = flat.nonzero().squeeze(1)
    # Gaps between consecutive kept positions (the first counted from -1), minus one: all >= 0.
    gaps = torch.diff(kept_index, prepend=torch.tensor([-1])) - 1
    sizes = {"bits": (flat.numel() + 7) // 8, "gaps32": 4 * kept_index.numel()}
    if kept_index.numel() == 0 or int(gaps.max()) <= torch.iinfo(torch.int16).max:
        sizes["gaps16"] = 2 * kept_index.numel()
    encoding = min(sizes, key=lambda name: (sizes[name], name))
    if encoding == "bits":
        data = torch.from_numpy(np.packbits(flat.numpy()))
    else:
        data = gaps.to(torch.int16 if encoding == "gaps16" else torch.int32)
    return {"shape": list(mask.shape), "encoding": encoding, "data": data, "kept": int(kept_index.numel())}


def unpack_mask(packed: dict[str, Any]) -> Tensor:
    """Decode what :func:`pack_mask` wrote into a boolean mask of the original shape.

    Raises:
        ValueError: if the encoding is unknown or the data does not fit the shape.
    """
    shape = tuple(packed["shape"])
    numel = int(np.prod(shape)) if shape else 1
    encoding, data = packed["encoding"], packed["data"]
    if encoding == "bits":
        flat = torch.from_numpy(np.unpackbits(data.cpu().numpy(), count=numel).astype(bool))
    elif encoding in ("gaps16", "gaps32"):
        kept_index = torch.cumsum(data.to(torch.int64) + 1, dim=0) - 1
        if kept_index.numel() and int(kept_index[-1]) >= numel:
            raise ValueError(f"unpack_mask(): the kept positions run past the mask's {numel} entries.")
        flat = torch.zeros(numel, dtype=torch.bool)
        flat[kept_index] = True
    else:
        raise ValueError(f"unpack_mask(): encoding must be 'bits', 'gaps16' or 'gaps32', got {encoding!r}.")
    if int(flat.sum()) != packed["kept"]:
        raise ValueError(f"unpack_mask(): the mask keeps {int(flat.sum())} entries, the file says {packed['kept']}.")
    return flat.reshape(shape)
