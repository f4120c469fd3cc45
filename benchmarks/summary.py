"""Time and memory of each variant relative to dense: a table and a figure.

From a saved run::

    pytest benchmarks --benchmark-json out.json
    python -m benchmarks.summary out.json            # table; out_ratios.png and .svg

The same table is printed at the end of every ``pytest benchmarks`` run that times something.
A ratio divides two medians measured in the same run (same machine, same load), never medians
from different runs.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from tabulate import tabulate

__all__ = [
    "SPEEDUP_PASSES",
    "RatioRow",
    "SpeedupRow",
    "default_stem",
    "format_speedups",
    "format_table",
    "main",
    "ratio_rows",
    "rows_from_json",
    "save_figure",
    "speedup_rows",
]

BASELINE = "dense"
# The variants that exploit sparsity, and the pass whose speed-up is compared with the ideal.
SPEEDUP_PASSES = {
    "to-sparse": ("inference", "fc_inference", "ticket_inference", "ticket_sparse_layers", "conv_layer"),
    "sparse-kernels": ("train_step", "imp_round"),
}
_TIMING_KEYS = ("model", "variant", "weights_remaining", "pass", "param_bytes")


@dataclass(frozen=True)
class RatioRow:
    """One model variant at one sparsity level, relative to the dense model.

    Attributes:
        model: the registry name.
        variant: e.g. ``"torch-prune"``; the ``"dense"`` row is the baseline itself.
        weights_remaining: fraction in (0, 1] of the convolution and linear weights left.
        time_ratio: per pass (in the order run), median time of this variant / median time
            of dense; ``None`` where either was not measured.
        time_spread: per pass, the quartiles of the block ratios where the pass was timed in
            blocks between dense blocks (``paired_ratio_q1``, ``paired_ratio_q3``), else absent.
        param_bytes: bytes of parameters, buffers and masked weights this variant holds.
        memory_ratio: ``param_bytes`` / the dense model's, ``None`` if dense was not run.
        ideal: per pass, the ideal speed-up the benchmark gave (``ideal_speedup``: the FLOP
            ideal, dense multiply-adds / multiply-adds of the nonzero weights), else absent.
    """

    model: str
    variant: str
    weights_remaining: float
    time_ratio: dict[str, float | None]
    param_bytes: int
    memory_ratio: float | None
    time_spread: dict[str, tuple[float, float]] = field(default_factory=dict)
    ideal: dict[str, float] = field(default_factory=dict)


def rows_from_json(path: Path) -> list[dict[str, Any]]:
    """The timing results in a ``--benchmark-json`` file: each ``extra_info`` plus its median.

    Benchmarks without the timing keys (other benchmarks saved in the same file) are skipped.
    """
    data = json.loads(Path(path).read_text())
    return [
        {**bench["extra_info"], "median": bench["stats"]["median"]}
        for bench in data.get("benchmarks", [])
        if all(key in bench.get("extra_info", {}) for key in _TIMING_KEYS)
    ]


def ratio_rows(rows: Iterable[dict[str, Any]]) -> list[RatioRow]:
    """Divide each variant's median time and memory by dense's, same model and pass.

    Where the row was timed in blocks between dense blocks (``paired_ratio``, see
    :class:`benchmarks._timing.PairedBaseline`), that is its ratio; else its median over the
    dense time measured beside it (``dense_median``), else over the median of the dense
    benchmark of that model and pass.

    Args:
        rows: dicts with the keys ``model``, ``variant``, ``weights_remaining``, ``pass``,
            ``median`` (seconds), ``param_bytes`` and optionally ``paired_ratio`` and
            ``dense_median`` (seconds).

    Returns:
        One row per (model, variant, weights remaining): models in the order they were run,
        dense first, then the variants from dense to sparse.
    """
    rows = list(rows)
    passes = list(dict.fromkeys(r["pass"] for r in rows))
    dense_time = {(r["model"], r["pass"]): r["median"] for r in rows if r["variant"] == BASELINE}
    dense_bytes = {r["model"]: r["param_bytes"] for r in rows if r["variant"] == BASELINE}
    grouped: dict[tuple[str, str, float], dict[str, Any]] = {}
    for row in rows:
        key = (row["model"], row["variant"], float(row["weights_remaining"]))
        entry = grouped.setdefault(
            key,
            {"param_bytes": row["param_bytes"], "times": {}, "baselines": {}, "paired": {},
             "spread": {}, "ideal": {}},
        )
        if row.get("ideal_speedup"):
            entry["ideal"][row["pass"]] = row["ideal_speedup"]
        if row.get("dense_param_bytes"):
            dense_bytes.setdefault(row["model"], row["dense_param_bytes"])
        entry["times"][row["pass"]] = row["median"]
        if row.get("dense_median"):
            entry["baselines"][row["pass"]] = row["dense_median"]
        if row.get("paired_ratio"):
            entry["paired"][row["pass"]] = row["paired_ratio"]
            if row.get("paired_ratio_q1") is not None and row.get("paired_ratio_q3") is not None:
                entry["spread"][row["pass"]] = (row["paired_ratio_q1"], row["paired_ratio_q3"])
    model_order = list(dict.fromkeys(r["model"] for r in rows))
    variant_order = list(dict.fromkeys([BASELINE, *(r["variant"] for r in rows)]))
    result = []
    for (model, variant, weights_remaining), entry in sorted(
        grouped.items(),
        key=lambda item: (
            model_order.index(item[0][0]), variant_order.index(item[0][1]), -item[0][2]
        ),
    ):
        ratios: dict[str, float | None] = {}
        for pass_name in passes:
            time = entry["times"].get(pass_name)
            if pass_name in entry["paired"]:  # measured in blocks between dense blocks
                ratios[pass_name] = entry["paired"][pass_name]
                continue
            baseline = entry["baselines"].get(pass_name, dense_time.get((model, pass_name)))
            ratios[pass_name] = None if time is None or not baseline else time / baseline
        baseline_bytes = dense_bytes.get(model)
        result.append(
            RatioRow(
                model,
                variant,
                weights_remaining,
                ratios,
                entry["param_bytes"],
                entry["param_bytes"] / baseline_bytes if baseline_bytes else None,
                dict(entry["spread"]),
                dict(entry["ideal"]),
            )
        )
    return result


@dataclass(frozen=True)
class SpeedupRow:
    """How much of the ideal speed-up of a sparse variant one pass reaches.

    Attributes:
        model: the registry name.
        variant: e.g. ``"to-sparse"``.
        pass_name: e.g. ``"inference"``.
        weights_remaining: fraction in (0, 1] of the weights left.
        speedup: dense time / variant time, end to end (``2.0``: twice as fast).
        ideal: the speed-up if time fell with the work: the benchmark's FLOP ideal where it
            gave one, else ``1 / weights_remaining``.
        fraction_of_ideal: ``speedup / ideal``.
    """

    model: str
    variant: str
    pass_name: str
    weights_remaining: float
    speedup: float
    ideal: float
    fraction_of_ideal: float


def speedup_rows(
    rows: Sequence[RatioRow], passes: dict[str, tuple[str, ...]] | None = None
) -> list[SpeedupRow]:
    """The end-to-end speed-up of each sparse variant against the ideal, per model and level.

    Args:
        rows: what :func:`ratio_rows` returned.
        passes: variant -> the passes to report (default :data:`SPEEDUP_PASSES`).

    Returns:
        One row per (model, variant, weights remaining < 1, pass) that was measured.
    """
    passes = SPEEDUP_PASSES if passes is None else passes
    result = []
    for row in rows:
        if row.weights_remaining >= 1.0:  # nothing pruned: no speed-up to expect
            continue
        for pass_name in passes.get(row.variant, ()):
            ratio = row.time_ratio.get(pass_name)
            if not ratio:
                continue
            ideal = row.ideal.get(pass_name, 1.0 / row.weights_remaining)
            result.append(
                SpeedupRow(
                    row.model, row.variant, pass_name, row.weights_remaining, 1.0 / ratio,
                    ideal, (1.0 / ratio) / ideal,
                )
            )
    return result


def format_speedups(rows: Sequence[SpeedupRow]) -> str:
    """A GitHub-markdown table of :func:`speedup_rows`."""
    headers = ["model", "variant", "pass", "weights left", "speed-up", "ideal", "fraction of ideal"]
    body = [
        [
            row.model,
            row.variant,
            row.pass_name,
            f"{row.weights_remaining:.0%}",
            f"{row.speedup:.2f}x",
            f"{row.ideal:.0f}x" if row.ideal >= 10 else f"{row.ideal:.1f}x",
            f"{row.fraction_of_ideal:.1%}",
        ]
        for row in rows
    ]
    note = (
        "speed-up = dense time / variant time, same run; ideal = 1 / weights remaining, or where "
        "the benchmark gives it (ticket_inference, ticket_sparse_layers, conv_layer) the FLOP ideal: dense "
        "multiply-adds / multiply-adds of the nonzero weights"
    )
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) + f"\n{note}"


def format_table(rows: Sequence[RatioRow]) -> str:
    """A GitHub-markdown table: time ratio per pass, parameter memory and its ratio to dense."""
    passes = list(rows[0].time_ratio) if rows else []
    headers = ["model", "variant", "weights left", *passes, "params MiB", "params / dense"]
    body = [
        [
            row.model,
            row.variant,
            f"{row.weights_remaining:.0%}",
            *(_ratio(row.time_ratio[pass_name], row.time_spread.get(pass_name)) for pass_name in passes),
            f"{row.param_bytes / 2**20:.2f}",
            _ratio(row.memory_ratio),
        ]
        for row in rows
    ]
    note = (
        "time ratio = median over 8-32 blocks of (variant block median / median of the dense blocks "
        "either side), same model and pass, with the blocks' quartiles in brackets; rows timed "
        "without paired dense blocks: median / dense median"
    )
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True) + f"\n{note}"


def default_stem(json_path: Path) -> Path:
    """Where the figure of a JSON file goes: ``out.json`` -> ``out_ratios`` (.png, .svg)."""
    return json_path.with_name(json_path.stem + "_ratios")


def save_figure(rows: Sequence[RatioRow], stem: Path) -> list[Path]:
    """Time ratio vs weights remaining (log axis), one panel per pass, one line per model.

    Where a pass was timed in blocks between dense blocks, error bars span the quartiles of
    the block ratios.

    Args:
        rows: what :func:`ratio_rows` returned.
        stem: path without suffix; ``.png`` and ``.svg`` are written.

    Returns:
        The paths written.
    """
    # The object API needs no display backend, so this works on headless machines and in CI.
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    passes = list(rows[0].time_ratio) if rows else []
    columns = 1 if len(passes) == 1 else 2
    legend_width = 2.6  # inches on the right for the legend
    width = 5.5 * columns + legend_width
    figure = Figure(figsize=(width, 3.5 * ((len(passes) + 1) // 2)))
    axes = figure.subplots((len(passes) + 1) // 2, columns, sharex=True, squeeze=False)
    models = list(dict.fromkeys(row.model for row in rows))
    variants = [v for v in dict.fromkeys(row.variant for row in rows) if v != BASELINE]
    styles = ["-", "--", ":", "-."]
    for axis, pass_name in zip(axes.flat, passes):
        for model_index, model in enumerate(models):
            for variant_index, variant in enumerate(variants):
                measured = [
                    row for row in rows
                    if row.model == model and row.variant == variant
                    and row.time_ratio[pass_name] is not None
                ]
                if not measured:
                    continue
                ratios = [row.time_ratio[pass_name] for row in measured]
                # Error bars: the quartiles of the block ratios, where the pass has them.
                spreads = [
                    row.time_spread.get(pass_name, (ratio, ratio)) for row, ratio in zip(measured, ratios)
                ]
                axis.errorbar(
                    [row.weights_remaining * 100 for row in measured],
                    ratios,
                    yerr=[
                        [ratio - low for ratio, (low, _) in zip(ratios, spreads)],
                        [high - ratio for ratio, (_, high) in zip(ratios, spreads)],
                    ],
                    marker="o",
                    capsize=2,
                    color=f"C{model_index}",
                    linestyle=styles[variant_index % len(styles)],
                    label=f"{model} ({variant})",
                )
        axis.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        axis.set_xscale("log")
        axis.set_xticks([100, 50, 20, 10, 5, 2, 1])
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlim(110, 0.9)  # from dense (left) to sparse (right), as IMP proceeds
        axis.set_title(pass_name)
        axis.set_ylabel("median time / dense")
    for axis in axes[-1]:
        axis.set_xlabel("weights remaining (%)")
    for axis in axes.flat[len(passes):]:
        axis.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="center right", fontsize="small")
    figure.suptitle("Time of masked passes relative to the dense model (same run)")
    figure.tight_layout(rect=(0, 0, 1 - legend_width / width, 0.97))
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + suffix) for suffix in (".png", ".svg")]
    for path in paths:
        figure.savefig(path, dpi=150)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Print the ratio table of a ``--benchmark-json`` file and save its figure."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.summary",
        description="Ratio table and figure from `pytest benchmarks --benchmark-json FILE`.",
    )
    parser.add_argument("results", type=Path, help="JSON file written by --benchmark-json")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where to save the figure (default: next to RESULTS)",
    )
    parser.add_argument("--no-figure", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if not args.results.is_file():
        parser.error(
            f"RESULTS must be a JSON file written by --benchmark-json, got {args.results}."
        )
    rows = rows_from_json(args.results)
    if not rows:
        parser.error(
            f"RESULTS holds no timing benchmark (was it run with --benchmark-disable?), "
            f"got {args.results}."
        )
    table = ratio_rows(rows)
    print(format_table(table))
    speedups = speedup_rows(table)
    if speedups:
        print()
        print(format_speedups(speedups))
    if not args.no_figure:
        stem = default_stem(args.results)
        if args.out_dir is not None:
            stem = args.out_dir / stem.name
        for path in save_figure(table, stem):
            print(f"saved {path}")
    return 0


def _ratio(value: float | None, spread: tuple[float, float] | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if spread is None else f"{value:.2f} [{spread[0]:.2f}, {spread[1]:.2f}]"


if __name__ == "__main__":
    raise SystemExit(main())
