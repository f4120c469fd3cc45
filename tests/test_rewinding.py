"""Rewind policies (lth_prune.imp.rewinding): what each mode resets, where it starts, its schedule."""
from __future__ import annotations

import pytest

from lth_prune import imp
from lth_prune.imp.rewinding import POLICIES, RewindPolicy, policy_for
from lth_prune.training import LearningRateSchedule

BASE = LearningRateSchedule(0.1, 100, warmup=10, decay="cosine")


def test_one_policy_per_rewind_mode():
    assert tuple(POLICIES) == imp.REWIND_MODES == ("init", "step", "lr", "finetune")
    assert all(issubclass(policy, RewindPolicy) and policy.mode == mode for mode, policy in POLICIES.items())


@pytest.mark.parametrize(
    ("mode", "step", "resets", "point", "starts"),
    [
        ("init", 0, True, 0, [0, 0, 0]),
        ("step", 7, True, 7, [0, 7, 7]),
        ("lr", 0, False, 0, [0, 0, 0]),
        ("finetune", 0, False, 0, [0, 0, 0]),
    ],
)
def test_what_each_mode_resets_and_where_training_starts(mode, step, resets, point, starts):
    policy = policy_for(mode, step)
    assert policy.resets_weights is resets and policy.point_step == point
    assert [policy.start_step(level) for level in range(3)] == starts


def test_only_fine_tuning_changes_the_schedule():
    for mode in ("init", "lr"):
        assert policy_for(mode).schedule(BASE, 3) is BASE
    assert policy_for("step", 5).schedule(BASE, 3) is BASE
    tuned = policy_for("finetune").schedule(BASE, 3)
    assert tuned == LearningRateSchedule(BASE(99), 100) and tuned(0) == tuned(99) == BASE(99)
    assert policy_for("finetune").schedule(BASE, 0) is BASE  # the dense network trains normally


def test_validation_messages():
    with pytest.raises(ValueError, match=r"rewind_step must be >= 1 when rewind='step', got 0"):
        POLICIES["step"].validate(0, one_shot=False)
    with pytest.raises(ValueError, match=r"rewind_step is only used with rewind='step', got rewind='lr' and rewind_step=3"):
        POLICIES["lr"].validate(3, one_shot=False)
    with pytest.raises(ValueError, match=r"one_shot needs a rewind to weights \(rewind='init' or 'step'\), got 'finetune'"):
        POLICIES["finetune"].validate(0, one_shot=True)
    with pytest.raises(ValueError, match=r"run\(\): rewind_step must be smaller than the iterations per round \(5\), got 5"):
        policy_for("step", 5).check_length(5, "run()")
    policy_for("init").check_length(1, "run()")
    with pytest.raises(ValueError, match=r"mode must be one of \['init', 'step', 'lr', 'finetune'\], got 'late'"):
        policy_for("late")


def test_labels_for_the_report():
    assert [policy_for(mode, 4 if mode == "step" else 0).description for mode in POLICIES] == [
        "rewind to initialization", "rewind to step 4", "learning-rate rewinding", "fine-tuning"]
    assert policy_for("step", 4).ticket_label == "winning ticket (rewind to step 4)"
    assert policy_for("lr").ticket_label == "IMP, learning-rate rewinding"
