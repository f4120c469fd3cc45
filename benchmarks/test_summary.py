"""The summary's arithmetic: ratios against the paired dense time, speed-ups against the ideal."""
from __future__ import annotations

import itertools

import pytest

from benchmarks import summary
from benchmarks._timing import PairedBaseline, Rounds, Timed


def _row(variant: str, remaining: float, pass_name: str, median: float, **extra: float) -> dict:
    return {"model": "m", "variant": variant, "weights_remaining": remaining, "pass": pass_name,
            "median": median, "param_bytes": 100, **extra}


def test_ratio_uses_the_paired_dense_time_where_there_is_one():
    rows = [
        _row("dense", 1.0, "inference", 2.0),
        _row("to-sparse", 0.02, "inference", 1.0, dense_median=4.0),
        _row("torch-prune", 0.02, "inference", 3.0),
    ]
    by_variant = {row.variant: row for row in summary.ratio_rows(rows)}
    assert by_variant["to-sparse"].time_ratio["inference"] == pytest.approx(0.25)
    assert by_variant["torch-prune"].time_ratio["inference"] == pytest.approx(1.5)


def test_speedup_rows_compare_with_one_over_weights_remaining():
    rows = [
        _row("dense", 1.0, "inference", 2.0),
        _row("to-sparse", 1.0, "inference", 2.0, dense_median=2.0),
        _row("to-sparse", 0.02, "inference", 0.2, dense_median=2.0),
        _row("masked-training", 0.02, "inference", 1.0, dense_median=2.0),
    ]
    (speedup,) = summary.speedup_rows(summary.ratio_rows(rows))
    assert (speedup.variant, speedup.weights_remaining) == ("to-sparse", 0.02)
    assert speedup.speedup == pytest.approx(10.0)
    assert speedup.ideal == pytest.approx(50.0)
    assert speedup.fraction_of_ideal == pytest.approx(0.2)
    table = summary.format_speedups([speedup])
    assert "| m       | to-sparse | inference | 2%             | 10.00x     | 50x     | 20.0%" in table


def test_paired_baseline_times_each_block_and_drops_warm_up():
    ticks = itertools.count()
    calls = []
    dense = Timed(target=lambda: calls.append("run"), check=lambda _: None)
    baseline = PairedBaseline(dense, timer=lambda: float(next(ticks)))
    with pytest.raises(RuntimeError, match="measure\\(\\) has not run yet"):
        baseline.median()
    baseline.measure(Rounds(rounds=3, warmup_rounds=1))
    assert len(calls) == 4
    assert baseline.seconds == [1.0, 1.0, 1.0]
