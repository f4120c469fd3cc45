"""``lth-prune stability``: instability of the dense network against the rewind step (:mod:`lth_prune.studies.stability`)."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from tabulate import tabulate

from lth_prune import imp
from lth_prune.cli._settings import WIDTH, HelpFormatter, add_setting_arguments, config_from_args, fail
from lth_prune.imp.store import RunDirectoryError, RunStore
from lth_prune.studies.stability import rewind_stability
from lth_prune.report.stability import plot_rewind_stability

# The settings of how the dense network trains; those of pruning do not apply.
STABILITY_SETTINGS = (
    "model", "dataset", "data_dir", "download", "optimizer", "lr", "momentum", "weight_decay", "batch_size",
    "epochs", "iterations", "warmup", "decay", "seeds", "val_size", "limit", "augment", "eval_every",
    "masked_training", "device", "stability_batchnorm",
)
NOTES = """\
examples:
  lth-prune stability --steps 0 10 50 100 500
      LeNet-300-100 on digits: is it stable at initialization already?
  lth-prune stability --preset conv2-cifar10 --data-dir ~/data --steps 0 100 500 2000 --seeds 0 1 2
      Conv-2 on CIFAR-10: instability against k, mean ± std of three seeds
"""


def add_stability_parser(commands: Any) -> None:
    """Add the ``stability`` subcommand to ``commands`` (the parser's subparsers)."""
    parser = commands.add_parser(
        "stability", formatter_class=HelpFormatter, epilog=NOTES,
        help="instability of the dense network against the rewind step (linear mode connectivity)",
        description=textwrap.fill(
            "Linear mode connectivity (Frankle et al., ICML 2020): for each rewind step k, train the dense "
            "network to step k, train two copies on to the end with different SGD noise, and measure the test "
            "error along the straight line between them. Prints the instability (the path's largest error "
            "minus its endpoints' mean) against k, writes config.json and stability.json into --out, and the "
            "figures stability_rewind (instability against k) and stability_paths (error along each path).",
            WIDTH,
        ),
    )
    options = parser.add_argument_group("stability options")
    options.add_argument("--steps", nargs="+", type=int, required=True, metavar="K",
                         help="rewind steps to measure (0: the initialization)")
    options.add_argument("--preset", choices=sorted(imp.PRESETS), metavar="NAME",
                         help="start from a preset's settings: " + ", ".join(sorted(imp.PRESETS)))
    options.add_argument("--out", type=Path, metavar="DIR",
                         help="directory (default: runs/<model>-<dataset>-<hash>-stability)")
    options.add_argument("--quiet", action="store_true", help="no progress bars")
    add_setting_arguments(parser.add_argument_group("training settings"), only=STABILITY_SETTINGS)
    parser.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as error:
        return fail(error, 2)
    out = args.out if args.out is not None else Path("runs") / f"{config.run_name()}-stability"
    try:
        result = rewind_stability(config, args.steps, run_dir=out, progress=False if args.quiet else None)
        paths = plot_rewind_stability(result, out)
    except (OSError, RuntimeError, RunDirectoryError) as error:
        return fail(error, 1)
    except (ValueError, TypeError) as error:
        return fail(error, 2)
    several = len(config.seeds) > 1
    rows = [
        [str(k), f"{100 * value:.2f}" + (f" ± {100 * spread:.2f}" if several else ""),
         f"{100 * errors[0]:.2f}", f"{100 * errors[-1]:.2f}", f"{100 * max(errors):.2f}"]
        for k, value, spread, errors in zip(result.steps, result.instability, result.spread, result.errors)
    ]
    print(tabulate(rows, headers=["rewind step k", "instability (%)", "error A (%)", "error B (%)", "largest error (%)"],
                   tablefmt="github", disable_numparse=True, colalign=("right",) * 5))
    print()
    print("results: " + ", ".join(str(path) for path in RunStore(out).results_files()))
    print("figures: " + ", ".join(str(path) for path in paths))
    return 0
