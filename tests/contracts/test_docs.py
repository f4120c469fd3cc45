"""The documentation covers the public API, and its command-line reference is the parser's own."""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import lth_prune
from lth_prune import cli

DOCS = Path(__file__).resolve().parents[2] / "docs"
API_PAGE = DOCS / "api.rst"
# Every module whose __all__ is public API, documented on the API page. Implementation modules
# (lth_prune.methods, lth_prune.rewind, ...) are covered through lth_prune's re-exports.
PUBLIC_MODULES = (
    "lth_prune",
    "lth_prune.registry",
    "lth_prune.layers",
    "lth_prune.models",
    "lth_prune.data",
    "lth_prune.training",
    "lth_prune.criteria",
    "lth_prune.sparse",
    "lth_prune.sparse.kernels",
    "lth_prune.distributed",
    "lth_prune.imp",
    "lth_prune.imp.branches",
    "lth_prune.imp.rewinding",
    "lth_prune.imp.searches",
    "lth_prune.imp.store",
    "lth_prune.imp.transfer",
    "lth_prune.execution",
    "lth_prune.studies",
    "lth_prune.studies.stability",
    "lth_prune.studies.sweep",
    "lth_prune.analysis",
    "lth_prune.report",
    "lth_prune.report.anatomy",
    "lth_prune.report.stability",
    "lth_prune.report.compare",
    "lth_prune.cli",
    "lth_prune.integrations",
    "lth_prune.integrations.lightning",
)
# Public modules that need an optional extra (the docs build documents them either way).
OPTIONAL = {"lth_prune.integrations.lightning": "lightning"}
# Directives that document one object under the current module.
_OBJECT_DIRECTIVES = ("autodata", "data", "autoclass", "autofunction", "class", "function")


def _documented_names(text: str) -> set[str]:
    """Fully qualified names the API page documents: autosummary entries, object directives
    and automodule targets, each resolved against the ``currentmodule`` in force."""
    documented: set[str] = set()
    current = ""
    in_autosummary = False
    for line in text.splitlines():
        directive = re.match(r"^\.\. ([\w:-]+)::\s*(\S*)", line)
        if directive:
            kind, argument = directive.group(1).removeprefix("py:"), directive.group(2)
            in_autosummary = kind == "autosummary"
            if kind in ("currentmodule", "module"):
                current = argument
            elif kind == "automodule":
                documented.add(argument)
            elif kind in _OBJECT_DIRECTIVES and argument:
                documented.add(argument if "." in argument else f"{current}.{argument}")
            continue
        if in_autosummary:
            entry = re.match(r"^ {3}~?([\w.]+)\s*$", line)
            if entry:
                documented.add(f"{current}.{entry.group(1)}")
            elif line.strip() and not line.startswith(" "):
                in_autosummary = False
    return documented


@pytest.mark.parametrize("module_name", [
    pytest.param(name, marks=[pytest.mark.extra(OPTIONAL[name])] if name in OPTIONAL else []) for name in PUBLIC_MODULES
])
def test_every_public_name_is_on_the_api_page(module_name):
    module = importlib.import_module(module_name)
    documented = _documented_names(API_PAGE.read_text())
    missing = []
    for name in module.__all__:
        target = getattr(module, name)
        qualified = target.__name__ if isinstance(target, ModuleType) else f"{module_name}.{name}"
        if qualified not in documented:
            missing.append(name)
    assert missing == [], f"{module_name}.__all__ names missing from docs/api.rst: {missing}"


def test_every_subpackage_is_a_documented_public_module():
    subpackages = {
        f"lth_prune.{info.name}"
        for info in pkgutil.iter_modules(lth_prune.__path__)
        if info.ispkg and not info.name.startswith("_")
    }
    assert subpackages - set(PUBLIC_MODULES) == set()


def test_modules_exported_by_lth_prune_are_public_modules():
    exported = {
        getattr(lth_prune, name).__name__
        for name in lth_prune.__all__
        if isinstance(getattr(lth_prune, name), ModuleType)
    }
    assert exported == {"lth_prune.models"}
    assert exported <= set(PUBLIC_MODULES)


