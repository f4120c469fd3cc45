"""Tests for lth_prune.imp.transfer: tickets found on one data set, trained on another."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch

from lth_prune import analysis, imp, report
from lth_prune.data import make_synthetic
from lth_prune.imp.transfer import default_controls, read_transfer, resize_inputs, transfer
from lth_prune.tickets import read_ticket
from tests.runs import die_at_level, numbers

# The module, not the function of the same name that lth_prune.imp may re-export.
transfer_module = importlib.import_module("lth_prune.imp.transfer")
transfer_module_phases = importlib.import_module("lth_prune.imp.phases")

HIDDEN = ("classifier.0.weight", "classifier.2.weight")
OUTPUT = "classifier.4.weight"
SOURCE = imp.ExperimentConfig(dataset="synthetic", rounds=2, iterations=4, controls=())


def _source_data(num_classes: int = 3, input_shape: tuple[int, int, int] = (1, 8, 8)):
    return make_synthetic(200, num_classes=num_classes, input_shape=input_shape)


def _target_data(num_classes: int = 5, input_shape: tuple[int, int, int] = (1, 8, 8)):
    return make_synthetic(200, num_classes=num_classes, input_shape=input_shape, data_seed=1)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LeNet-300-100 tickets at levels 0-2, found on a 3-class synthetic set."""
    run_dir = tmp_path_factory.mktemp("transfer") / "source"
    imp.run(SOURCE, run_dir=run_dir, data=_source_data(), progress=False)
    return run_dir


@pytest.fixture(scope="module")
def transferred(source_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, imp.Results]:
    """Those tickets trained on a 5-class synthetic set, with both controls."""
    run_dir = tmp_path_factory.mktemp("transfer") / "target"
    target = SOURCE.replace(controls=default_controls())
    return run_dir, transfer(source_run, target, data=_target_data(), run_dir=run_dir, progress=False)


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("nothing may be trained")

    monkeypatch.setattr("lth_prune.imp.phases.train", refuse)


def test_transfer_between_data_sets_with_different_class_counts(source_run, transferred):
    run_dir, results = transferred
    assert [level["level"] for level in results.levels] == [0, 1, 2]
    assert all(level["output_layer"] == "new" for level in results.levels)
    source = imp.Results.load(source_run)
    for mine, theirs in zip(results.levels, source.levels):
        # Hidden layers keep the source's sparsity; the new 5-class output layer keeps its fraction.
        assert [mine["layers"][name[: -len(".weight")]] for name in HIDDEN] == [
            theirs["layers"][name[: -len(".weight")]] for name in HIDDEN
        ]
        assert mine["layers"]["classifier.4"] == pytest.approx(theirs["layers"]["classifier.4"], abs=1 / 500)
        assert mine["source_test_accuracy"] == pytest.approx(theirs["test_accuracy"])
    assert results.levels[0]["random_reinit_accuracy"] is None and results.levels[0]["random_pruning_accuracy"] is None
    for level in results.levels[1:]:
        assert 0.0 <= level["random_reinit_accuracy"] <= 1.0 and 0.0 <= level["random_pruning_accuracy"] <= 1.0
    assert results.config.dataset == "synthetic" and results.config.controls == default_controls()


def test_transfer_run_directory_has_the_usual_form(source_run, transferred):
    run_dir, results = transferred
    for name in ("config.json", "results.json", "results.csv", "transfer.json"):
        assert (run_dir / name).is_file(), name
    assert [path.name for path in report.plot_run(run_dir)][:2] == ["accuracy.png", "accuracy.svg"]
    loaded = imp.Results.load(run_dir)
    assert report.format_table(loaded) == report.format_table(results)
    assert "random pruning (%)" in report.format_table(loaded)
    info = read_transfer(run_dir)
    assert info["source_run"] == str(source_run.resolve()) and info["levels"] == [0, 1, 2]
    assert info["output_layer"] == "new" and info["source_classes"] == 3 and info["target_classes"] == 5
    assert info["source_seeds"] == {"0": 0} and info["resized"] is False
    assert json.loads((run_dir / "config.json").read_text()) == results.config.to_dict()
    assert read_transfer(source_run) is None


