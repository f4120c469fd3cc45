"""Sphinx configuration for the lth_prune documentation.

Build: ``make docs`` (``sphinx-build -W --keep-going -b html docs docs/_build/html``).
Run the examples: ``sphinx-build -b doctest docs docs/_build/doctest``.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# The docs build, and the examples it runs, must never open a window.
os.environ.setdefault("MPLBACKEND", "Agg")

import lth_prune  # noqa: E402  (after the path and backend set-up above)

project = "lth_prune"
author = "the lth_prune maintainers"
copyright = "the lth_prune maintainers"
release = lth_prune.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "lth_cli_help",  # docs/_ext/lth_cli_help.py: the command-line reference, from the parser
    "lth_markdown",  # docs/_ext/lth_markdown.py: benchmarks/README.md included in benchmarks.rst
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_static_path = ["_static"]
root_doc = "index"
nitpicky = False

# -- HTML --------------------------------------------------------------------------------------
# alabaster ships with Sphinx, so the docs build offline with nothing else installed.
html_theme = "alabaster"
html_title = f"lth_prune {release}"
html_theme_options = {
    "description": "Lottery-ticket pruning for PyTorch",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_show_sourcelink = False

# -- API reference -----------------------------------------------------------------------------
autosummary_generate = True
# autosummary writes a page per public name into api/ and never deletes one: a name that left the
# API would keep its page and fail the build with a warning. The pages are generated; start afresh.
shutil.rmtree(DOCS / "api", ignore_errors=True)
autosummary_imported_members = False
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
# The integrations' frameworks are optional extras: where one is not installed, its module is
# documented against a stand-in rather than failing the build.
autodoc_mock_imports = [name for name in ("lightning",) if importlib.util.find_spec(name) is None]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_include_init_with_doc = False
napoleon_use_rtype = False
# PyTorch-style "Shape:" sections (lth_prune.SparseLinear, ...) render as a section, not as text.
napoleon_custom_sections = ["Shape"]
python_use_unqualified_type_names = True

# -- Intersphinx --------------------------------------------------------------------------------
# Off by default: the build must work without a network and must not wait on one. Set
# LTH_DOCS_INTERSPHINX=1 to link Python, PyTorch and NumPy names to their docs; an inventory
# saved as docs/_inventories/<name>.inv is used instead of the network.
_INVENTORIES = {
    "python": "https://docs.python.org/3",
    "torch": "https://pytorch.org/docs/stable",
    "numpy": "https://numpy.org/doc/stable",
}
if os.environ.get("LTH_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        name: (url, str(DOCS / "_inventories" / f"{name}.inv")
               if (DOCS / "_inventories" / f"{name}.inv").is_file() else None)
        for name, url in _INVENTORIES.items()
    }
else:
    intersphinx_mapping = {}
intersphinx_timeout = 10

# -- Doctest -----------------------------------------------------------------------------------
# Only the ``.. doctest::`` and ``.. testcode::`` blocks of the pages run here; the docstrings'
# own examples run under ``pytest --doctest-modules lth_prune``, in their modules' namespaces.
doctest_test_doctest_blocks = ""
# Exception messages are part of what the examples show, so they are compared too.
import doctest as _doctest  # noqa: E402

doctest_default_flags = _doctest.ELLIPSIS | _doctest.DONT_ACCEPT_TRUE_FOR_1
doctest_global_setup = """
import torch
import torch.nn.utils.prune as prune
import lth_prune
from lth_prune import imp
torch.manual_seed(0)
# The examples use tiny models: one thread is faster, and steady on a loaded machine.
torch.set_num_threads(1)
# For the pages' files, and for the examples of optional extras (``:skipif: not has_package(...)``).
import importlib.util, os, pathlib, tempfile
tmp = pathlib.Path(tempfile.mkdtemp())
def has_package(name):
    found = importlib.util.find_spec(name) is not None
    if not found and os.environ.get("LTH_PRUNE_DOCS_SKIP_NOTHING") == "1":
        raise RuntimeError(f"the examples may not be skipped here, but {name} is not installed")
    return found
"""
# The pages' example plugin (docs/examples/my_extensions.py), wherever the docs are built from.
doctest_global_setup += f"EXAMPLES = pathlib.Path({str(DOCS / 'examples')!r})\n"


# -- Hooks -------------------------------------------------------------------------------------
def _drop_builtin_type_docstrings(app, what, name, obj, options, lines):
    """A constant without a ``#:`` comment would show the docstring of its type (``dict``, ...)."""
    type_doc = getattr(type(obj), "__doc__", None)
    if what in ("data", "attribute") and type_doc and type(obj).__module__ == "builtins":
        if " ".join(" ".join(lines).split()) == " ".join(type_doc.split()):
            lines.clear()


def _hide_object_base(app, name, obj, options, bases):
    """``Bases: object`` says nothing; keep the line for real base classes only."""
    if list(bases) == [object]:
        bases.clear()


def _link_reexports(app, env, node, contnode):
    """A name a package re-exports (``lth_prune.sparse.to_sparse``) links to the one page of
    that object, documented under another name (``lth_prune.to_sparse``): no second page."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("lth_prune."):
        return None
    obj = _imported(target)
    if obj is None:
        return None
    domain = env.get_domain("py")
    short = target.rpartition(".")[2]
    for name, entry in domain.objects.items():
        if name != target and not entry.aliased and name.rpartition(".")[2] == short:
            if _imported(name) is obj:
                return domain.resolve_xref(
                    env, node["refdoc"], app.builder, node["reftype"], name, node, contnode
                )
    return None


def _imported(dotted):
    """The object a dotted name reaches from the longest importable module prefix, or None."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part, None)
        return obj
    return None


def setup(app):
    app.connect("autodoc-process-docstring", _drop_builtin_type_docstrings)
    app.connect("autodoc-process-bases", _hide_object_base)
    app.connect("missing-reference", _link_reexports)
