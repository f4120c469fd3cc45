"""Files that survive crashes and concurrent writers: an exclusive lock, atomic writes, and reads
that name the file when it is damaged. The mechanism only; :mod:`lth_prune.imp.store.rundir` owns which
files a run directory holds.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "RunDirectoryError", "RunLock", "json_bytes", "read_json", "read_torch", "reason", "tensor_dict",
    "torch_bytes", "write_atomic",
]


class RunDirectoryError(ValueError):
    """A file of a run directory is missing, truncated or not what lth_prune wrote.

    The message names the file and what to do (for a level's files: delete that level's
    directory and resume, which recomputes it).
    """


class RunLock:
    """An exclusive, advisory lock on a run directory (or one seed of it), held while writing.

    The lock file holds the holder's pid and host. A second writer fails at once with a
    :class:`RuntimeError` naming that pid. The operating system drops the lock when its process
    dies however it dies, so a lock left by a killed run is taken over (with a warning naming the
    dead holder); a run that ends normally removes its lock file.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock.

        Raises:
            RuntimeError: if another live process holds it (the message names its pid).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_file(fd)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK):
                    os.close(fd)
                    raise  # locking itself failed (a file system without locks), not a holder
                holder = _read_holder(fd)
                os.close(fd)
                raise RuntimeError(
                    f"{self.what} is being written by another process ({holder}); wait for it to "
                    f"finish or stop it. If no such process runs, delete {self.path}."
                ) from None
            # The holder before us may have removed the file between our open and our lock:
            # then we hold a lock on a file nobody else sees; start over.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_holder(fd)
        if previous:
            warnings.warn(
                f"{self.what} was left locked by {previous}, which no longer holds it (killed?); "
                "taking it over.", RuntimeWarning, stacklevel=3,
            )
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info: Any) -> None:
        self.release()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Raises:
        OSError: if the write fails (a full disk): the temporary file is removed, ``path`` is
            unchanged, and the message names the file and its size.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise OSError(
            error.errno or errno.EIO,
            f"could not write {path} ({len(data):,} bytes): {reason}. Nothing that had finished is lost: "
            "the file is as it was, and a run resumes from its last finished level once the cause is fixed.",
        ) from error


def _lock_file(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 256).decode(errors="replace").strip()


def json_bytes(value: Any) -> bytes:
    """``value`` as strict, indented JSON: NaN and infinity are not JSON, so they become null."""
    return json.dumps(_finite(value), indent=2, allow_nan=False).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def torch_bytes(payload: Any) -> bytes:
    # Serialized in memory first: a full disk then fails as a plain write of known size, not
    # deep inside torch's zip writer.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def read_json(path: Path, what: str, hint: str) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RunDirectoryError(f"{path} is missing; {hint}.") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise RunDirectoryError(f"{path} is not readable as {what} ({reason(error)}); {hint}.") from error


def read_torch(path: Path, what: str, hint: str) -> Any:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RunDirectoryError(f"{path} is missing; {hint}.") from None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds on a damaged file
        raise RunDirectoryError(
            f"{path} is not readable as {what} (truncated, or not written by lth_prune: {reason(error)}); {hint}."
        ) from error


def tensor_dict(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(item, Tensor) for item in value.values())


def reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
