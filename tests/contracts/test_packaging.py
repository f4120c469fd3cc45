"""The wheel users install: what it ships, its metadata and its command, built from this checkout.

CI also installs that wheel into a fresh virtual environment and runs it from outside the
checkout (``.ci/installed_wheel``); this test checks the wheel's contents, which is what can go
wrong without anyone noticing in an editable install.
"""
from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

import lth_prune

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lth_prune"


# What never goes into a source tree's copy: environments, build leftovers, caches.
_NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "_build", ".pytest_cache",
               ".hypothesis", ".benchmarks", "runs", "gpu_check")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools (the dev extra installs it)")
    # Built from a copy: setuptools reuses the tree's build/ directory, where a module deleted
    # since the last build would still lie and be shipped.
    source = tmp_path_factory.mktemp("source") / "lth_prune"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    out = tmp_path_factory.mktemp("dist")
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    built = list(out.glob("lth_prune-*.whl"))
    assert len(built) == 1, built
    with zipfile.ZipFile(built[0]) as archive:
        yield archive


def _metadata(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [entry for entry in wheel.namelist() if entry.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def test_the_wheel_ships_every_module_and_data_file_of_the_package(wheel):
    shipped = {name for name in wheel.namelist() if name.startswith("lth_prune/")}
    in_checkout = {
        path.relative_to(ROOT).as_posix() for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".c", ".typed")
    }
    assert shipped == in_checkout, f"missing: {sorted(in_checkout - shipped)}, extra: {sorted(shipped - in_checkout)}"
    # The C sources are built on the user's machine, from the installed files.
    assert {"lth_prune/sparse/_native.c", "lth_prune/sparse/_direct_conv.c", "lth_prune/py.typed"} <= shipped
    assert not [name for name in shipped if "__pycache__" in name or name.endswith((".pyc", ".so"))]


def test_the_wheel_holds_the_package_and_nothing_else(wheel):
    tops = {name.split("/")[0] for name in wheel.namelist()}
    assert tops == {"lth_prune", f"lth_prune-{lth_prune.__version__}.dist-info"}, tops


def test_the_metadata_names_the_version_the_requirements_and_the_extras(wheel):
    metadata = email.message_from_string(_metadata(wheel, "METADATA"))
    assert metadata["Name"] == "lth_prune" and metadata["Version"] == lth_prune.__version__
    requires = metadata.get_all("Requires-Dist")
    for requirement in ("torch>=2.1", "torchvision>=0.16"):
        assert requirement in requires, requires
    assert set(metadata.get_all("Provides-Extra")) == {"dev", "docs", "lightning", "sweep", "tensorboard", "timm"}
    # The README is the project page.
    assert "make test" in metadata.get_payload()


def test_the_wheel_installs_the_command(wheel):
    entry_points = _metadata(wheel, "entry_points.txt")
    assert "[console_scripts]" in entry_points and "lth-prune = lth_prune.cli:main" in entry_points


def test_the_version_is_one_string_everywhere(capsys):
    from lth_prune import cli

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lth-prune {lth_prune.__version__}"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {lth_prune.__version__} " in changelog, "the CHANGELOG has no entry for this version"
