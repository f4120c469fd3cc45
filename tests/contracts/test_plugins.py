"""Entries registered outside the package (a plugin, docs/examples/my_extensions.py): a model, a
data set, a method, a branch and a rewind mode run through ``lth_prune.imp.run`` and ``lth-prune
run --plugin``, show in ``--help``, tables and figures, and survive ``--resume``, ``report`` and
``compare`` in processes that were never told about the plugin."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lth_prune import cli, imp, report
from lth_prune.criteria import CRITERIA
from lth_prune.data import DATASETS
from lth_prune.imp import ExperimentConfig
from lth_prune.models import MODELS
from lth_prune.registry import load_plugins
from tests.runs import die_at_level, numbers

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = str(ROOT / "docs" / "examples" / "my_extensions.py")
FAST = dict(dataset="stripes", rounds=2, iterations=12, eval_every=6, plugins=(PLUGIN,))
# One run per kind of entry: the model, data set, method and branch together; the rewind mode
# needs IMP, the only method that rewinds.
SEARCH_RUN = dict(model="tiny-mlp", method="iterative-snip", controls=("signed_reinit",))
REWIND_RUN = dict(rewind="lr-half", controls=())


@pytest.fixture(autouse=True, scope="module")
def _registries_as_they_were():
    """The registries are global: the plugin's entries must not reach the other test modules
    (their doctests and tests list the built-in entries), so they are removed afterwards, and
    the plugin's module with them, so that a later import registers them again."""
    registries = (MODELS, DATASETS, CRITERIA, imp.METHODS, imp.BRANCHES, imp.REWIND_POLICIES)
    saved = [dict(registry._entries) for registry in registries]
    yield
    for registry, entries in zip(registries, saved):
        registry._entries = entries
    for name in [name for name in sys.modules if name.startswith("lth_prune_plugin_my_extensions")]:
        del sys.modules[name]


