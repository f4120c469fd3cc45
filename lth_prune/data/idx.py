"""Reader for the idx format of the original MNIST and Fashion-MNIST files.

The format (http://yann.lecun.com/exdb/mnist/) is a 4-byte magic number, one big-endian uint32 per
dimension, then the values in C order, big-endian. The magic number is two zero bytes, a type code
(``0x08`` unsigned byte for both MNIST data sets) and the number of dimensions.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx"]

# Type codes of the idx format and the big-endian numpy dtypes they stand for.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"
_HEADER_BYTES = 4
_DIM_BYTES = 4


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one idx file, raw or gzip-compressed, into a numpy array.

    Compression is recognised from the file's first bytes, not from its name, so a
    decompressed file that kept its ``.gz`` suffix still reads.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte`` or ``train-images-idx3-ubyte.gz``.

    Returns:
        An array of the file's shape (``(N, 28, 28)`` for MNIST images, ``(N,)`` for labels) in
        native byte order; ``uint8`` for type code ``0x08``.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a valid idx file (bad magic number, unknown type code,
            truncated or over-long payload, corrupt gzip stream); the message names the file.

    Example:
        >>> import tempfile, numpy as np
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> read_idx(path)
        array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_idx(): path must be an existing idx file, got {str(path)!r}.")
    content = _read_bytes(path)
    if len(content) < _HEADER_BYTES:
        raise ValueError(
            f"read_idx(): {str(path)!r} must start with a 4-byte idx header, got {len(content)} bytes."
        )
    zero_bytes, type_code, ndim = content[:2], content[2], content[3]
    if zero_bytes != b"\x00\x00" or type_code not in IDX_DTYPES:
        raise ValueError(
            f"read_idx(): {str(path)!r} must start with an idx magic number 0x0000TTDD with type code "
            f"TT in {_format_codes()}, got 0x{content[:4].hex()}."
        )
    dims_end = _HEADER_BYTES + _DIM_BYTES * ndim
    if len(content) < dims_end:
        raise ValueError(
            f"read_idx(): {str(path)!r} must hold {ndim} dimension sizes after its magic number, "
            f"got a file of {len(content)} bytes (truncated)."
        )
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=ndim, offset=_HEADER_BYTES))
    dtype = IDX_DTYPES[type_code]
    # Python ints: a damaged header can claim up to 2**32 per dimension, and 2**31 x 2**16 x
    # 2**16 entries overflowed numpy's int64 into a negative size.
    expected_bytes = math.prod(shape) * dtype.itemsize
    actual_bytes = len(content) - dims_end
    if actual_bytes != expected_bytes:
        problem = "truncated" if actual_bytes < expected_bytes else "trailing bytes"
        if expected_bytes > 2 * actual_bytes + (1 << 30):
            problem = (
                "truncated: the file is far too short for the shape its header claims, so the header "
                "is damaged or this is not an idx file"
            )
        raise ValueError(
            f"read_idx(): {str(path)!r} must hold {expected_bytes} bytes of data for shape {shape}, "
            f"got {actual_bytes} ({problem})."
        )
    values = np.frombuffer(content, dtype=dtype, offset=dims_end).reshape(shape)
    # Copy into native byte order so torch.from_numpy accepts the array and it owns writable memory.
    return values.astype(dtype.newbyteorder("="), copy=True)


def _read_bytes(path: Path) -> bytes:
    """Return the file's content, decompressed when it is a gzip stream."""
    with path.open("rb") as handle:
        content = handle.read()
    if not content.startswith(_GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(
            f"read_idx(): {str(path)!r} must be a complete gzip stream, got a corrupt one ({error})."
        ) from error


def _format_codes() -> str:
    return "{" + ", ".join(f"0x{code:02X}" for code in IDX_DTYPES) + "}"
