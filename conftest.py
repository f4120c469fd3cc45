"""Options and markers shared by the tests and the benchmarks.

``--device cuda`` runs the device-dependent tests (``pytest --device cuda``) and the benchmarks
(``pytest benchmarks --device cuda``) on a GPU.

The optional extras (``setup.cfg``'s ``extras_require`` other than ``dev`` and ``docs``) are
never needed to run the suite: a test that needs one is marked ``@pytest.mark.extra("timm")``
and is skipped, with the reason and the install command, where the extra is missing; a module
of the package that imports an extra when it is imported (:data:`NEEDS_EXTRA`) has its
doctests skipped the same way instead of failing the collection. ``pytest -m extra`` runs only
what needs an extra, which CI does once the extras are installed.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import Iterable

import pytest
import torch

ROOT = Path(__file__).resolve().parent
# Each optional extra, and the top-level module it installs.
EXTRAS = {"lightning": "lightning", "sweep": "submitit", "tensorboard": "tensorboard", "timm": "timm"}
# Modules of the package that import an extra when they are imported, relative to the root.
NEEDS_EXTRA = {"lth_prune/integrations/lightning.py": "lightning"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device", default="cpu",
        help="torch device to run the device-dependent tests and the benchmarks on, e.g. cpu, cuda, "
        "cuda:1 (default: cpu)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "extra(*names): the test needs these optional extras (" + ", ".join(sorted(EXTRAS)) + "); "
        "it is skipped where one is not installed",
    )
    chosen = config.getoption("device")
    try:
        device = torch.device(chosen)
    except RuntimeError:
        raise pytest.UsageError(f"--device must be a torch device such as cpu or cuda, got {chosen!r}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device is {device}, but CUDA is not available here.")
    if device.type == "cpu" and not torch.cuda.is_initialized():
        # On the CPU run, a GPU must not be picked up by code that chooses a device itself
        # (ExperimentConfig's device="auto"): the default run is the CPU run everywhere.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


@functools.cache
def extra_installed(extra: str) -> bool:
    """Whether the optional extra ``extra`` is importable here (found, not imported: fast)."""
    try:
        return importlib.util.find_spec(EXTRAS[extra]) is not None
    except ImportError:  # a finder that refuses the name, as a fresh machine's would
        return False


def _missing_reason(extras: Iterable[str]) -> str | None:
    missing = [extra for extra in extras if not extra_installed(extra)]
    if not missing:
        return None
    names = ",".join(missing)
    return f"needs the optional extra{'s' if len(missing) > 1 else ''} {names!r}: pip install -e '.[{names}]'"


class _NeedsExtra(pytest.File):
    """Stands in for a package module whose import needs a missing extra: one skip, not an error."""

    reason = ""

    def collect(self) -> Iterable[pytest.Item]:
        pytest.skip(self.reason)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> list[pytest.Collector]:
    collectors = yield
    extra = NEEDS_EXTRA.get(file_path.resolve().relative_to(ROOT).as_posix()) if file_path.is_relative_to(ROOT) else None
    reason = None if extra is None else _missing_reason([extra])
    if reason is None or not collectors:
        return collectors
    stand_in = _NeedsExtra.from_parent(parent, path=file_path)
    stand_in.reason = f"the doctests of {file_path.relative_to(ROOT).as_posix()}: {reason}"
    return [stand_in]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        extra = NEEDS_EXTRA.get(item.path.relative_to(ROOT).as_posix()) if item.path.is_relative_to(ROOT) else None
        if extra is not None:
            item.add_marker(pytest.mark.extra(extra))
        needed = []
        for marker in item.iter_markers("extra"):
            unknown = [name for name in marker.args if name not in EXTRAS]
            if unknown or not marker.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.extra takes names of optional extras {sorted(EXTRAS)}, "
                    f"got {list(marker.args)}."
                )
            needed += marker.args
        reason = _missing_reason(needed) if needed else None
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """The ``--device`` to run on."""
    return torch.device(pytestconfig.getoption("device"))


@pytest.fixture(scope="session")
def optional_extras() -> tuple[dict[str, str], dict[str, str]]:
    """:data:`EXTRAS` and :data:`NEEDS_EXTRA`, for the structure test that keeps them true."""
    return dict(EXTRAS), dict(NEEDS_EXTRA)
