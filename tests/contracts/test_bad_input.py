"""The bad-input catalogue of the experiment side: every wrong value gets a clear error, before any
work, and leaves nothing behind.

One table for the command line (arguments, exit status, words the message must contain; the
working directory must stay empty) and one for the Python API (call, exception type, words).
Cases that were wrong once and cases that always worked are both rows, so both stay as they are.
The core's own catalogue (pruning methods, masks, tickets, masked training, data files) is in
``test_bad_input_core.py``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from lth_prune import analysis, cli, imp, report
from lth_prune.data import make_synthetic
from lth_prune.imp import ExperimentConfig, Results
from lth_prune.imp.branches import BRANCHES
from lth_prune.imp.rewinding import REWIND_POLICIES
from lth_prune.imp.transfer import transfer
from lth_prune.training import DivergenceError

FAST = ["--dataset", "synthetic", "--rounds", "1", "--iterations", "4", "--controls", "none", "--quiet"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("bad-input") / "run"
    imp.run(ExperimentConfig(dataset="synthetic", rounds=1, iterations=4, controls=()), run_dir=run_dir, progress=False)
    return run_dir


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lth_prune.imp.phases.train", lambda *args, **kwargs: pytest.fail("nothing may be trained"))


# (arguments, exit status, words the error must contain). RUN stands for a finished run,
# FILE for an existing plain file, EMPTY for an empty directory.
CLI_CASES: list[tuple[list[str], int, str]] = [
    (["run", "--rate", "1.5"], 2, "rate must be >= 0.0 and < 1.0, got 1.5"),
    (["run", "--rate", "1.0"], 2, "rate must be >= 0.0 and < 1.0, got 1.0"),
    (["run", "--rate", "nan"], 2, "rate must be a finite number, got nan"),
    (["run", "--lr", "inf"], 2, "lr must be a finite number, got inf"),
    (["run", "--lr", "0"], 2, "lr must be > 0.0, got 0"),
    (["run", "--epochs", "inf"], 2, "epochs must be a finite number, got inf"),
    (["run", "--momentum", "nan"], 2, "momentum must be a finite number, got nan"),
    (["run", "--output-rate", "nan"], 2, "output_rate must be a finite number, got nan"),
    (["run", "--sparse-density", "nan"], 2, "sparse_density must be a finite number, got nan"),
    (["run", "--weight-decay", "inf"], 2, "weight_decay must be a finite number, got inf"),
    (["run", "--conv-rate", "-0.1"], 2, "conv_rate must be >= 0.0 and < 1.0, got -0.1"),
    (["run", "--print-config", "--lr", "nan"], 2, "lr must be a finite number, got nan"),
    (["run", *FAST, "--exclude", "fc9"], 2, "exclude names a module that is not in the model, got 'fc9'; prunable layers are"),
    (["run", *FAST, "--exclude", ""], 2, "exclude must hold layer names (dotted module names, not empty), got ''"),
    (["run", *FAST, "--exclude", "classifier"], 2, "must have a convolution or linear layer left to prune"),
    (["run", *FAST, "--warmup", "4"], 2, "warmup must be shorter than the iterations per round (4), got 4"),
    (["run", "--dataset", "synthetic", "--epochs", "1", "--warmup", "50", "--quiet"], 2,
     "warmup must be shorter than the iterations per round (7), got 50"),
    (["run", "--rewind", "step"], 2, "rewind_step must be >= 1 when rewind='step', got 0"),
    (["run", *FAST, "--rewind", "step", "--rewind-step", "4"], 2, "rewind_step must be smaller than the iterations per round (4), got 4"),
    (["run", "--rewind-step", "3"], 2, "rewind_step is only used with rewind='step'"),
    (["run", "--one-shot", "--rewind", "lr"], 2, "one_shot needs a rewind to weights"),
    (["run", "--seeds", "0", "0"], 2, "seeds must be distinct, got [0, 0]"),
    (["run", "--controls", "none", "random_reinit"], 2, "none cannot be combined with other values"),
    (["run", "--controls", "random"], 2, "invalid choice: 'random'"),
    (["run", "--model", "resnet50"], 2, "model must be one of ['network', 'conv2', 'conv4', 'conv6', 'lenet300_100', "
     "'resnet20', 'vgg16'], or 'torchvision:<name>' or 'timm:<name>', got 'resnet50'"),
    (["run", "--model", "torchvision:resnet9000"], 2, "torchvision has no model 'resnet9000'"),
    (["run", "--model-kwargs", "{oops"], 2, "must be a JSON object"),
    (["run", "--dataset", "imagenet"], 2, "invalid choice: 'imagenet'"),
    (["run", "--device", "tpu"], 2, "device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'tpu'"),
    (["run", "--batch-size", "big"], 2, "argument --batch-size: invalid int value: 'big'"),
    (["run", "--batch-size", "0"], 2, "batch_size must be >= 1, got 0"),
    (["run", "--iterations", "0"], 2, "iterations must be >= 1, got 0"),
    (["run", "--jobs", "0"], 2, "jobs must be >= 1, got 0"),
    (["run", "--val-size", "-3"], 2, "val_size must be > 0.0, got -3"),
    (["run", "--no-such-flag"], 2, "unrecognized arguments: --no-such-flag"),
    (["train"], 2, "invalid choice: 'train'"),
    ([], 2, "usage: lth-prune"),
    (["run", "--dataset", "mnist", "--data-dir", "EMPTY", "--quiet"], 1, "'mnist' was not found"),
    (["run", *FAST, "--out", "FILE"], 2, "run_dir must be a directory, got"),
    (["run", *FAST, "--out", "typo", "--resume"], 2, "resume=True needs a run in run_dir, got 'typo', which holds none"),
    (["run", *FAST, "--out", "RUN"], 2, "already holds a run; pass resume=True (--resume)"),
    (["run", *FAST, "--out", "RUN", "--resume", "--lr", "0.5"], 2, "these settings differ: ['lr']"),
    (["report", "EMPTY"], 1, "has no results.json"),
    (["report", "RUN", "--tablefmt", "nope"], 2, "tablefmt must be one of"),
    (["report", "RUN", "--analysis", "--seed", "3"], 2, "--seed must be one of the run's seeds [0], got 3"),
    (["report", "RUN", "--analysis", "--level", "99"], 2, "--level must be a finished level of seed 0 ([0, 1]), got 99"),
    (["transfer", "--ticket", "EMPTY", "--dataset", "digits", "--quiet"], 1, "has no config.json"),
    (["transfer", "--ticket", "RUN/level_5", "--dataset", "digits", "--quiet"], 2, "levels must be finished levels of the source run"),
    (["transfer", "--ticket", "RUN/seed_0", "--dataset", "digits", "--quiet"], 2,
     "must be RUN_DIR, RUN_DIR/level_N or RUN_DIR/level_N/seed_S"),
    (["transfer", "--ticket", "RUN/level_1/seed_0", "--seed", "2", "--dataset", "digits"], 2,
     "--seed must agree with the ticket's seed (0), got 2"),
    (["transfer", "--ticket", "RUN"], 2, "the following arguments are required: --dataset"),
    (["transfer", "--ticket", "RUN", "--dataset", "digits", "--out", "RUN"], 2, "already holds a run"),
    (["compare", "RUN", "EMPTY"], 1, "has no results.json"),
]


@pytest.mark.parametrize(("argv", "status", "words"), CLI_CASES, ids=[" ".join(case[0]) or "(none)" for case in CLI_CASES])
def test_cli_bad_input(argv, status, words, finished, tmp_path, monkeypatch, capsys, no_training):
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "empty").mkdir()
    places = {"RUN": str(finished), "FILE": str(tmp_path / "file"), "EMPTY": str(tmp_path / "empty")}
    argv = [_place(arg, places) for arg in argv]
    before = _snapshot(finished)
    monkeypatch.chdir(work)
    assert cli.main(argv) == status
    error = capsys.readouterr().err
    assert words in " ".join(error.split()), error
    assert error.startswith(("lth-prune: error:", "usage: lth-prune")), error
    assert list(work.iterdir()) == [], "a refused command wrote files"
    assert not (tmp_path / "empty").exists() or list((tmp_path / "empty").iterdir()) == []
    assert _snapshot(finished) == before, "a refused command changed the finished run"


def _place(argument: str, places: dict[str, str]) -> str:
    for name, path in places.items():
        if argument == name or argument.startswith(name + "/"):
            return path + argument[len(name):]
    return argument


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(path.relative_to(run_dir)): path.read_bytes() for path in sorted(run_dir.rglob("*")) if path.is_file()}


def _run(**changes: Any) -> Callable[[], Any]:
    return lambda: imp.run(ExperimentConfig(dataset="synthetic", rounds=1, iterations=4, controls=()), progress=False, **changes)


# (call, exception type, words the message must contain).
API_CASES: list[tuple[str, Callable[[], Any], type[BaseException], str]] = [
    ("seeds int", lambda: ExperimentConfig(seeds=0), TypeError, "seeds must be a list or tuple, got 0; pass (0,)"),
    ("controls str", lambda: ExperimentConfig(controls="random_reinit"), TypeError,
     "controls must be a list or tuple, got 'random_reinit'; pass ('random_reinit',)"),
    ("exclude str", lambda: ExperimentConfig(exclude="classifier.0"), TypeError, "exclude must be a list or tuple"),
    ("data_dir int", lambda: ExperimentConfig(data_dir=5), TypeError, "data_dir must be a path (str) or None, got 5"),
    ("rate nan", lambda: ExperimentConfig(rate=float("nan")), ValueError, "rate must be a finite number, got nan"),
    ("epochs inf", lambda: ExperimentConfig(epochs=float("inf")), ValueError, "epochs must be a finite number, got inf"),
    ("batch str", lambda: ExperimentConfig(batch_size="60"), TypeError, "batch_size must be an int, got '60'"),
    ("unknown key", lambda: ExperimentConfig.from_dict({"learning_rate": 0.1}), ValueError, "unknown settings ['learning_rate']"),
    ("preset", lambda: ExperimentConfig.preset("lenet"), ValueError, "name must be one of"),
    ("controls twice", lambda: ExperimentConfig(controls=("random_reinit",) * 2), ValueError, "controls must be distinct"),
    ("one-shot lr", lambda: ExperimentConfig(one_shot=True, rewind="lr"), ValueError, "one_shot needs a rewind to weights"),
    ("config type", lambda: imp.run({"rounds": 1}), TypeError, "run(): config must be an ExperimentConfig, got dict"),
    ("data type", _run(data=[1, 2]), TypeError, "run(): data must be a lth_prune.data.DataSplits, got list"),
    ("model type", _run(model=5), TypeError, "run(): model must be an nn.Module or a function returning one, got int"),
    ("model returns", _run(model=lambda: 5), TypeError, "run(): model() must return an nn.Module, got int"),
    ("resume no dir", _run(resume=True), ValueError, "run(): resume=True needs run_dir"),
    ("wrong inputs", _run(model=lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3, 4))), ValueError,
     "the model must take the data's inputs of shape (1, 8, 8)"),
    ("wrong outputs", _run(model=lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 7))), ValueError,
     "the model must output (N, 4) logits"),
    ("results dir", lambda: Results.load("no/such/run"), FileNotFoundError, "Results.load(): run_dir must hold a results.json"),
    ("table type", lambda: report.format_table({"levels": []}), TypeError, "format_table(): results must be a lth_prune.imp.Results, got dict"),
    ("figure type", lambda: report.plot_results([], "unused"), TypeError, "plot_results(): results must be a lth_prune.imp.Results"),
    ("plot no run", lambda: report.plot_run("no/such/run"), FileNotFoundError, "must hold a results.json"),
    ("overlap", lambda: analysis.mask_overlap({"w": torch.ones(2)}, {"v": torch.ones(2)}), ValueError,
     "masks_b must mask the same weights as masks_a"),
    ("analysis no run", lambda: analysis.finished_levels("no/such/run"), FileNotFoundError, "must hold a config.json"),
    ("rewind mode", lambda: REWIND_POLICIES.get("late"), ValueError, "rewind must be one of ['init', 'step', 'lr', 'finetune'], got 'late'"),
    ("branch", lambda: BRANCHES.get("shuffled"), ValueError, "branch must be one of ['random_reinit'"),
    ("transfer source", lambda: transfer("no/such/run", "digits"), FileNotFoundError, "transfer(): source must be a run directory"),
]


@pytest.mark.parametrize(("name", "call", "error", "words"), API_CASES, ids=[case[0] for case in API_CASES])
def test_api_bad_input(name, call, error, words, no_training):
    with pytest.raises(error) as raised:
        call()
    assert words in str(raised.value)


def test_training_that_diverges_stops_with_the_level_step_and_cause(tmp_path):
    config = ExperimentConfig(dataset="synthetic", rounds=1, iterations=20, lr=1e30, optimizer="sgd", controls=())
    with pytest.raises(DivergenceError) as raised:
        imp.run(config, run_dir=tmp_path / "run", progress=False)
    message = str(raised.value)
    assert message.startswith("run(): level 0 (ticket) of seed 0 stopped: the loss is nan at step ")
    assert "the network diverged at learning rate 1e+30: lower lr" in message
    assert "Nothing had finished; start it again with other settings" in message
    # Nothing finished, so the directory takes the corrected settings, with or without resume.
    fixed = imp.run(config.replace(lr=0.01), run_dir=tmp_path / "run", progress=False)
    assert [level["level"] for level in fixed.levels] == [0, 1]
    assert imp.Results.load(tmp_path / "run").config.lr == 0.01


def test_non_finite_inputs_are_named_as_the_cause(tmp_path):
    data = make_synthetic(200, input_shape=(1, 8, 8))
    data.train_x[5, 0, 0, 0] = float("inf")
    with pytest.raises(DivergenceError, match=r"the input batch of that step holds NaN or infinite values: check the data"):
        imp.run(ExperimentConfig(dataset="synthetic", rounds=1, iterations=20, controls=()), data=data, progress=False)


def test_a_diverging_branch_keeps_the_finished_levels(tmp_path, monkeypatch):
    real = imp.phases.train

    def diverges_at_level_1(*args, description, **kwargs):
        if description.startswith("level 1"):
            raise DivergenceError("train(): the loss is nan at step 3; it diverged.", 3, float("nan"), False)
        return real(*args, description=description, **kwargs)

    monkeypatch.setattr(imp.phases, "train", diverges_at_level_1)
    with pytest.raises(DivergenceError, match=r"level 1 \(ticket\) of seed 0 stopped: the loss is nan at step 3; .*"
                       r"Levels 0 to 0 of seed 0 are finished; start it again with other settings"):
        imp.run(ExperimentConfig(dataset="synthetic", rounds=2, iterations=4, controls=()), run_dir=tmp_path / "run",
                progress=False)
    assert analysis.finished_levels(tmp_path / "run") == [0]


def test_print_config_writes_valid_json(capsys):
    assert cli.main(["run", "--lr", "0.5", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["lr"] == 0.5


def test_a_fully_pruned_level_draws_without_warnings(tmp_path, recwarn):
    records = [{"level": n, "seed": 0, "weights_remaining": remaining, "layers": {}, "test_accuracy": 0.5}
               for n, remaining in enumerate((1.0, 0.1, 0.0))]
    report.plot_results(Results.from_records(ExperimentConfig(), records), tmp_path)
    assert [str(warning.message) for warning in recwarn] == []


def test_the_catalogue_is_large_and_mostly_exit_2():
    assert len(CLI_CASES) >= 45 and len(API_CASES) >= 25
    assert sum(status == 2 for _, status, _ in CLI_CASES) > sum(status == 1 for _, status, _ in CLI_CASES)
