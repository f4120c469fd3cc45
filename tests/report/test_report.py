"""Tests for lth_prune.report: the per-level table and the figures."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lth_prune import report
from lth_prune.imp import ExperimentConfig, Results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _records(
    seeds: tuple[int, ...] = (0,), levels: int = 3, controls: tuple[str, ...] = ("random_reinit",),
    early_stop: bool = True,
) -> list[dict]:
    """Hand-made per-seed records: accuracy 0.90 (+0.02 per seed) falling 0.01 per level."""
    records = []
    for seed in seeds:
        for level in range(levels):
            remaining = 0.8 ** level
            record = {
                "level": level, "seed": seed, "weights_remaining": remaining,
                "layers": {"fc1": remaining, "fc2": remaining},
                "test_accuracy": 0.90 + 0.02 * seed - 0.01 * level,
                "test_loss": 0.3, "val_accuracy": 0.9, "seconds": 1.0,
                "early_stop_iteration": 100 + 10 * seed if early_stop else None,
                "early_stop_test_accuracy": 0.9,
            }
            if level > 0:
                record["no_retrain_accuracy"] = 0.80 - 0.05 * level
                for control in controls:
                    record[f"{control}_accuracy"] = 0.85 - 0.02 * level
            records.append(record)
    return records


def _results(seeds: tuple[int, ...] = (0,), controls: tuple[str, ...] = ("random_reinit",), **kwargs) -> Results:
    config = ExperimentConfig(dataset="synthetic", controls=controls, seeds=seeds)
    return Results.from_records(config, _records(seeds=seeds, controls=controls, **kwargs))


def _cells(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]


def test_format_table_one_seed_content_and_missing_values():
    rows = _cells(report.format_table(_results()))
    assert rows[0] == [
        "level", "weights remaining (%)", "test accuracy (%)", "no retraining (%)",
        "random reinit (%)", "early stop (iteration)",
    ]
    assert rows[2] == ["0", "100.0", "90.00", "-", "-", "100"]
    assert rows[3] == ["1", "80.0", "89.00", "75.00", "83.00", "100"]
    assert rows[4] == ["2", "64.0", "88.00", "70.00", "81.00", "100"]
    assert len(rows) == 5
    assert "±" not in report.format_table(_results())


def test_format_table_several_seeds_shows_mean_and_std():
    rows = _cells(report.format_table(_results(seeds=(0, 1))))
    # seeds give 0.90 and 0.92: mean 91.00, sample std 1.41 points; iterations 100 and 110
    assert rows[2] == ["0", "100.0", "91.00 ± 1.41", "-", "-", "105 ± 7"]
    assert rows[3][3] == "75.00 ± 0.00"


def test_format_table_has_columns_only_for_what_was_measured():
    header = _cells(report.format_table(_results(controls=(), early_stop=False)))[0]
    assert header == ["level", "weights remaining (%)", "test accuracy (%)", "no retraining (%)"]
    both = _cells(report.format_table(_results(controls=("random_reinit", "random_pruning"))))[0]
    assert "random reinit (%)" in both and "random pruning (%)" in both


def test_format_table_other_formats_and_errors():
    assert report.format_table(_results(), tablefmt="latex_booktabs").startswith("\\begin{tabular}")
    with pytest.raises(ValueError, match=r"format_table\(\): tablefmt must be one of .*got 'nope'"):
        report.format_table(_results(), tablefmt="nope")
    with pytest.raises(TypeError, match=r"format_table\(\): results must be .*got dict"):
        report.format_table({"levels": []})


def test_percent_labels_tell_tiny_levels_apart():
    fractions = [0.8 ** level for level in range(21)]
    labels = report.percent_labels(fractions)
    assert labels[:4] == ["100.0", "80.0", "64.0", "51.2"]
    assert labels[-3:] == ["1.8", "1.4", "1.2"]
    assert report.percent_labels([0.0094, 0.0075, 0.00075]) == ["0.94", "0.75", "0.075"]
    # 0.1 % steps are equal at one decimal: every label gets more digits
    assert report.percent_labels([1.0, 0.9999, 0.9998]) == ["100.00", "99.99", "99.98"]
    assert len(set(report.percent_labels([0.999 ** level for level in range(50)]))) == 50


def test_plot_results_writes_png_and_svg(tmp_path: Path):
    paths = report.plot_results(_results(seeds=(0, 1)), tmp_path / "figures")
    names = ["accuracy.png", "accuracy.svg", "early_stop.png", "early_stop.svg"]
    assert [path.name for path in paths] == names
    for path in paths:
        assert path.parent == tmp_path / "figures"
        assert path.stat().st_size > 1000
    assert paths[0].read_bytes()[:8] == PNG_MAGIC and paths[2].read_bytes()[:8] == PNG_MAGIC
    assert b"<svg" in paths[1].read_bytes()[:500]
    assert report.figure_paths(tmp_path / "figures") == paths
    assert not list((tmp_path / "figures").glob("*.tmp"))


def test_plot_results_skips_early_stop_when_not_recorded(tmp_path: Path):
    paths = report.plot_results(_results(early_stop=False), tmp_path)
    assert [path.name for path in paths] == ["accuracy.png", "accuracy.svg"]


def test_accuracy_figure_curves_axis_and_reference_line():
    figure = report.accuracy_figure(_results(controls=("random_reinit",)))
    axes = figure.axes[0]
    labels = axes.get_legend_handles_labels()[1]
    assert labels == ["winning ticket", "random reinit", "no retraining", "dense (90.0 %)"]
    assert axes.get_xscale() == "log"
    left, right = axes.get_xlim()
    assert left > 100.0 > 64.0 > right  # reversed: sparser to the right
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["100", "80.0", "64.0"]
    assert axes.get_xlabel() == "Weights remaining (%, log scale)"
    assert "synthetic" in axes.get_title() and "rewind to initialization" in axes.get_title()
    dense = [line for line in axes.get_lines() if line.get_label().startswith("dense")][0]
    assert list(dense.get_ydata()) == [90.0, 90.0]


def test_accuracy_figure_error_bars_with_several_seeds():
    axes = report.accuracy_figure(_results(seeds=(0, 1))).axes[0]
    assert len(axes.containers) == 3  # ticket, random reinit, no retraining
    assert "mean ± std of 2 seeds" in axes.get_title()
    # one seed: plain lines
    assert report.accuracy_figure(_results()).axes[0].containers == []


def test_ticket_label_follows_the_rewind_mode():
    config = ExperimentConfig(dataset="synthetic", rewind="step", rewind_step=5, iterations=50)
    results = Results.from_records(config, _records())
    labels = report.accuracy_figure(results).axes[0].get_legend_handles_labels()[1]
    assert labels[0] == "winning ticket (rewind to step 5)"


def test_plot_results_works_from_threads(tmp_path: Path):
    results, errors = _results(), []

    def draw(index: int) -> None:
        try:
            report.plot_results(results, tmp_path / str(index))
        except Exception as error:  # noqa: BLE001 - surfaced by the assert below
            errors.append(error)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(len(report.figure_paths(tmp_path / str(i))) == 4 for i in range(3))


def test_figure_functions_reject_bad_input():
    with pytest.raises(TypeError, match=r"plot_results\(\): results must be .*got list"):
        report.plot_results([], "unused")
    empty = Results(ExperimentConfig(), [])
    with pytest.raises(ValueError, match=r"accuracy_figure\(\): results must hold at least one level"):
        report.accuracy_figure(empty)


def test_public_api():
    assert sorted(report.__all__) == sorted([
        "format_table", "percent_labels", "plot_run", "plot_results", "plot_transfer", "accuracy_figure",
        "early_stop_figure", "figure_paths", "FIGURE_NAMES", "FIGURE_FORMATS",
    ])
