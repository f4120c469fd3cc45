"""What the device tests share: a block in which nothing may wait for the GPU."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["no_sync_allowed"]


@contextlib.contextmanager
def no_sync_allowed(device: torch.device) -> Iterator[None]:
    """On CUDA, any operation that waits for the device raises inside the block."""
    if device.type != "cuda":
        yield
        return
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")
