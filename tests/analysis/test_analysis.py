"""Tests for lth_prune.analysis (mask overlap, masks and initial values of a run) and its report
tables and figures (lth_prune.report.anatomy, lth_prune.report.compare)."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from lth_prune import analysis, imp
from lth_prune.imp.store import RunStore
from lth_prune.report import anatomy
from lth_prune.report import compare
from lth_prune.tickets import read_ticket

LAYERS = ("classifier.0.weight", "classifier.2.weight", "classifier.4.weight")


@pytest.fixture(scope="module")
def two_seed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LeNet-300-100 on the synthetic set, levels 0-2, seeds 0 and 1, a few steps per level."""
    run_dir = tmp_path_factory.mktemp("analysis") / "run"
    config = imp.ExperimentConfig(dataset="synthetic", rounds=2, iterations=3, controls=(), seeds=(0, 1))
    imp.run(config, run_dir=run_dir, progress=False)
    return run_dir


def _random_mask(shape: tuple[int, ...], kept: int, seed: int) -> torch.Tensor:
    flat = torch.zeros(torch.Size(shape).numel(), dtype=torch.bool)
    flat[torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(seed))[:kept]] = True
    return flat.view(shape)


def test_overlap_of_a_ticket_with_itself_is_one_and_with_its_complement_zero():
    masks = {"a": _random_mask((30, 20), 150, 0), "b": _random_mask((10,), 4, 1)}
    itself = analysis.mask_overlap(masks, masks)
    assert itself["overall"] == 1.0 and itself["layers"] == {"a": 1.0, "b": 1.0}
    disjoint = analysis.mask_overlap(masks, {name: ~mask for name, mask in masks.items()})
    assert disjoint["overall"] == 0.0 and disjoint["layers"] == {"a": 0.0, "b": 0.0}


def test_overlap_counts_per_layer_and_pooled():
    a = {"x": torch.tensor([1, 1, 0, 0]), "y": torch.tensor([True, True, True, False, False, False])}
    b = {"x": torch.tensor([1, 0, 1, 0]), "y": torch.tensor([True, True, True, False, False, False])}
    result = analysis.mask_overlap(a, b)
    assert result["layers"] == {"x": pytest.approx(1 / 3), "y": 1.0}
    assert result["overall"] == pytest.approx((1 + 3) / (3 + 3))
    # Independent random masks keeping 2 of 4 and 3 of 6: expected intersections 1 and 1.5.
    assert result["chance"] == pytest.approx((1 + 1.5) / ((2 + 2 - 1) + (3 + 3 - 1.5)))
    assert analysis.mask_overlap(a, b, layers=["x"])["layers"] == {"x": pytest.approx(1 / 3)}


def test_overlap_chance_matches_random_masks():
    masks = [{"w": _random_mask((200, 100), 2000, seed)} for seed in range(2)]
    result = analysis.mask_overlap(*masks)
    assert result["chance"] == pytest.approx(0.1 / 1.9)
    assert result["overall"] == pytest.approx(result["chance"], abs=0.01)


def test_overlap_of_two_empty_masks_is_one():
    empty = {"w": torch.zeros(3, 3, dtype=torch.bool)}
    assert analysis.mask_overlap(empty, empty)["overall"] == 1.0


@pytest.mark.parametrize(
    ("masks_b", "layers", "message"),
    [
        ({"other": torch.ones(2)}, None, r"masks_b must mask the same weights as masks_a, got \['other'\] and \['w'\]"),
        ({"w": torch.ones(3)}, None, r"the masks of w must have the same shape, got \(2,\) and \(3,\)"),
        ({"w": torch.ones(2)}, ["v"], r"layers must be masked in both tickets, got 'v'"),
        ({"w": torch.ones(2)}, [], r"there must be at least one layer to compare, got none"),
    ],
)
def test_overlap_rejects_masks_that_do_not_compare(masks_b, layers, message):
    with pytest.raises(ValueError, match=r"mask_overlap\(\): " + message):
        analysis.mask_overlap({"w": torch.ones(2)}, masks_b, layers=layers)


