"""Running IMP under ``torchrun``: process groups, batch shards and cross-rank checks.

Under ``torchrun --nproc_per_node N -m lth_prune run ...`` every rank runs the same IMP loop;
each round trains a :class:`~torch.nn.parallel.DistributedDataParallel` copy in which every
rank sees its own shard of every batch. Pruning is deterministic and DDP keeps the weights
identical, so masks and rewind points are identical by construction; :func:`check_identical`
verifies it after every pruning step and stops the run with a clear error if not.
"""
from __future__ import annotations

import hashlib
import os
from typing import Mapping

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["check_identical", "init_from_env", "is_main_process", "rank", "shard", "world_size"]


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank in the default group (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """Whether this process writes results, figures and checkpoints (rank 0)."""
    return rank() == 0


def init_from_env(device: str) -> tuple[bool, torch.device | None]:
    """Join the process group ``torchrun`` describes in the environment, if any.

    Args:
        device: the config's device (``"auto"``, ``"cpu"``, ``"cuda"``, ...); NCCL is used for
            CUDA, gloo otherwise.

    Returns:
        ``(created, device)``: whether a group was created here (and so should be destroyed
        at the end), and the device of this rank (``cuda:<LOCAL_RANK>`` on GPUs) or ``None``
        when not distributed.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False, None
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    local = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(local)
    if dist.is_initialized():
        return False, local
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return True, local


def shard(tensor: Tensor) -> Tensor:
    """This rank's contiguous part of a batch (all of it when not distributed).

    Example:
        >>> shard(torch.arange(5)).tolist()
        [0, 1, 2, 3, 4]
    """
    count = world_size()
    return tensor if count == 1 else torch.tensor_split(tensor, count)[rank()]


def check_identical(tensors: Mapping[str, Tensor], what: str) -> None:
    """Stop with an error unless every rank holds exactly the same ``tensors``.

    Args:
        tensors: e.g. the masks by name.
        what: what they are, for the message (``"masks after pruning level 3"``).

    Raises:
        RuntimeError: naming the ranks that disagree with rank 0.
    """
    if world_size() == 1:
        return
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().to("cpu").contiguous().numpy().tobytes())
    digests: list[str | None] = [None] * world_size()
    dist.all_gather_object(digests, digest.hexdigest())
    differing = [index for index, value in enumerate(digests) if value != digests[0]]
    if differing:
        raise RuntimeError(
            f"check_identical(): {what} differ between ranks: ranks {differing} disagree with rank 0. "
            "Every rank must start from the same weights and see the same data order."
        )
