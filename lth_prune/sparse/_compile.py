"""Build a C source next to this file into a shared library on first use, and cache it.

The one home of what lth_prune's compiled loops share (the mask loop of ``_native.c``, the
direct sparse convolution of ``_direct_conv.c``): the switch that turns them off, the compiler,
the cache directory, the file name that keys a build by everything it depends on, and a build
that tries flag sets in order and is renamed into place only when one succeeds.

* ``LTH_PRUNE_NATIVE=0`` turns every compiled loop off (:func:`native_enabled`).
* The compiler is ``$CC``, else ``cc``, else ``gcc`` (:func:`find_compiler`); without one, or
  when the build fails, :func:`compiled` warns once (one line, a ``RuntimeWarning``, saying what
  runs instead) and its callers use their torch fallbacks.
* Libraries are cached under ``$LTH_PRUNE_CACHE``, else ``$XDG_CACHE_HOME/lth_prune``, else
  ``~/.cache/lth_prune`` (:func:`cache_dir`), named ``<stem>-<hash>.so`` by a hash of the source,
  the compiler, the platform and the flag sets (:func:`library_path`), so that editing any of
  them builds anew and nothing else does.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Sequence

__all__ = [
    "BUILD_ERRORS",
    "build",
    "cache_dir",
    "compiled",
    "find_compiler",
    "library_path",
    "load_library",
    "native_enabled",
]

# What a failed build or load raises: a compiler that fails or cannot run, one that hangs, a
# library the loader rejects.
BUILD_ERRORS = (OSError, RuntimeError, subprocess.SubprocessError)
_BUILD_TIMEOUT_S = 120


def native_enabled() -> bool:
    """Whether compiled loops may be used: not when ``LTH_PRUNE_NATIVE=0`` is set."""
    return os.environ.get("LTH_PRUNE_NATIVE", "1").strip() != "0"


def find_compiler() -> str | None:
    """The C compiler to build with: ``$CC``, else ``cc`` or ``gcc`` on the path, else ``None``."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def cache_dir() -> Path:
    """The directory built libraries are cached in (created if missing)."""
    configured = os.environ.get("LTH_PRUNE_CACHE")
    if configured:
        directory = Path(configured)
    else:
        directory = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lth_prune"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def library_path(stem: str, source: Path, compiler: str, flag_sets: Sequence[Sequence[str]]) -> Path:
    """Where the library built from ``source`` with ``compiler`` and ``flag_sets`` is cached.

    Args:
        stem: the start of the file name, e.g. ``"native"``.
        source: the C source file.
        compiler: the compiler command.
        flag_sets: the flag sets :func:`build` tries, in order.

    Returns:
        ``cache_dir() / f"{stem}-{hash}.so"``.
    """
    key = hashlib.sha256(b"\0".join([
        source.read_bytes(), compiler.encode(), platform.machine().encode(), sys.platform.encode(),
        repr(tuple(tuple(flags) for flags in flag_sets)).encode(),
    ])).hexdigest()[:16]
    return cache_dir() / f"{stem}-{key}.so"


def build(compiler: str, source: Path, path: Path, flag_sets: Sequence[Sequence[str]]) -> None:
    """Compile ``source`` into the shared library ``path`` with the first flag set that works.

    Built under a name of this process and renamed into place: processes building at once
    (data-parallel workers) never load a half-written library.

    Raises:
        RuntimeError: if every flag set fails; the message holds each command and the end of
            its error output.
        subprocess.SubprocessError: if the compiler hangs past its time limit.
        OSError: if the compiler cannot be run.
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    errors = []
    try:
        for flags in flag_sets:
            command = [compiler, *flags, "-shared", "-fPIC", str(source), "-o", str(partial)]
            result = subprocess.run(command, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S)
            if result.returncode == 0:
                os.replace(partial, path)
                return
            errors.append(f"{' '.join(command)}: {result.stderr.strip()[-300:]}")
    finally:
        partial.unlink(missing_ok=True)
    raise RuntimeError("; ".join(errors))


def load_library(
    stem: str, source: Path, compiler: str, flag_sets: Sequence[Sequence[str]]
) -> ctypes.CDLL:
    """The library built from ``source``: loaded from the cache, built first if it is not there.

    Args:
        stem: the start of the cached file's name.
        source: the C source file.
        compiler: the compiler command (see :func:`find_compiler`).
        flag_sets: flag sets to try in order (see :func:`build`).

    Raises:
        One of :data:`BUILD_ERRORS` if the library can be neither built nor loaded.
    """
    path = library_path(stem, source, compiler, flag_sets)
    if not path.exists():
        build(compiler, source, path, flag_sets)
    return ctypes.CDLL(str(path))


def compiled(stem: str, source: Path, flag_sets: Sequence[Sequence[str]], fallback: str) -> ctypes.CDLL | None:
    """The library built from ``source``, or ``None`` where compiled loops cannot be used.

    ``None`` without a word when ``LTH_PRUNE_NATIVE=0`` is set; with one ``RuntimeWarning``
    when there is no compiler or the build fails, saying what runs instead. Callers cache the
    result, so a process warns once per library.

    Args:
        stem: the start of the cached file's name.
        source: the C source file.
        flag_sets: flag sets to try in order (see :func:`build`).
        fallback: what the caller does instead, for the warning ("sparse convolutions multiply
            unfolded patches").
    """
    if not native_enabled():
        return None
    compiler = find_compiler()
    if not compiler:
        problem = "found no C compiler ($CC, cc or gcc)"
    else:
        try:
            return load_library(stem, source, compiler, flag_sets)
        except BUILD_ERRORS as error:
            problem = f"could not build {source.name} ({error})"
    warnings.warn(
        f"lth_prune {problem}; {fallback}. Install a C compiler or set CC to build it, or set "
        "LTH_PRUNE_NATIVE=0 to skip the build.",
        RuntimeWarning,
        stacklevel=3,
    )
    return None
