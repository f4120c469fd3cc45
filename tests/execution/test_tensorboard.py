"""TensorBoard logs of a run (lth_prune.execution.tensorboard), read back with TensorBoard's own reader."""
from __future__ import annotations

import json
import sys

import pytest

from lth_prune import cli, imp
from lth_prune.imp import ExperimentConfig

FAST = dict(dataset="synthetic", rounds=2, iterations=40, eval_every=20, controls=("random_reinit",))


def _read(directory):
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(str(directory), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.mark.extra("tensorboard")
def test_the_logs_hold_what_the_run_measured(tmp_path):
    results = imp.run(ExperimentConfig(**FAST, seeds=(0, 1), tensorboard=str(tmp_path / "tb")), progress=False)
    assert sorted(path.name for path in (tmp_path / "tb").iterdir()) == ["seed-0", "seed-1"]
    events = _read(tmp_path / "tb" / "seed-1")
    records = {level["level"]: next(r for r in level["seeds"] if r["seed"] == 1) for level in results.levels}
    for metric in ("test_accuracy", "random_reinit_accuracy", "no_retrain_accuracy", "weights_remaining"):
        logged = {event.step: event.value for event in events.Scalars(f"level/{metric}")}
        expected = {level: record[metric] for level, record in records.items() if record[metric] is not None}
        assert logged == pytest.approx(expected, abs=1e-6), metric
    # Accuracy against weights remaining: the step is the count of weights left.
    against = {event.step: event.value for event in events.Scalars("vs_weights_remaining/test_accuracy")}
    assert sorted(against, reverse=True)[0] == 64 * 300 + 300 * 100 + 100 * 4
    # Training loss every 20 steps on one axis across levels, for the ticket and the branch.
    assert [event.step for event in events.Scalars("ticket/loss")] == [20, 40, 60, 80, 100, 120]
    assert [event.step for event in events.Scalars("random_reinit/loss")] == [60, 80, 100, 120]
    assert [round(event.value, 6) for event in events.Scalars("ticket/lr")] == [1.2e-3] * 6
    assert [event.step for event in events.Scalars("ticket/val_accuracy")] == [20, 40, 60, 80, 100, 120]
    layers = {event.step: event.value for event in events.Scalars("layers/classifier.4")}
    assert layers == pytest.approx({0: 1.0, 1: 0.9, 2: 0.81})
    histogram = events.Histograms("weights/classifier.0")
    assert [h.step for h in histogram] == [0, 1, 2] and histogram[2].histogram_value.num == 64 * 300 * 0.64
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text.strip("`\n"))["tensorboard"] == str(tmp_path / "tb")


@pytest.mark.extra("tensorboard")
def test_the_flag(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["run", "--dataset", "synthetic", "--rounds", "1", "--iterations", "4", "--controls", "none",
                     "--quiet", "--out", str(out), "--tensorboard", str(tmp_path / "tb")]) == 0
    assert (tmp_path / "tb" / "seed-0").is_dir()


def test_where_the_logs_go_is_not_part_of_the_run_name():
    # Where the logs go is not part of what a run computes: same name, and it may change on resume.
    assert ExperimentConfig(tensorboard="a").run_name() == ExperimentConfig().run_name()


def test_a_missing_package_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ValueError, match=r"tensorboard needs the tensorboard package .*pip install 'lth_prune\[tensorboard\]'"):
        imp.run(ExperimentConfig(**FAST, tensorboard=str(tmp_path / "x")), run_dir=tmp_path / "never", progress=False)
    assert not (tmp_path / "never").exists()
