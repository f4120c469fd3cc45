"""``lth-prune compare``: runs in one table and one figure, with the overlap of the first two's tickets."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from lth_prune import analysis, imp
from lth_prune.cli._settings import WIDTH, HelpFormatter, fail
from lth_prune.imp.store import RunDirectoryError
from lth_prune.report import compare

NOTES = """\
examples:
  lth-prune compare runs/fm runs/fm-to-digits
      a Fashion-MNIST run and the transfer of its tickets to digits
  lth-prune compare runs/lenet-seed0 runs/lenet-seed1 --labels first second --out figures/
      two runs of the same network: how much do their tickets overlap at each level?
  lth-prune compare runs/imp runs/snip runs/grasp runs/synflow --labels IMP SNIP GraSP SynFlow
      IMP against pruning at initialization, one curve per method
"""


def add_compare_parser(commands: Any) -> None:
    """Add the ``compare`` subcommand to ``commands`` (the parser's subparsers)."""
    parser = commands.add_parser(
        "compare", formatter_class=HelpFormatter, epilog=NOTES,
        help="print two or more runs side by side and overlay their accuracy",
        description=textwrap.fill(
            "Print one table of two or more finished runs by level (weights remaining, ticket and control "
            "accuracies of each) and write compare.png/.svg, their accuracy curves on one axis with error "
            "bars over seeds and each run's dense accuracy as a line. When the first two runs' tickets share "
            "layers of the same shape, the table adds their mask overlap (Jaccard index of the surviving "
            "weights, over those layers) at each level both have, next to what random masks of the same "
            "sparsity would give, and compare_overlap.png/.svg shows every level of one against every level "
            "of the other.", WIDTH,
        ),
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="two or more directories written by lth-prune run or transfer")
    parser.add_argument("--labels", nargs="+", metavar="LABEL",
                        help="the runs' names in the table and figures, one per run (default: A B C ...)")
    parser.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                        help="where to write the figures (default: the current directory)")
    parser.add_argument("--tablefmt", default="github", metavar="FORMAT",
                        help="a tabulate table format: github, plain, latex_booktabs, ... (default: github)")
    parser.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        return fail(f"compare needs at least two RUN_DIRs, got {len(args.runs)}.", 2)
    labels = args.labels if args.labels is not None else [_letters(index) for index in range(len(args.runs))]
    if len(labels) != len(args.runs):
        return fail(f"--labels must give one label per run ({len(args.runs)}), got {len(labels)}.", 2)
    args.labels = labels
    runs = []
    for run_dir in args.runs:
        try:
            runs.append(imp.Results.load(run_dir))
        except FileNotFoundError:
            return fail(f"{run_dir} has no results.json; is it a finished lth-prune run directory?", 1)
        except RunDirectoryError as error:
            return fail(error, 1)
    overlap, layers, note = _overlap(args.runs[:2])
    try:
        print(compare.format_comparison(runs, args.labels, overlap=overlap, tablefmt=args.tablefmt))
    except ValueError as error:
        return fail(error, 2)
    print()
    for label, run_dir, results in zip(args.labels, args.runs, runs):
        config = results.config
        print(f"{label}: {run_dir} ({config.model} on {config.dataset}, seeds {list(config.seeds)})")
    print(f"overlap: {note}" if not layers else
          f"overlap: Jaccard index of the surviving weights of {', '.join(layers)} (seed "
          f"{runs[0].config.seeds[0]} of {labels[0]}, {runs[1].config.seeds[0]} of {labels[1]})")
    try:
        matrix = analysis.run_overlap(*args.runs[:2]) if layers else None
        paths = compare.plot_comparison(runs, args.labels, args.out, overlap=matrix)
    except (OSError, RunDirectoryError) as error:
        return fail(error, 1)
    print("figures: " + ", ".join(str(path) for path in paths))
    return 0


def _letters(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: the default labels."""
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("A") + rest) + text
    return text


def _overlap(run_dirs: list[Path]) -> tuple[dict[int, dict[str, Any]], list[str], str]:
    """The overlap of the two runs' tickets at each level both have, over the layers they share."""
    try:
        levels = [analysis.finished_levels(run_dir) for run_dir in run_dirs]
    except FileNotFoundError:
        return {}, [], "not measured (a directory holds no run)"
    common = sorted(set(levels[0]) & set(levels[1]))
    if not common:
        return {}, [], "not measured (no level finished in both runs)"
    first = [analysis.load_masks(run_dir, common[0]) for run_dir in run_dirs]
    layers = [name for name in first[0] if name in first[1] and first[0][name].shape == first[1][name].shape]
    if not layers:
        return {}, [], "not measured (the runs' networks share no layer of the same shape)"
    overlap = {
        level: analysis.mask_overlap(*(analysis.load_masks(run_dir, level) for run_dir in run_dirs), layers=layers)
        for level in common
    }
    return overlap, layers, ""
