"""Options shared by the tests and the benchmarks: ``--device cuda`` runs the device-dependent
tests (``pytest --device cuda``) and the benchmarks (``pytest benchmarks --device cuda``) on a GPU."""
from __future__ import annotations

import os

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device", default="cpu",
        help="torch device to run the device-dependent tests and the benchmarks on, e.g. cpu, cuda, "
        "cuda:1 (default: cpu)",
    )


def pytest_configure(config: pytest.Config) -> None:
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


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """The ``--device`` to run on."""
    return torch.device(pytestconfig.getoption("device"))
