"""``lth-prune sweep``: a grid of settings, one job per run (:mod:`lth_prune.studies.sweep`)."""
from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from lth_prune import imp
from lth_prune.cli._settings import WIDTH, HelpFormatter, add_setting_arguments, config_from_args, fail, parse_value
from lth_prune.imp.store import RunDirectoryError
from lth_prune.studies.sweep import EXECUTORS, sweep
from lth_prune.report import compare

NOTES = """\
--grid takes NAME=VALUE,VALUE,... once per setting; the runs are the product of the grids, and the
other settings (a --preset, flags) are shared. Calling the same command again resumes the sweep:
finished runs are kept, unfinished ones continue from their last finished level.

examples:
  lth-prune sweep --grid method=imp,snip,grasp,synflow,random --pruning global --seeds 0 1 2 --out sweeps/methods
      five methods, three seeds each, in processes on this machine
  lth-prune sweep --preset lenet-mnist --grid rewind_step=0,100,500 --rewind step --executor slurm \\
      --slurm-partition gpu --gpus-per-node 1 --out sweeps/rewind
      one Slurm job per rewind step
"""


def add_sweep_parser(commands: Any) -> None:
    """Add the ``sweep`` subcommand to ``commands`` (the parser's subparsers)."""
    parser = commands.add_parser(
        "sweep", formatter_class=HelpFormatter, epilog=NOTES,
        help="run a grid of settings, one job per run, and compare them",
        description=textwrap.fill(
            "Run the experiment at every point of a grid of settings, one job per run (submitit: processes "
            "on this machine, or a Slurm cluster), each into its own run directory under --out, then print "
            "the comparison table of all runs and write compare.png/.svg.", WIDTH,
        ),
    )
    options = parser.add_argument_group("sweep options")
    options.add_argument("--grid", action="append", required=True, metavar="NAME=VALUES",
                         help="a setting and its comma-separated values (repeat for more settings)")
    options.add_argument("--out", type=Path, required=True, metavar="DIR", help="the sweep directory")
    options.add_argument("--executor", choices=EXECUTORS, default="local",
                         help="local (processes here), slurm (a cluster) or inline (this process) (default: local)")
    options.add_argument("--slurm-partition", metavar="NAME", help="Slurm partition of the jobs")
    options.add_argument("--gpus-per-node", type=int, metavar="N", help="GPUs per Slurm job")
    options.add_argument("--timeout-min", type=int, default=24 * 60, metavar="N",
                         help="each job's time limit in minutes (default: 1440)")
    options.add_argument("--preset", choices=sorted(imp.PRESETS), metavar="NAME",
                         help="start from a preset's settings: " + ", ".join(sorted(imp.PRESETS)))
    add_setting_arguments(parser.add_argument_group("shared settings", "Every field of lth_prune.imp.ExperimentConfig."))
    parser.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    try:
        base = config_from_args(args)
        grid = dict(_parse_grid(text) for text in args.grid)
    except (ValueError, TypeError) as error:
        return fail(error, 2)
    slurm = {key: value for key, value in (("slurm_partition", args.slurm_partition), ("gpus_per_node", args.gpus_per_node))
             if value is not None}
    try:
        runs = sweep(base, grid, sweep_dir=args.out, executor=args.executor, slurm=slurm, timeout_min=args.timeout_min)
        labels = [run.label for run in runs]
        paths = compare.plot_comparison([run.results for run in runs], labels, args.out)
    except (OSError, RuntimeError, RunDirectoryError) as error:
        return fail(error, 1)
    except (ValueError, TypeError) as error:
        return fail(error, 2)
    print(compare.format_comparison([run.results for run in runs], labels))
    print()
    for run in runs:
        print(f"{run.label}: {run.run_dir}")
    print("figures: " + ", ".join(str(path) for path in paths))
    return 0


def _parse_grid(text: str) -> tuple[str, list[Any]]:
    name, equals, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not equals or not values:
        raise ValueError(f"--grid must be NAME=VALUE,VALUE,..., got {text!r}.")
    return name, [parse_value(name, value.strip()) for value in values.split(",")]
