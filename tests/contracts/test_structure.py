"""The package's shape, read from its source: imports run one way, no private name crosses a
module boundary, and only the run store spells out a run directory's layout."""
from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lth_prune"
# Each floor may import its own and the floors below it, never one above.
FLOORS = {"core": 0, "imp": 1, "studies": 2, "analysis": 2, "report": 3, "cli": 4, "__main__": 5}
ABOVE_CORE = ("imp", "studies", "analysis", "report", "cli")
# The file names and folder prefixes of a run directory.
LAYOUT = {"config.json", "results.json", "results.csv", "transfer.json", "record.json", "ticket.pt",
          "trained.pt", "rewind_points", ".lock"}
# A sweep directory's files, which only the sweep module spells out.
SWEEP_LAYOUT = {"sweep.json"}
# "level_" and "seed_" as the literal part of an f-string, or in a pattern (level_(\d+)).
LAYOUT_PARTS = re.compile(r"^(level|seed)_$|(level|seed)_(\d|\(|\\d|\{)")


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, ast.parse(path.read_text(), filename=str(path))))
    return found


def _floor(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else ""
    return FLOORS.get(top, FLOORS["core"])


def _imports(tree: ast.Module, module: str) -> list[tuple[str, list[str]]]:
    """(imported module, names) for every import, relative ones resolved, inside functions too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                base = ".".join([*package, base]) if base else ".".join(package)
            found.append((base, [alias.name for alias in node.names]))
    return found


MODULES = _modules()


@pytest.mark.parametrize(("module", "tree"), MODULES, ids=[name for name, _ in MODULES])
def test_imports_never_run_up_a_floor(module, tree):
    upward = [
        imported for imported, _ in _imports(tree, module)
        if imported.startswith("lth_prune.") and _floor(imported) > _floor(module)
    ]
    assert upward == [], f"{module} imports {upward}, which stand above it"


@pytest.mark.parametrize(("module", "tree"), MODULES, ids=[name for name, _ in MODULES])
def test_no_private_name_crosses_a_module_boundary(module, tree):
    private = [
        f"{imported}.{name}" for imported, names in _imports(tree, module)
        if imported.startswith("lth_prune") for name in names
        # A private module may be imported by its own package (lth_prune.sparse._native).
        if name.startswith("_") and not name.startswith("__")
        and not (name == "_native" and imported == "lth_prune.sparse")
    ]
    assert private == [], f"{module} imports private names {private}"


def _code_strings(tree: ast.Module) -> list[str]:
    """String constants that are not docstrings, and the literal parts of f-strings."""
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.parametrize(("module", "tree"), MODULES, ids=[name for name, _ in MODULES])
def test_only_the_run_store_spells_out_the_run_directory(module, tree):
    if module == "lth_prune.imp.store.rundir":
        return
    # Prose (help texts, messages) may name the files for the reader; code may not build them.
    spelled = [
        text for text in _code_strings(tree)
        if not any(space in text for space in " \n") and (text in LAYOUT or LAYOUT_PARTS.search(text))
    ]
    assert spelled == [], f"{module} spells out the run directory's layout: {spelled}"


@pytest.mark.parametrize(("module", "tree"), MODULES, ids=[name for name, _ in MODULES])
def test_only_the_sweep_spells_out_the_sweep_directory(module, tree):
    if module == "lth_prune.studies.sweep":
        return
    spelled = [text for text in _code_strings(tree) if text in SWEEP_LAYOUT]
    assert spelled == [], f"{module} spells out the sweep directory's layout: {spelled}"


def test_only_the_core_knows_torchs_reparametrisation():
    # lth_prune._reparam is the core's own: everything else asks the public layer API
    # (lth_prune.layers) and the masks' functions (lth_prune.masks).
    importers = sorted(
        module for module, tree in MODULES
        for imported, names in _imports(tree, module)
        if imported == "lth_prune._reparam" or (imported == "lth_prune" and "_reparam" in names)
    )
    outside = [module for module in importers if _floor(module) > 0 or module.startswith("lth_prune.integrations")]
    assert outside == [], f"{outside} import lth_prune._reparam"
    assert "lth_prune.masks" in importers and "lth_prune.layers" in importers  # the check sees them
    for root in ("benchmarks", "docs"):
        users = [str(path.relative_to(ROOT)) for path in (ROOT / root).rglob("*.py") if "_reparam" in path.read_text()]
        assert users == [], f"{users} use lth_prune._reparam"


def test_the_checks_see_the_package():
    names = {name for name, _ in MODULES}
    assert {"lth_prune.imp.store.rundir", "lth_prune.imp.experiment", "lth_prune.report.figures", "lth_prune._reparam"} <= names
    assert _floor("lth_prune.imp.store.rundir") == 1 and _floor("lth_prune.masks") == 0 and _floor("lth_prune") == 0
    assert all(_floor(f"lth_prune.{top}.x") > 0 for top in ABOVE_CORE)
    assert LAYOUT_PARTS.search("level_") and LAYOUT_PARTS.search(r"seed_(\d+)") and not LAYOUT_PARTS.search("seed_overlap")


# -- Optional extras: never needed to collect or run the suite -------------------------------------

def _declared_extras() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return set(parser["options.extras_require"]) - {"dev", "docs"}


def _import_time_imports(tree: ast.Module) -> set[str]:
    """Top-level names of the modules imported when the module itself is imported: its body and
    the branches of its top-level ``if`` statements, not functions, classes or ``try`` blocks."""
    found: set[str] = set()
    statements = list(tree.body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.If):
            statements += node.body + node.orelse
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_conftest_knows_every_optional_extra(optional_extras):
    extras, _ = optional_extras
    assert set(extras) == _declared_extras()


def test_a_package_module_that_imports_an_extra_is_declared_so_its_doctests_skip(optional_extras):
    extras, needs_extra = optional_extras
    modules = {top: extra for extra, top in extras.items()}
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        imported = _import_time_imports(ast.parse(path.read_text(), filename=str(path))) & set(modules)
        found.update({path.relative_to(ROOT).as_posix(): modules[top] for top in imported})
    assert found == needs_extra


def test_tests_ask_for_an_extra_with_the_marker_not_an_import(optional_extras):
    # @pytest.mark.extra skips with the install command where the extra is missing, and lets
    # CI run exactly these tests once the extras are installed (pytest -m extra).
    modules = set(optional_extras[0].values())
    offending = []
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]):
        text = path.read_text()
        tree = ast.parse(text, filename=str(path))
        offending += [f"{path.name}: imports {top}" for top in _import_time_imports(tree) & modules]
        offending += [f"{path.name}: {match}" for match in re.findall(r"importorskip\(\s*['\"](\w+)", text) if match in modules]
    assert offending == []


def test_tests_mirror_the_package():
    # lth_prune/<module>.py -> tests/test_<module>.py; lth_prune/<package>/ -> tests/<package>/;
    # the suites that cross every module (bad input, faults, structure, API surface, docs) sit
    # in tests/contracts/.
    tests = ROOT / "tests"
    missing = []
    for path in sorted(PACKAGE.iterdir()):
        if path.is_dir() and (path / "__init__.py").is_file():
            if not list((tests / path.name).glob("test_*.py")):
                missing.append(f"tests/{path.name}/test_*.py")
        elif path.suffix == ".py" and path.name not in ("__init__.py", "__main__.py"):
            if not (tests / f"test_{path.stem.lstrip('_')}.py").is_file():
                missing.append(f"tests/test_{path.stem.lstrip('_')}.py")
    assert missing == [], f"package modules or folders without their tests: {missing}"
    assert {"test_bad_input.py", "test_faults.py", "test_structure.py", "test_api.py", "test_docs.py"} <= {
        path.name for path in (tests / "contracts").glob("test_*.py")}