def test_transferred_ticket_starts_from_the_source_mask_and_rewind_point(source_run, transferred):
    run_dir, _ = transferred
    source_masks, source_point, _ = read_ticket(source_run / "level_2" / "seed_0" / "ticket.pt")
    masks, point, _ = read_ticket(run_dir / "level_2" / "seed_0" / "ticket.pt")
    for name in HIDDEN:
        assert torch.equal(masks[name], source_masks[name])
        assert torch.equal(point[name][masks[name]], source_point[name][source_masks[name]])
        bias = name.replace("weight", "bias")
        assert torch.equal(point[bias], source_point[bias])
    assert tuple(masks[OUTPUT].shape) == (5, 100) and tuple(source_masks[OUTPUT].shape) == (3, 100)
    kept = int(source_masks[OUTPUT].sum()) / source_masks[OUTPUT].numel()
    assert int(masks[OUTPUT].sum()) == round(kept * 500)
    # Overlap with the source ticket, over the layers both have: the same masks.
    overlap = analysis.mask_overlap(analysis.load_masks(source_run, 2), analysis.load_masks(run_dir, 2), layers=HIDDEN)
    assert overlap["overall"] == 1.0


def test_the_controls_start_from_the_same_distribution_as_the_ticket(source_run, tmp_path, monkeypatch):
    """Random pruning keeps other weights than the ticket: they start at their rewind-point values,
    not at the zeros a compact ticket stores for pruned positions."""
    real_train = transfer_module_phases.train
    zeros: dict[str, float] = {}

    def measuring(model, *args, description, **kwargs):
        kept = [(module.weight_orig * module.weight_mask)[module.weight_mask != 0]
                for module in model.modules() if hasattr(module, "weight_mask")]
        values = torch.cat([k.detach().flatten() for k in kept]) if kept else torch.ones(1)
        zeros[description] = float((values == 0).float().mean())
        return real_train(model, *args, description=description, **kwargs)

    monkeypatch.setattr(transfer_module_phases, "train", measuring)
    transfer(source_run, SOURCE.replace(controls=default_controls()), data=_target_data(), run_dir=tmp_path / "t", progress=False)
    for level in (1, 2):
        # Glorot-normal initial values are never exactly 0; before the fix 40-60 % of these were.
        assert zeros[f"level {level} transferred ticket"] == 0.0
        assert zeros[f"level {level} random pruning"] == 0.0
        assert zeros[f"level {level} random reinit"] == 0.0


def test_same_class_count_transfers_the_output_layer(source_run, tmp_path):
    results = transfer(
        source_run, SOURCE, levels=[2], data=_target_data(num_classes=3), run_dir=tmp_path / "t", progress=False
    )
    assert [level["level"] for level in results.levels] == [0, 2]  # the dense reference is always there
    assert results.levels[0]["output_layer"] == "transferred"
    source_masks, source_point, _ = read_ticket(source_run / "level_2" / "seed_0" / "ticket.pt")
    masks, point, _ = read_ticket(tmp_path / "t" / "level_2" / "seed_0" / "ticket.pt")
    assert torch.equal(masks[OUTPUT], source_masks[OUTPUT])
    assert torch.equal(point["classifier.4.bias"], source_point["classifier.4.bias"])


def test_input_shape_mismatch_is_an_error_before_any_training(source_run, tmp_path, no_training):
    with pytest.raises(ValueError) as error:
        transfer(source_run, SOURCE, data=_target_data(input_shape=(1, 6, 6)), run_dir=tmp_path / "t", progress=False)
    message = str(error.value)
    assert message.startswith("transfer(): the ticket must fit the target data: classifier.0.weight has shape (300, 64)")
    assert "input shape (1, 8, 8)" in message and "input shape (1, 6, 6)" in message
    assert "needs shape (300, 36)" in message and "pass resize=True (--resize)" in message
    assert not (tmp_path / "t").exists()