def test_overlap_matrix_square_and_rectangular():
    a, b = {"w": torch.tensor([1, 1, 1, 1])}, {"w": torch.tensor([1, 1, 0, 0])}
    square = analysis.overlap_matrix({"a": a, "b": b})
    assert square.rows == square.columns == ("a", "b")
    assert square.values == ((1.0, 0.5), (0.5, 1.0))
    rectangle = analysis.overlap_matrix({"a": a}, {"a": a, "b": b, "c": {"w": torch.tensor([0, 0, 1, 1])}})
    assert rectangle.values == ((1.0, 0.5, 0.5),)
    # Only the weights both have with the same shape are compared.
    wider = {"w": torch.tensor([1, 1, 0, 0]), "out": torch.ones(5)}
    assert analysis.overlap_matrix({"a": a}, {"wider": wider}).values == ((0.5,),)
    with pytest.raises(ValueError, match=r"overlap_matrix\(\): the tickets must share a weight of the same shape"):
        analysis.overlap_matrix({"a": a}, {"z": {"w": torch.ones(3)}})


def test_run_masks_levels_and_nested_overlap(two_seed_run):
    assert analysis.finished_levels(two_seed_run) == [0, 1, 2]
    dense = analysis.load_masks(two_seed_run, 0)
    assert sorted(dense) == sorted(LAYERS) and all(bool(mask.all()) for mask in dense.values())
    assert tuple(dense["classifier.0.weight"].shape) == (300, 64)
    _, trained = RunStore(two_seed_run).trained(2, 1)
    assert all(torch.equal(analysis.load_masks(two_seed_run, 2, seed=1)[name], trained[name].bool()) for name in LAYERS)
    # Nested masks: level 0 against level n overlaps exactly by the fraction level n keeps.
    matrix = analysis.level_overlap(two_seed_run, seed=1)
    results = imp.Results.load(two_seed_run)
    remaining = [record["weights_remaining"] for level in results.levels for record in level["seeds"] if record["seed"] == 1]
    assert matrix.values[0] == pytest.approx(tuple(remaining))
    assert [matrix.values[i][i] for i in range(3)] == [1.0, 1.0, 1.0]
    assert matrix.rows[1].startswith("level 1 (80.")
    fc1 = analysis.level_overlap(two_seed_run, layer="classifier.0.weight")
    assert fc1.values[0][1] == pytest.approx(0.8) and fc1.layer == "classifier.0.weight"


def test_seed_and_run_overlap(two_seed_run):
    seeds = analysis.seed_overlap(two_seed_run, 2)
    assert seeds.rows == ("seed 0", "seed 1") and seeds.values[0][0] == 1.0
    # Different initializations find different tickets: near what random masks would share.
    masks = [analysis.load_masks(two_seed_run, 2, seed) for seed in (0, 1)]
    assert seeds.values[0][1] == pytest.approx(analysis.mask_overlap(*masks)["overall"])
    assert 0.0 < seeds.values[0][1] < 0.9
    runs = analysis.run_overlap(two_seed_run, two_seed_run, seed_b=1)
    assert len(runs.rows) == len(runs.columns) == 3
    assert runs.values[2][2] == pytest.approx(seeds.values[0][1])


def test_init_values_split_the_rewind_point_by_the_mask(two_seed_run):
    values = analysis.init_values(two_seed_run, 2)
    masks = analysis.load_masks(two_seed_run, 2)
    _, rewind_point, _ = read_ticket(two_seed_run / "level_0" / "seed_0" / "ticket.pt")
    for name in LAYERS:
        surviving, pruned = values[name]
        weights = rewind_point[name].flatten()
        keep = masks[name].flatten()
        assert torch.equal(surviving, weights[keep]) and torch.equal(pruned, weights[~keep])


def test_missing_run_or_level_is_a_clear_error(two_seed_run, tmp_path):
    with pytest.raises(FileNotFoundError, match="must hold a config.json"):
        analysis.finished_levels(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"level must be a finished level of seed 0 .*\(\[0, 1, 2\]\), got 7"):
        analysis.load_masks(two_seed_run, 7)


def test_format_overlap_and_layers_tables(two_seed_run):
    table = anatomy.format_overlap(analysis.seed_overlap(two_seed_run, 0), tablefmt="plain")
    assert table.splitlines()[1].split()[-2:] == ["1.00", "1.00"]
    layers = anatomy.format_layers(imp.Results.load(two_seed_run), tablefmt="plain").splitlines()
    assert layers[0].split() == ["level", "total", "classifier.0", "classifier.2", "classifier.4"]
    assert layers[2].split()[2:] == ["80.0", "80.0", "90.0"]
    with pytest.raises(ValueError, match=r"format_overlap\(\): tablefmt must be one of"):
        anatomy.format_overlap(analysis.seed_overlap(two_seed_run, 0), tablefmt="nope")


