"""Tests for the lth-prune command line (lth_prune.cli), called in-process through main()."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lth_prune import cli, report
from lth_prune.imp import ExperimentConfig, Results

FAST = ["--dataset", "synthetic", "--rounds", "1", "--epochs", "1", "--controls", "none", "--quiet"]
FIGURES = ["accuracy.png", "accuracy.svg", "early_stop.png", "early_stop.svg"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """One tiny end-to-end run shared by the tests that only read it: (run dir, exit code, stdout)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["run", *FAST, "--out", str(out)])
    return out, code, stdout.getvalue()


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("imp.run() must not be called")

    monkeypatch.setattr(cli.imp, "run", refuse)


def _print_config(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert cli.main(["run", *argv, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


def test_run_end_to_end_writes_results_and_prints_the_table(finished_run):
    out, code, stdout = finished_run
    assert code == 0
    for name in ["config.json", "results.json", "results.csv", *FIGURES]:
        assert (out / name).is_file(), name
    results = Results.load(out)
    assert [level["level"] for level in results.levels] == [0, 1]
    assert results.config.dataset == "synthetic" and results.config.controls == ()
    table = report.format_table(results)
    assert stdout.startswith(table + "\n")
    assert "random reinit" not in table
    assert f"results: {out / 'results.json'}, {out / 'results.csv'}" in stdout
    assert "figures: " + ", ".join(str(out / name) for name in FIGURES) in stdout


def test_report_prints_the_same_table(finished_run, capsys):
    out, _, _ = finished_run
    assert cli.main(["report", str(out)]) == 0
    assert capsys.readouterr().out == report.format_table(Results.load(out)) + "\n"
    assert cli.main(["report", str(out), "--tablefmt", "plain"]) == 0
    assert "|" not in capsys.readouterr().out


def test_report_plots_redraws_the_figures(finished_run, tmp_path, capsys):
    out, _, _ = finished_run
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.json").write_text((out / "results.json").read_text())
    assert cli.main(["report", str(copy), "--plots"]) == 0
    assert sorted(path.name for path in report.figure_paths(copy)) == sorted(FIGURES)
    assert "figures: " in capsys.readouterr().out


def test_report_without_results_exits_1(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("lth-prune: error: ") and str(tmp_path) in error and "results.json" in error


def test_second_run_into_the_same_directory_needs_resume(finished_run, capsys, monkeypatch):
    monkeypatch.setattr("lth_prune.imp.phases.train", lambda *args, **kwargs: pytest.fail("nothing may be trained"))
    out, _, _ = finished_run
    before = (out / "results.json").read_text()
    assert cli.main(["run", *FAST, "--out", str(out)]) == 2
    assert f"{out}' already holds a run; pass resume=True (--resume)" in capsys.readouterr().err
    assert (out / "results.json").read_text() == before


def test_resume_starts_from_the_saved_settings(finished_run, monkeypatch):
    out, _, _ = finished_run
    calls = []

    def record(config, **kwargs):
        calls.append((config, kwargs))
        return Results.load(out)

    monkeypatch.setattr(cli.imp, "run", record)
    assert cli.main(["run", "--out", str(out), "--resume", "--quiet"]) == 0
    assert cli.main(["run", "--out", str(out), "--resume", "--quiet", "--device", "cpu"]) == 0
    (first, kwargs), (second, _) = calls
    assert first == Results.load(out).config  # no flags: exactly the settings it started with
    assert kwargs == {"run_dir": out, "resume": True, "progress": False}
    assert second == first.replace(device="cpu")


def test_resume_of_a_finished_run_prints_the_same_table(finished_run, capsys):
    out, _, stdout = finished_run
    assert cli.main(["run", *FAST, "--out", str(out), "--resume"]) == 0
    table = report.format_table(Results.load(out))
    assert capsys.readouterr().out.startswith(table + "\n")
    assert table.splitlines()[2:] == stdout.splitlines()[2:4]


def test_default_out_is_runs_slash_run_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", *FAST]) == 0
    name = ExperimentConfig(dataset="synthetic", rounds=1, epochs=1.0, controls=()).run_name()
    assert (tmp_path / "runs" / name / "results.json").is_file()
    assert f"runs/{name}/results.json" in capsys.readouterr().out


def test_preset_then_explicit_flags_override_it(capsys):
    config = _print_config(["--preset", "network-cifar10", "--pruning", "layerwise", "--seeds", "1", "2"], capsys)
    assert config["model"] == "network" and config["optimizer"] == "sgd" and config["lr"] == 0.008
    assert config["pruning"] == "layerwise" and config["seeds"] == [1, 2]
    assert config["controls"] == ["random_reinit", "random_pruning"]
    assert _print_config(["--preset", "network-cifar10", "--controls", "none"], capsys)["controls"] == []


def test_epochs_overrides_a_presets_iterations(capsys):
    assert _print_config(["--preset", "lenet-mnist"], capsys)["iterations"] == 50_000
    config = _print_config(["--preset", "lenet-mnist", "--epochs", "2"], capsys)
    assert config["iterations"] is None and config["epochs"] == 2.0
    both = _print_config(["--preset", "lenet-mnist", "--epochs", "2", "--iterations", "300"], capsys)
    assert both["iterations"] == 300


def test_values_are_converted_by_field_type(capsys):
    config = _print_config(
        ["--model", "Conv-2", "--val-size", "5000", "--lr", "3e-4", "--output-rate", "none",
         "--one-shot", "--no-augment", "--exclude", "features.0", "classifier.4"], capsys,
    )
    assert config["model"] == "conv2"
    assert config["val_size"] == 5000 and isinstance(config["val_size"], int)
    assert config["lr"] == 3e-4 and config["output_rate"] is None
    assert config["one_shot"] is True and config["augment"] is False
    assert config["exclude"] == ["features.0", "classifier.4"]
    assert _print_config(["--val-size", "0.2"], capsys)["val_size"] == 0.2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "1.5"], "rate must be >= 0.0 and < 1.0, got 1.5."),
        (["--rewind", "step"], "rewind_step must be >= 1 when rewind='step', got 0."),
        (["--seeds", "0", "0"], "seeds must be distinct, got [0, 0]."),
        (["--device", "tpu"], "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'."),
        (["--model", "resnet50"], "model must be one of ['network', 'conv2', 'conv4'"),
        (["--batch-size", "big"], "argument --batch-size: invalid int value: 'big'"),
        (["--controls", "none", "random_reinit"], "none cannot be combined with other values"),
        (["--preset", "lenet-imagenet"], "invalid choice: 'lenet-imagenet'"),
    ],
)
def test_invalid_settings_exit_2_before_anything_runs(argv, message, tmp_path, capsys, no_training):
    out = tmp_path / "run"
    assert cli.main(["run", *argv, "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "lth-prune" in error
    assert not out.exists()


def test_a_wrong_layer_name_exits_2_before_any_training(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("nothing may be trained")

    monkeypatch.setattr("lth_prune.imp.phases.train", refuse)
    out = tmp_path / "run"
    assert cli.main(["run", *FAST, "--exclude", "fc9", "--out", str(out)]) == 2
    assert "exclude names a module that is not in the model, got 'fc9'" in capsys.readouterr().err
    assert not out.exists()
    assert cli.main(["run", *FAST, "--rate", "nan", "--out", str(out)]) == 2
    assert "rate must be a finite number, got nan" in capsys.readouterr().err
    assert not out.exists()


def test_resume_of_a_directory_without_a_run_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lth_prune.imp.phases.train", lambda *args, **kwargs: pytest.fail("nothing may be trained"))
    out = tmp_path / "typo"
    assert cli.main(["run", *FAST, "--out", str(out), "--resume"]) == 2
    assert "which holds none" in capsys.readouterr().err
    assert not out.exists()


def test_a_busy_run_directory_exits_1(tmp_path, capsys):
    from lth_prune.imp.store import RunStore

    out = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time\nfrom lth_prune.imp.store import RunStore\n"
         f"with RunStore({str(out)!r}).lock():\n    print('locked', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert cli.main(["run", *FAST, "--out", str(out)]) == 1
        assert f"is being written by another process (pid {holder.pid} on " in capsys.readouterr().err
        assert not RunStore(out).holds_run()
    finally:
        holder.kill()
        holder.wait()


def test_unknown_model_message_names_the_valid_ones(capsys, no_training):
    assert cli.main(["run", "--model", "alexnet"]) == 2
    error = capsys.readouterr().err
    assert all(name in error for name in ("conv2", "lenet300_100", "network", "resnet20", "vgg16"))


def test_usage_errors_exit_2(capsys):
    assert cli.main(["run", "--no-such-flag"]) == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    assert cli.main(["train"]) == 2
    assert "invalid choice: 'train'" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert "usage: lth-prune" in capsys.readouterr().err


def test_missing_data_set_exits_1_and_says_where_it_looked(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = cli.main(["run", "--dataset", "mnist", "--data-dir", str(empty), "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("lth-prune: error: ")
    assert "'mnist' was not found" in error and str(empty) in error


def test_every_config_field_has_a_documented_flag():
    run = next(action for action in cli.build_parser()._actions if action.dest == "command").choices["run"]
    by_dest = {action.dest: action for action in run._actions}
    for field in dataclasses.fields(ExperimentConfig):
        action = by_dest[field.name]
        if field.name == "plugins":  # --plugin MODULE, once per module: imported before parsing
            assert action.option_strings == ["--plugin"] and action.default == "==SUPPRESS=="
            continue
        assert action.option_strings[0] == "--" + field.name.replace("_", "-")
        assert action.default is None or action.default == "==SUPPRESS==", field.name
        assert not action.help.startswith(" (default"), f"{field.name} has no description in the docstring"
        assert "(default: " in action.help and "``" not in action.help and ":func:" not in action.help
    assert "lth_prune.models.MODELS" in by_dest["model"].help
    assert by_dest["rewind_step"].help.startswith("the optimizer step rewound to when --rewind step.")
    assert list(by_dest["optimizer"].choices) == ["sgd", "adam", "adamw"]


def test_help_shows_examples_and_defaults(capsys):
    assert cli.main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    for example in ("--preset lenet-mnist", "--preset conv2-cifar10 --data-dir ~/data",
                    "--preset network-cifar10", "--resume"):
        assert example in text
    words = " ".join(text.split())  # help is wrapped to the terminal's width
    assert "--rate X fraction of remaining weights pruned per round" in words and "(default: 0.2)" in words
    assert cli.main(["--help"]) == 0
    assert "lth-prune run --preset lenet-mnist" in capsys.readouterr().out


def test_python_dash_m_lth_prune_help():
    completed = subprocess.run(
        [sys.executable, "-m", "lth_prune", "--help"], capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: lth-prune")
    assert "examples:" in completed.stdout


def test_transfer_end_to_end_prints_the_table_and_writes_a_run_directory(finished_run, tmp_path, capsys):
    source, _, _ = finished_run
    target = tmp_path / "to-digits"
    argv = ["transfer", "--ticket", str(source), "--dataset", "digits", "--iterations", "5", "--quiet", "--out", str(target)]
    assert cli.main(argv) == 0
    stdout = capsys.readouterr().out
    results = Results.load(target)
    assert stdout.startswith(report.format_table(results) + "\n")
    assert "random reinit (%)" in stdout and "random pruning (%)" in stdout
    assert "output layer: new (fresh initialization" in stdout  # 4 synthetic classes, 10 digits
    assert f"lth-prune compare {source} {target}" in stdout
    assert results.config.dataset == "digits" and results.config.controls == ("random_reinit", "random_pruning")
    transfer = json.loads((target / "transfer.json").read_text())
    assert transfer["levels"] == [0, 1] and transfer["output_layer"] == "new"
    assert all((target / name).is_file() for name in FIGURES)
    # Again into the same directory: refused, unless continued; a finished one resumes at once.
    assert cli.main(argv) == 2
    assert "already holds a run; pass resume=True (--resume) to continue it" in capsys.readouterr().err
    assert cli.main([*argv, "--resume"]) == 0
    assert Results.load(target).levels == results.levels
    # A plain resume knows the directory for a transfer, never finishing it as IMP.
    assert cli.main(["run", "--out", str(target), "--resume", "--quiet"]) == 0
    assert Results.load(target).config.method == "transfer"


def test_transfer_ticket_forms_and_settings(finished_run, monkeypatch, capsys):
    source, _, _ = finished_run
    calls = []
    monkeypatch.setattr(cli._transfer, "transfer", lambda *args, **kwargs: calls.append((args, kwargs)) or Results.load(source))
    monkeypatch.setattr(cli._transfer.report, "plot_run", lambda run_dir: [])
    for ticket in (source, source / "level_1", source / "level_1" / "seed_0"):
        assert cli.main(["transfer", "--ticket", str(ticket), "--dataset", "digits", "--quiet"]) == 0
    assert [(kwargs["levels"], kwargs["seed"]) for _, kwargs in calls] == [(None, None), ([1], None), ([1], 0)]
    assert [args[0] for args, _ in calls] == [source] * 3
    assert calls[1][1]["run_dir"] == Path("runs") / f"{source.name}-to-digits-level_1"
    capsys.readouterr()
    assert cli.main(["transfer", "--ticket", str(source), "--dataset", "digits", "--epochs", "2", "--print-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    saved = Results.load(source).config
    assert config["dataset"] == "digits" and config["epochs"] == 2.0 and config["iterations"] is None
    assert config["controls"] == ["random_reinit", "random_pruning"] and config["rounds"] == saved.rounds
    argv = ["transfer", "--ticket", str(source), "--dataset", "digits", "--controls", "none", "--print-config"]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["controls"] == []


def test_transfer_errors_exit_before_any_training(finished_run, tmp_path, monkeypatch, capsys):
    source, _, _ = finished_run

    def refuse(*args, **kwargs):
        raise AssertionError("nothing may be trained")

    monkeypatch.setattr("lth_prune.imp.phases.train", refuse)
    out = ["--out", str(tmp_path / "t"), "--quiet"]
    assert cli.main(["transfer", "--ticket", str(source / "level_5"), "--dataset", "digits", *out]) == 2
    assert "levels must be finished levels of the source run" in capsys.readouterr().err
    assert cli.main(["transfer", "--ticket", str(tmp_path), "--dataset", "digits", *out]) == 1
    assert f"{tmp_path} has no config.json" in capsys.readouterr().err
    assert cli.main(["transfer", "--ticket", str(source)]) == 2
    assert "the following arguments are required: --dataset" in capsys.readouterr().err
    assert cli.main(["transfer", "--ticket", str(source), "--dataset", "digits", "--out", str(source)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_report_analysis_prints_the_tables_and_writes_the_figures(finished_run, capsys):
    out, _, _ = finished_run
    assert cli.main(["report", str(out), "--analysis"]) == 0
    stdout = capsys.readouterr().out
    results = Results.load(out)
    assert stdout.startswith(report.format_table(results) + "\n\n")
    assert "|   level |   total |   classifier.0 |" in stdout
    assert "mask overlap between levels (seed 0)" in stdout and "between seeds" not in stdout
    for name in ("layers", "overlap_levels", "init_values"):
        assert (out / f"{name}.png").is_file() and f"{out / name}.png" in stdout
    assert not (out / "overlap_seeds.png").exists()  # one seed
    assert cli.main(["report", str(out), "--analysis", "--seed", "3"]) == 2
    assert "--seed must be one of the run's seeds [0], got 3." in capsys.readouterr().err


def test_compare_prints_one_table_and_writes_the_overlay(finished_run, tmp_path, capsys):
    out, _, _ = finished_run
    assert cli.main(["compare", str(out), str(out), "--labels", "first", "second", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:3] == ["level", "first: remaining (%)", "first: ticket (%)"] and header[-2:] == ["overlap (Jaccard)", "random masks"]
    assert lines[3].rstrip("|").split("|")[-2].strip() == "1.000"  # level 1 against itself
    assert any(line.startswith(f"first: {out} (lenet300_100 on synthetic") for line in lines)
    for name in ("compare.png", "compare.svg", "compare_overlap.png", "compare_overlap.svg"):
        assert (tmp_path / name).is_file(), name
    assert cli.main(["compare", str(out), str(tmp_path)]) == 1
    assert "has no results.json" in capsys.readouterr().err


def test_compare_takes_any_number_of_runs(finished_run, tmp_path, capsys):
    out, _, _ = finished_run
    assert cli.main(["compare", str(out), str(out), str(out), "--out", str(tmp_path)]) == 0
    header = [cell.strip() for cell in capsys.readouterr().out.splitlines()[0].strip("|").split("|")]
    assert [cell for cell in header if cell.endswith("remaining (%)")] == ["A: remaining (%)", "B: remaining (%)", "C: remaining (%)"]
    assert cli.main(["compare", str(out)]) == 2
    assert "compare needs at least two RUN_DIRs, got 1" in capsys.readouterr().err
    assert cli.main(["compare", str(out), str(out), "--labels", "one"]) == 2
    assert "--labels must give one label per run (2), got 1" in capsys.readouterr().err


def test_help_lists_transfer_and_compare(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "transfer" in text and "compare" in text and "lth-prune transfer --ticket runs/fm --dataset digits --resize" in text
    assert cli.main(["transfer", "--help"]) == 0
    words = " ".join(capsys.readouterr().out.split())
    assert "--resize resize the target images to the source's input shape" in words
    assert "--lr X peak learning rate. (default: the source run's)" in words
