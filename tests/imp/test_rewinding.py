"""Rewind policies (lth_prune.imp.rewinding): what each mode resets, where it starts, its schedule."""
from __future__ import annotations

import pytest

from lth_prune import imp
from lth_prune.imp.rewinding import REWIND_POLICIES, RewindPolicy
from lth_prune.training import LearningRateSchedule

BASE = LearningRateSchedule(0.1, 100, warmup=10, decay="cosine")


def test_one_policy_per_rewind_mode():
    assert REWIND_POLICIES.names()[:4] == ["init", "step", "lr", "finetune"]
    assert imp.REWIND_POLICIES is REWIND_POLICIES
    assert all(issubclass(REWIND_POLICIES.get(mode), RewindPolicy) and REWIND_POLICIES.get(mode).name == mode
               for mode in REWIND_POLICIES)


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
    policy = _policy(mode, step)
    assert policy.resets_weights is resets and policy.point_step == point
    assert [policy.start_step(level) for level in range(3)] == starts


def test_only_fine_tuning_changes_the_schedule():
    for mode in ("init", "lr"):
        assert _policy(mode).schedule(BASE, 3) is BASE
    assert _policy("step", 5).schedule(BASE, 3) is BASE
    tuned = _policy("finetune").schedule(BASE, 3)
    assert tuned == LearningRateSchedule(BASE(99), 100) and tuned(0) == tuned(99) == BASE(99)
    assert _policy("finetune").schedule(BASE, 0) is BASE  # the dense network trains normally


def test_validation_messages():
    with pytest.raises(ValueError, match=r"rewind_step must be >= 1 when rewind='step', got 0"):
        REWIND_POLICIES.get("step").validate(0, one_shot=False)
    with pytest.raises(ValueError, match=r"rewind_step is only used with rewind='step', got rewind='lr' and rewind_step=3"):
        REWIND_POLICIES.get("lr").validate(3, one_shot=False)
    with pytest.raises(ValueError, match=r"one_shot needs a rewind to weights \(rewind='init' or 'step'\), got 'finetune'"):
        REWIND_POLICIES.get("finetune").validate(0, one_shot=True)
    with pytest.raises(ValueError, match=r"run\(\): rewind_step must be smaller than the iterations per round \(5\), got 5"):
        _policy("step", 5).check_length(5, "run()")
    _policy("init").check_length(1, "run()")
    with pytest.raises(ValueError, match=r"rewind must be one of \['init', 'step', 'lr', 'finetune'\], got 'late'"):
        REWIND_POLICIES.get("late")


def test_labels_for_the_report():
    assert [_policy(mode, 4 if mode == "step" else 0).description for mode in REWIND_POLICIES.names()[:4]] == [
        "rewind to initialization", "rewind to step 4", "learning-rate rewinding", "fine-tuning"]
    assert _policy("step", 4).ticket_label == "winning ticket (rewind to step 4)"
    assert _policy("lr").ticket_label == "IMP, learning-rate rewinding"


def _policy(mode: str, rewind_step: int = 0) -> RewindPolicy:
    return REWIND_POLICIES.get(mode)(rewind_step)
