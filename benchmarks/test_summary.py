"""The summary's arithmetic: ratios against the paired dense time, speed-ups against the ideal."""
from __future__ import annotations

import itertools

import pytest

from benchmarks import summary
from benchmarks import _timing
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
    assert baseline.blocks == [[1.0, 1.0, 1.0]]


class _Clock:
    """A clock that pass targets advance; the machine gets ``slowdown`` times slower mid-run."""

    def __init__(self) -> None:
        self.now = 0.0
        self.speed = 1.0

    def run(self, seconds: float) -> None:
        self.now += seconds * self.speed


class _FakeBenchmark:
    """What time_against uses of pytest-benchmark's fixture: pedantic's call order, extra_info."""

    def __init__(self) -> None:
        self.extra_info: dict = {}
        self.timed_rounds = 0

    def pedantic(self, target, setup, rounds, warmup_rounds):
        result = None
        for index in range(warmup_rounds + rounds):
            args, kwargs = setup()
            result = target(*args, **kwargs)
            self.timed_rounds += index >= warmup_rounds
        return result


def test_time_against_interleaves_blocks_and_cancels_a_change_of_speed():
    clock = _Clock()
    order: list[str] = []

    def dense_pass() -> None:
        order.append("d")
        clock.run(2.0)

    def variant_pass() -> str:
        order.append("v")
        clock.run(3.0)  # 1.5x dense
        if order.count("v") == 10:
            clock.speed = 4.0  # the machine slows down mid-run
        return "out"

    baseline = PairedBaseline(Timed(dense_pass, lambda _: None), timer=lambda: clock.now)
    benchmark = _FakeBenchmark()
    result = _timing.time_against(
        benchmark, Timed(variant_pass, lambda _: None), Rounds(rounds=16, warmup_rounds=1), baseline
    )
    assert result == "out" and benchmark.timed_rounds == 16
    # The variant's warm-up, the dense one, then 8 dense blocks of 2 each before a variant
    # block of 2, and a last dense block.
    assert "".join(order) == "vd" + "ddvv" * 8 + "dd"
    assert len(baseline.blocks) == _timing.BLOCKS + 1
    assert benchmark.extra_info["paired_blocks"] == _timing.BLOCKS
    # One block of eight ran slow in both dense and variant time: the quartiles stay exact.
    assert benchmark.extra_info["paired_ratio_q1"] == pytest.approx(1.5)
    assert benchmark.extra_info["paired_ratio_q3"] == pytest.approx(1.5)
    # Only the block in which the speed changed sees a different ratio; the median is exact.
    assert benchmark.extra_info["paired_ratio"] == pytest.approx(1.5)
    assert benchmark.extra_info["dense_median"] == pytest.approx(2.0)  # most dense rounds ran fast


@pytest.mark.parametrize(
    "rounds, blocks", [(5, 8), (50, 8), (160, 8), (400, 20), (640, 32), (1000, 32)]
)
def test_many_rounds_are_cut_into_more_blocks(rounds, blocks):
    assert _timing.blocks_for(rounds) == blocks


def test_block_ratio_quartiles():
    baseline = PairedBaseline(Timed(lambda: None, lambda _: None), timer=lambda: 0.0)
    baseline.blocks = [[1.0]] * 6  # five variant blocks between six dense blocks of 1 s
    ratios = baseline.ratio([1.0, 1.1, 1.2, 1.3, 2.0], block_rounds=1)
    assert ratios.median == pytest.approx(1.2) and ratios.blocks == 5
    assert (ratios.lower_quartile, ratios.upper_quartile) == (pytest.approx(1.1), pytest.approx(1.3))


def test_paired_ratio_is_the_summary_ratio():
    rows = [
        _row("dense", 1.0, "train_step", 2.0),
        _row("masked-training", 0.02, "train_step", 9.0, dense_median=3.0, paired_ratio=1.02),
    ]
    by_variant = {row.variant: row for row in summary.ratio_rows(rows)}
    assert by_variant["masked-training"].time_ratio["train_step"] == pytest.approx(1.02)
    assert by_variant["masked-training"].time_spread == {}


def test_the_table_shows_the_block_quartiles():
    rows = [
        _row("dense", 1.0, "train_step", 2.0),
        _row("masked-training", 0.02, "train_step", 9.0, dense_median=3.0, paired_ratio=1.02,
             paired_ratio_q1=0.99, paired_ratio_q3=1.04),
    ]
    table = summary.ratio_rows(rows)
    assert table[1].time_spread == {"train_step": (0.99, 1.04)}
    assert "1.02 [0.99, 1.04]" in summary.format_table(table)


def test_speedup_rows_use_the_benchmarks_flop_ideal():
    rows = [
        _row("to-sparse", 0.02, "ticket_inference", 0.5, dense_median=2.0, ideal_speedup=8.0),
        _row("to-sparse", 0.05, "ticket_inference", 1.0, dense_median=2.0),
    ]
    plain, flop = summary.speedup_rows(summary.ratio_rows(rows))  # sparsest last
    assert (flop.speedup, flop.ideal, flop.fraction_of_ideal) == pytest.approx((4.0, 8.0, 0.5))
    assert plain.ideal == pytest.approx(20.0)
    assert "| 4.00x      | 8.0x    | 50.0%" in summary.format_speedups([flop])