def test_analysis_figures(two_seed_run, tmp_path):
    matrix = analysis.level_overlap(two_seed_run)
    heat = anatomy.overlap_figure(matrix)
    assert [text.get_text() for text in heat.axes[0].texts][:3] == ["1.00", "0.80", "0.64"]
    lines = anatomy.layers_figure(imp.Results.load(two_seed_run)).axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["classifier.0", "classifier.2", "classifier.4"]
    values = analysis.init_values(two_seed_run, 2)
    assert len(anatomy.init_values_figure(values).axes) == 3
    pooled = anatomy.init_values_figure(values, pooled=True)
    assert len(pooled.axes) == 1 and pooled.axes[0].get_title().startswith("all layers")
    with pytest.raises(ValueError, match=r"init_values_figure\(\): values must hold at least one layer"):
        anatomy.init_values_figure({})
    written = anatomy.plot_analysis(two_seed_run, out_dir=tmp_path)
    assert [path.name for path in written] == [
        f"{name}.{ext}" for name in anatomy.ANALYSIS_FIGURE_NAMES for ext in ("png", "svg")
    ]
    assert all(path.read_bytes()[:4] in (b"\x89PNG", b"<?xm") for path in written)


def test_comparison_table_and_figure(two_seed_run):
    results = imp.Results.load(two_seed_run)
    shorter = imp.Results(results.config, results.levels[:2])
    overlap = {0: {"overall": 1.0, "chance": 1.0}, 1: {"overall": 0.5, "chance": 0.25}}
    table = compare.format_comparison([results, shorter], ["A", "B"], overlap=overlap)
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]
    assert rows[0] == [
        "level", "A: remaining (%)", "A: ticket (%)", "B: remaining (%)", "B: ticket (%)",
        "overlap (Jaccard)", "random masks",
    ]
    assert rows[3][0] == "1" and rows[3][1] == rows[3][3] == "80.1" and rows[3][-2:] == ["0.500", "0.250"]
    assert " ± " in rows[3][2]  # two seeds: mean ± std
    assert rows[4][0] == "2" and rows[4][3:] == ["-", "-", "-", "-"]  # level 2 is A's only
    figure = compare.comparison_figure([results, shorter], ["A", "B"])
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["A", "B"] and labels[-1].startswith("dense (")  # one dense network: one line
    with pytest.raises(ValueError, match=r"format_comparison\(\): labels must have one label per run \(2\), got 1"):
        compare.format_comparison([results, shorter], ["A"])


def test_comparison_figure_of_many_runs_with_branches_stays_legible():
    """Six runs with three controls each: a panel per run below the tickets' axes, and no
    matplotlib layout warning (24 curves on one axes collapsed it)."""
    branches = ("random_reinit", "random_pruning", "inverted_scores")
    config = imp.ExperimentConfig(controls=branches)
    runs = []
    for run in range(6):
        records = [
            {"level": n, "seed": 0, "weights_remaining": 0.64 ** n, "layers": {}, "test_accuracy": 0.9 - 0.01 * run * n,
             **({f"{name}_accuracy": 0.8 for name in branches} if n else {})}
            for n in range(4)
        ]
        records[0]["test_accuracy"] = 0.9 + 0.001 * run  # six dense networks: six dense lines
        runs.append(imp.Results.from_records(config, records))
    labels = [f"run {run}" for run in range(6)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = compare.comparison_figure(runs, labels)
        figure.canvas.draw()
    assert len(figure.axes) == 7
    tickets = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert tickets[:6] == labels and len(tickets) == 12 and tickets[6].startswith("dense run 0 (90.0 %)")
    assert [axes.get_title() for axes in figure.axes[1:]] == labels
    panel = [text.get_text() for text in figure.axes[1].get_legend().get_texts()]
    assert panel == ["ticket", "random reinit", "random pruning", "inverted scores"]


def test_finished_levels_per_seed(two_seed_run):
    assert analysis.finished_levels(two_seed_run, seed=1) == [0, 1, 2]
    assert analysis.finished_levels(two_seed_run, seed=5) == []
