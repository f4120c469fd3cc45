"""Seeds side by side in worker processes that die with the process that started them.

A worker of a killed run must not go on writing into its run directory (a resume would race
it): on Linux the kernel kills each worker when its parent dies (``PR_SET_PDEATHSIG``), and on
every system a watchdog thread in the worker ends it within a second of its parent's death.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence, TypeVar

import torch

__all__ = ["map_in_workers"]

Result = TypeVar("Result")
_WATCH_SECONDS = 0.5


def map_in_workers(
    function: Callable[..., Result], argument_lists: Sequence[tuple[Any, ...]], workers: int
) -> list[Result]:
    """``[function(*arguments) for arguments in argument_lists]``, in ``workers`` processes.

    Each worker gets its share of this process's CPU threads. ``function`` must be importable
    (a module-level function), as with any spawned process.
    """
    threads = max(1, torch.get_num_threads() // workers)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_start_worker, initargs=(os.getpid(), threads)) as pool:
        return pool.starmap(function, argument_lists)


def _start_worker(parent: int, threads: int) -> None:
    torch.set_num_threads(threads)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="lth_prune-parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_SECONDS)
    os._exit(1)