def test_the_name_parser_understands_the_page_format():
    text = """
.. currentmodule:: pkg

.. autosummary::
   :toctree: api

   first
   ~second

Prose mentioning third.

.. autodata:: FOURTH

.. automodule:: pkg.sub
"""
    assert _documented_names(text) == {"pkg.first", "pkg.second", "pkg.FOURTH", "pkg.sub"}


def _extension(name: str) -> ModuleType:
    # Loaded from its file: docs/_ext is not a package and is not on the import path.
    spec = importlib.util.spec_from_file_location(name, DOCS / "_ext" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_renders_every_subcommand_from_the_parser(monkeypatch):
    extension = _extension("lth_cli_help")
    pages = extension.render(width=88)
    commands = [command for command, _, _ in pages]
    parser = cli.build_parser()
    subcommands = [name for name, _ in extension.subcommands(parser)]
    assert subcommands == ["run", "report", "transfer", "compare", "stability", "sweep"]
    assert commands == ["lth-prune"] + [f"lth-prune {name}" for name in subcommands]
    texts = {command: text for command, _, text in pages}
    assert texts["lth-prune run"].startswith("usage: lth-prune run ")
    for action in extension.subcommands(parser)[0][1]._actions:
        for flag in action.option_strings:
            assert flag in texts["lth-prune run"], flag
    # The help is wrapped at the requested width, whatever the terminal it is built in.
    monkeypatch.setenv("COLUMNS", "200")
    assert extension.render(width=88) == pages
    assert extension.render(width=60) != pages


def test_markdown_include_converts_the_readme_subset():
    convert = _extension("lth_markdown").convert
    markdown = """# Title

Intro with `code`s and a [link](https://example.org/a_b), **bold**.

## Section

| model | time |
|:------|-----:|
| `conv2` | 1.30 |
note under the table

- item one
  continued
- item_ two

```sh
pytest benchmarks --quick
```

![a figure](figure.png)
"""
    assert convert(markdown, skip_title=True) == [
        "",
        "Intro with ``code``\\ s and a `link <https://example.org/a_b>`__, **bold**.",
        "",
        "Section",
        "-------",
        "",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - model",
        "     - time",
        "   * - ``conv2``",
        "     - 1.30",
        "",
        "note under the table",
        "",
        "- item one",
        "  continued",
        "- item\\_ two",
        "",
        ".. code-block:: console",
        "",
        "   pytest benchmarks --quick",
        "",
        "",
        ".. image:: figure.png",
        "   :alt: a figure",
        "",
    ]


@pytest.mark.parametrize(
    "builder, options",
    [("html", ["-W", "--keep-going"]), ("doctest", [])],
    ids=["html-warnings-as-errors", "doctest-examples"],
)
def test_docs_build(builder, options, tmp_path):
    """The pages build without a warning, and every example on them runs and prints what it shows."""
    pytest.importorskip("sphinx")
    completed = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", builder, "-q", *options, str(DOCS), str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    report = completed.stdout + completed.stderr
    if builder == "doctest" and (tmp_path / "output.txt").is_file():
        report += (tmp_path / "output.txt").read_text()
    assert completed.returncode == 0, report[-6000:]


@pytest.mark.extra("lightning", "tensorboard", "sweep")
def test_the_integration_examples_run_where_their_extras_are_installed(tmp_path):
    """Without the extras the how-to's examples skip themselves; with them, every one runs."""
    page = DOCS / "howto" / "integrations.rst"
    completed = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "doctest", "-q", str(DOCS), str(tmp_path), str(page)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "LTH_PRUNE_DOCS_SKIP_NOTHING": "1"},
    )
    output = (tmp_path / "output.txt").read_text() if (tmp_path / "output.txt").is_file() else ""
    assert completed.returncode == 0, (completed.stdout + completed.stderr + output)[-6000:]
    assert "Document: howto/integrations" in output and " 0 failures in tests" in output, output
