"""What the tests of runs share: their numbers without timings, and a run killed after a level."""
from __future__ import annotations

import json
from typing import Any

import pytest

from lth_prune import imp
from lth_prune.imp.store import RunStore

__all__ = ["die_at_level", "numbers"]


def numbers(results: imp.Results) -> list[dict[str, Any]]:
    """Every level's measurements, per level and per seed, but how long they took."""
    levels = json.loads(json.dumps(results.levels))
    for record in [*levels, *(seed for level in levels for seed in level["seeds"])]:
        record.pop("seconds", None)
        record.pop("seconds_std", None)
    return levels


def die_at_level(monkeypatch: pytest.MonkeyPatch, level: int) -> list[int]:
    """Make a run die (``KeyboardInterrupt``) as it saves ``level``: the levels before it are
    saved, in the list returned. ``monkeypatch.undo()`` lets the next run live."""
    original, saved = RunStore.save_level, []

    def dies(self: RunStore, record: dict[str, Any], *args: Any) -> None:
        if record["level"] == level:
            raise KeyboardInterrupt("killed")
        saved.append(record["level"])
        original(self, record, *args)

    monkeypatch.setattr(RunStore, "save_level", dies)
    return saved