def _lth_prune(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lth-prune`` in a fresh process, which has imported no plugin."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "lth_prune", *arguments], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


def test_the_plugin_registers_one_entry_of_each_kind():
    # Once per process, however its path is spelt: a second import would register twice.
    first, again = load_plugins([PLUGIN, os.path.relpath(PLUGIN)])
    assert first is again
    assert "tiny-mlp" in MODELS and "stripes" in DATASETS
    assert "iterative-snip" in imp.METHODS and "signed_reinit" in imp.BRANCHES and "lr-half" in imp.REWIND_POLICIES
    assert imp.METHODS.title("iterative-snip") == "iterative SNIP" and MODELS.title("tiny-mlp") == "Tiny MLP"


@pytest.mark.parametrize("settings", [SEARCH_RUN, REWIND_RUN], ids=["model-data-method-branch", "rewind"])
def test_through_the_python_api_with_titles_in_the_table_and_figures(settings, tmp_path):
    results = imp.run(ExperimentConfig(**FAST, **settings), run_dir=tmp_path / "run", progress=False)
    assert [round(level["weights_remaining"], 2) for level in results.levels] == [1.0, 0.8, 0.64]
    table = report.format_table(results)
    figure = report.accuracy_figure(results).axes[0]
    if settings is SEARCH_RUN:
        assert all(0.0 <= level["signed_reinit_accuracy"] <= 1.0 for level in results.levels[1:])
        assert "signed reinit (%)" in table.splitlines()[0]
        assert figure.get_title().startswith("Tiny MLP on Stripes\niterative SNIP, global pruning")
        assert figure.get_legend_handles_labels()[1][:2] == ["iterative SNIP", "signed reinit"]
    else:
        assert figure.get_title().startswith("LeNet-300-100 on Stripes\niterative layer-wise pruning, half-rate rewinding")
        assert "IMP, half-rate rewinding" in figure.get_legend_handles_labels()[1]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["plugins"] == [PLUGIN]
    assert [path.name for path in report.plot_run(tmp_path / "run")][:2] == ["accuracy.png", "accuracy.svg"]


def test_the_command_line_lists_them_in_help_and_runs_them(tmp_path, capsys):
    assert cli.main(["run", "--plugin", PLUGIN, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in ("tiny-mlp", "stripes", "iterative-snip", "signed_reinit", "lr-half"):
        assert name in text, name
    assert cli.main(["run", "--plugin", PLUGIN, "--model", "tiny-mlp", "--dataset", "stripes", "--method", "iterative-snip",
                     "--controls", "signed_reinit", "--rounds", "1", "--iterations", "6", "--quiet",
                     "--out", str(tmp_path / "run")]) == 0
    assert "signed reinit (%)" in capsys.readouterr().out
    # Without the plugin the names are unknown, and the error says which are known.
    fresh = _lth_prune("run", "--dataset", "stripes", "--rounds", "1", cwd=tmp_path)
    assert fresh.returncode == 2 and "--dataset: invalid choice: 'stripes' (choose from 'digits'" in fresh.stderr
    missing = _lth_prune("run", "--plugin", "no_such_plugin_module", cwd=tmp_path)
    assert missing.returncode == 2 and "plugin 'no_such_plugin_module' must be an importable module" in missing.stderr


def test_a_killed_run_resumes_reports_and_compares_in_processes_never_told_of_the_plugin(tmp_path, monkeypatch):
    config = ExperimentConfig(**FAST, **SEARCH_RUN)
    whole = imp.run(config, run_dir=tmp_path / "whole", progress=False)
    die_at_level(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        imp.run(config, run_dir=tmp_path / "killed", progress=False)
    monkeypatch.undo()
    resumed = _lth_prune("run", "--out", str(tmp_path / "killed"), "--resume", "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert numbers(imp.Results.load(tmp_path / "killed")) == numbers(whole)
    shown = _lth_prune("report", str(tmp_path / "killed"), "--plots", cwd=tmp_path)
    assert shown.returncode == 0 and "signed reinit (%)" in shown.stdout, shown.stderr
    imp.run(ExperimentConfig(**FAST, **REWIND_RUN), run_dir=tmp_path / "rewind", progress=False)
    compared = _lth_prune("compare", str(tmp_path / "killed"), str(tmp_path / "rewind"), "--out", str(tmp_path / "cmp"),
                          cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "signed reinit" in compared.stdout


def test_workers_import_the_plugin_too(tmp_path):
    # Seeds in spawned worker processes: each rebuilds the settings, which import the plugin.
    results = imp.run(ExperimentConfig(**{**FAST, "rounds": 1, "seeds": (0, 1), "jobs": 2}, **SEARCH_RUN),
                      run_dir=tmp_path / "run", progress=False)
    assert [seed["seed"] for seed in results.levels[1]["seeds"]] == [0, 1]


def test_a_plugin_that_cannot_be_imported_is_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match=r"ExperimentConfig: plugin .*absent\.py' must be an existing \.py file"):
        ExperimentConfig(plugins=(str(tmp_path / "absent.py"),))
    with pytest.raises(TypeError, match=r"ExperimentConfig: plugins must hold module names or \.py paths, got 3"):
        ExperimentConfig(plugins=(3,))
    assert ExperimentConfig(plugins=(PLUGIN,)).run_name() == ExperimentConfig().run_name()  # how, not what


@pytest.mark.extra("sweep")
def test_sweep_jobs_import_the_plugin_in_their_own_processes(tmp_path):
    from lth_prune.studies.sweep import sweep

    base = ExperimentConfig(**{**FAST, "rounds": 1}, **SEARCH_RUN)
    runs = sweep(base, {"lr": [1e-3, 2e-3]}, sweep_dir=tmp_path, executor="local", timeout_min=10)
    assert [run.results.config.method for run in runs] == ["iterative-snip"] * 2
    assert all(run.results.levels[1]["signed_reinit_accuracy"] is not None for run in runs)