def test_resize_fits_the_target_images_to_the_source(source_run, tmp_path):
    results = transfer(
        source_run, SOURCE.replace(controls=()), levels=[1], data=_target_data(input_shape=(3, 5, 5)),
        resize=True, run_dir=tmp_path / "t", progress=False,
    )
    info = read_transfer(tmp_path / "t")
    assert info["resized"] is True and info["input_shape"] == [1, 8, 8] and info["target_input_shape"] == [3, 5, 5]
    assert [level["level"] for level in results.levels] == [0, 1]


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        (dict(levels=[1, 7]), ValueError, r"levels must be finished levels of the source run .*\(\[0, 1, 2\]\), got \[7\]"),
        (dict(seed=4), ValueError, r"seed must be a seed of the source run .*\(\[0\]\), got 4\."),
        (dict(target=SOURCE.replace(seeds=(0, 1))), ValueError, r"seed must be a seed of the source run .*got 1; pass seed= \(--seed\)"),
        (dict(target=SOURCE.replace(model="conv2")), ValueError, r"target.model must be the source run's model 'lenet300_100', got 'conv2'"),
        (dict(target=3), TypeError, r"target must be a data set name or an ExperimentConfig, got int"),
        (dict(data=[1]), TypeError, r"data must be a lth_prune.data.DataSplits, got list"),
    ],
)
def test_bad_arguments_are_rejected_before_any_training(source_run, changes, error, message, no_training):
    arguments = dict(target=SOURCE, data=_target_data(), progress=False)
    arguments.update(changes)
    with pytest.raises(error, match=r"transfer\(\): " + message):
        transfer(source_run, **arguments)


def test_source_and_run_directory_guards(source_run, tmp_path, no_training):
    with pytest.raises(FileNotFoundError, match=r"transfer\(\): source must be a run directory"):
        transfer(tmp_path, "digits")
    with pytest.raises(ValueError, match=r"transfer\(\): run_dir .* already holds a run; pass resume=True"):
        transfer(source_run, SOURCE, data=_target_data(), run_dir=source_run)


def test_resize_inputs_resizes_adapts_channels_and_renormalizes():
    data = make_synthetic(120, num_classes=3, input_shape=(3, 8, 8))
    resized = resize_inputs(data, (1, 16, 12))
    assert resized.input_shape == (1, 16, 12) and tuple(resized.test_x.shape[1:]) == (1, 16, 12)
    assert torch.equal(resized.train_y, data.train_y) and resized.num_classes == 3 and resized.name == "synthetic"
    assert float(resized.train_x.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(resized.train_x.std()) == pytest.approx(1.0, abs=1e-3)
    # Same shape: only the normalization is recomputed, so the images are unchanged.
    same = resize_inputs(data, (3, 8, 8))
    assert torch.allclose(same.train_x, data.train_x, atol=1e-4)
    with pytest.raises(ValueError, match=r"resize_inputs\(\): input_shape must have 3 channels or 1"):
        resize_inputs(data, (2, 8, 8))
    with pytest.raises(ValueError, match=r"resize_inputs\(\): input_shape must be \(C, H, W\) of positive ints"):
        resize_inputs(data, (8, 8))


def test_a_killed_transfer_resumes_to_the_results_of_an_uninterrupted_one(source_run, tmp_path, monkeypatch):
    # A transfer is a run of method "transfer" through the one level loop: it checkpoints and
    # resumes as any run, from transfer() and from lth-prune run --resume alike.
    from lth_prune.imp.store import RunStore

    target = SOURCE.replace(controls=default_controls())
    whole = transfer(source_run, target, data=_target_data(), run_dir=tmp_path / "whole", progress=False)
    saved = die_at_level(monkeypatch, 2)
    for name in ("killed", "killed-again"):
        with pytest.raises(KeyboardInterrupt):
            transfer(source_run, target, data=_target_data(), run_dir=tmp_path / name, progress=False)
    monkeypatch.undo()
    assert saved == [0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"transfer\(\): run_dir .* already holds a run; pass resume=True"):
        transfer(source_run, target, data=_target_data(), run_dir=tmp_path / "killed", progress=False)
    resumed = transfer(source_run, target, data=_target_data(), run_dir=tmp_path / "killed", resume=True, progress=False)
    assert numbers(resumed) == numbers(whole)
    assert resumed.config.method == "transfer" and read_transfer(tmp_path / "killed") == read_transfer(tmp_path / "whole")
    # The saved settings say it is a transfer: a plain resume continues it as one, not as IMP.
    again = imp.run(RunStore(tmp_path / "killed-again").read_config(), run_dir=tmp_path / "killed-again", resume=True,
                    data=_target_data(), progress=False)
    assert numbers(again) == numbers(whole)
