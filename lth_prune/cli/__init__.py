"""The ``lth-prune`` command: ``run`` an IMP experiment, ``report`` it, ``transfer`` its tickets,
``compare`` two runs.

The flags of ``lth-prune run`` are generated from :class:`lth_prune.imp.ExperimentConfig`'s
fields, their help from its docstring and their choices from the registries, so the command
line cannot drift from the library. The CLI only builds a config and calls the library
(:func:`lth_prune.imp.run`, :func:`lth_prune.imp.transfer.transfer`, :mod:`lth_prune.analysis`,
:mod:`lth_prune.report`); it holds no experiment logic.

Example:
    >>> from lth_prune.cli import main
    >>> main(["run", "--preset", "lenet-mnist", "--rounds", "2", "--print-config"])  # doctest: +ELLIPSIS
    {
      "model": "lenet300_100",
      "model_kwargs": null,
      "dataset": "mnist",
    ...
    0
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import warnings
from pathlib import Path

from lth_prune import __version__, analysis, imp, report
from lth_prune.cli._compare import add_compare_parser
from lth_prune.cli._settings import (
    PROG,
    WIDTH,
    HelpFormatter,
    add_plugin_argument,
    add_setting_arguments,
    config_from_args,
    fail,
    preload_plugins,
)
from lth_prune.cli._stability import add_stability_parser
from lth_prune.cli._sweep import add_sweep_parser
from lth_prune.cli._transfer import add_transfer_parser
from lth_prune.imp.store import RunDirectoryError, RunStore
from lth_prune.report import anatomy

__all__ = ["build_parser", "config_from_args", "main"]

EXAMPLES = """\
examples:
  lth-prune run
      LeNet-300-100 on scikit-learn's 8x8 digits, 12 rounds, random-reinit control (about a minute on a CPU)
  lth-prune run --preset lenet-mnist
      Frankle & Carbin's LeNet-300-100 on MNIST (Figure 3 of the paper)
  lth-prune run --preset conv2-cifar10 --data-dir ~/data
      Conv-2 on CIFAR-10 with the paper's settings, data read from ~/data
  lth-prune run --preset network-cifar10
      the original CIFAR-10 Network study (SGD, global pruning, both controls)
  lth-prune run --preset lenet-mnist --seeds 0 1 2 --controls random_reinit random_pruning
      three seeds (mean ± std) and both controls
  lth-prune run --out runs/lenet --resume
      continue an interrupted run from its last finished level, with the settings it started with
  lth-prune report runs/lenet --plots
      print a finished run's table and re-draw its figures
  lth-prune report runs/lenet --analysis
      also mask overlap between levels and seeds, weights per layer, initial values of the ticket
  lth-prune transfer --ticket runs/fm --dataset digits --resize
      train every ticket of a Fashion-MNIST run on digits (resized to 28x28), with both controls
  lth-prune compare runs/fm runs/fm-to-digits
      two runs in one table and one figure, with the overlap of their tickets
  lth-prune run --plugin my_lab/tickets.py --method my-search --controls my_branch
      a method and a control registered in your own module (see the docs' Architecture page)
"""
RUN_NOTES = """\
Flags given explicitly override the preset (with --resume and no preset: the settings saved in
--out). Settings whose default is "none" also accept the value none (e.g. --iterations none);
--controls none runs no control and --exclude none prunes every layer. --epochs without
--iterations trains for epochs even if the preset gives iterations.
"""


def main(argv: list[str] | None = None) -> int:
    """Run the ``lth-prune`` command line.

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 when data or a run's files are missing or damaged,
        a write fails or the run directory is in use by another run, 2 for a usage error or an
        invalid setting (reported before any training), 130 when interrupted.

    Example:
        >>> main(["run", "--rate", "1.5"])  # the message goes to standard error
        2
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        preload_plugins(argv)
    except ValueError as error:
        return fail(error, 2)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help (0) and on usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    # The library's warnings (a stale lock taken over, ...) are for the person at the terminal:
    # said like the errors, without Python's source line.
    formatter = warnings.formatwarning
    warnings.formatwarning = lambda message, *rest, **kw: f"{PROG}: warning: {message}\n"
    try:
        return args.handler(args)
    finally:
        warnings.formatwarning = formatter


def build_parser() -> argparse.ArgumentParser:
    """The ``lth-prune`` argument parser, with its ``run``, ``report``, ``transfer`` and ``compare`` subcommands.

    Exposed so documentation can render the command-line reference from the parser itself.

    Returns:
        A fresh :class:`argparse.ArgumentParser`; ``parse_args`` gives a namespace whose
        ``handler`` runs the chosen subcommand. Settings not given on the command line are
        absent from the namespace (``argparse.SUPPRESS``), which is how presets are overridden.

    Example:
        >>> args = build_parser().parse_args(["run", "--rounds", "3", "--seeds", "0", "1"])
        >>> args.rounds, args.seeds, hasattr(args, "lr")
        (3, (0, 1), False)
    """
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=HelpFormatter, epilog=EXAMPLES,
        description=textwrap.fill(
            "Find lottery tickets: iterative magnitude pruning with rewinding (Frankle & Carbin, 2019), "
            "its controls, and tables and figures of accuracy at every sparsity level.", WIDTH,
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    run = commands.add_parser(
        "run", formatter_class=HelpFormatter, epilog=RUN_NOTES + "\n" + EXAMPLES,
        help="run an IMP experiment and write its results, figures and checkpoints",
        description=textwrap.fill(
            "Run iterative magnitude pruning: train, prune, rewind, repeat. Writes config.json, "
            "results.json, results.csv, the accuracy and early_stop figures (PNG, SVG) and one checkpoint "
            "per level into --out, then prints the table.", WIDTH,
        ),
    )
    options = run.add_argument_group("run options")
    options.add_argument("--preset", choices=sorted(imp.PRESETS), metavar="NAME",
                         help="start from a preset's settings: " + ", ".join(sorted(imp.PRESETS))
                         + " (the paper's networks and the original Network study)")
    options.add_argument("--out", metavar="DIR", type=Path,
                         help="run directory (default: runs/<model>-<dataset>-<hash of non-default settings>)")
    options.add_argument("--resume", action="store_true",
                         help="continue the run in --out from its last finished level (settings not given "
                         "are the ones it started with)")
    options.add_argument("--quiet", action="store_true",
                         help="no progress bars (they are also off when standard error is not a terminal)")
    options.add_argument("--print-config", action="store_true",
                         help="print the resulting settings as JSON and exit without running")
    add_setting_arguments(run.add_argument_group(
        "experiment settings", "Every field of lth_prune.imp.ExperimentConfig (defaults: the quick digits run)."
    ))
    run.set_defaults(handler=_run_command)

    show = commands.add_parser(
        "report", formatter_class=HelpFormatter, help="print a finished run's table",
        description=textwrap.fill(
            "Print the table of a finished run (and re-draw its figures with --plots). With --analysis, "
            "also print the weights remaining per layer and the mask overlap (Jaccard index of the "
            "surviving weights) between levels and between seeds, and write the figures layers, "
            "overlap_levels, overlap_seeds (several seeds) and init_values (initial values of surviving "
            "and pruned weights) into RUN_DIR.", WIDTH,
        ),
    )
    show.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="directory written by lth-prune run or transfer")
    show.add_argument("--plots", action="store_true", help="re-draw the figures into RUN_DIR")
    show.add_argument("--analysis", action="store_true",
                      help="also the ticket's anatomy: per-layer sparsity, mask overlap, initial values (tables and figures)")
    show.add_argument("--seed", type=int, metavar="N", help="the seed --analysis looks at (default: the run's first)")
    show.add_argument("--level", type=int, metavar="N",
                      help="the level of the seed overlap and the initial values (default: the last)")
    show.add_argument("--tablefmt", default="github", metavar="FORMAT",
                      help="a tabulate table format: github, plain, latex_booktabs, ... (default: github)")
    show.set_defaults(handler=_report_command)
    add_transfer_parser(commands)
    add_compare_parser(commands)
    add_stability_parser(commands)
    add_sweep_parser(commands)
    for command in commands.choices.values():
        add_plugin_argument(command)
    return parser


def _run_command(args: argparse.Namespace) -> int:
    try:
        # Resuming a named run directory needs no settings: they are the ones it started with.
        saved = RunStore(args.out).read_config() if args.resume and args.out is not None else None
        config = config_from_args(args, base=saved)
    except RunDirectoryError as error:
        return fail(error, 1)
    except (ValueError, TypeError) as error:
        return fail(error, 2)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    out = args.out if args.out is not None else Path("runs") / config.run_name()
    try:
        results = imp.run(config, run_dir=out, resume=args.resume, progress=False if args.quiet else None)
        paths = report.plot_run(out) if int(os.environ.get("RANK", "0")) == 0 else []
    except (OSError, RuntimeError, RunDirectoryError) as error:  # data not found, disk full, directory busy
        return fail(error, 1)
    except (ValueError, TypeError) as error:
        return fail(error, 2)
    except KeyboardInterrupt:
        return fail(f"interrupted; finished levels are kept in {out}; continue with: lth-prune run --out {out} --resume", 130)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun only rank 0 reports, as only rank 0 writes
    print(report.format_table(results))
    print()
    print("results: " + ", ".join(str(path) for path in RunStore(out).results_files()))
    print("figures: " + ", ".join(str(path) for path in paths))
    return 0


def _report_command(args: argparse.Namespace) -> int:
    try:
        results = imp.Results.load(args.run_dir)
    except FileNotFoundError:
        return fail(f"{args.run_dir} has no results.json; is it a finished lth-prune run directory?", 1)
    except RunDirectoryError as error:
        return fail(error, 1)
    try:
        print(report.format_table(results, tablefmt=args.tablefmt))
    except ValueError as error:
        return fail(error, 2)
    paths = []
    try:
        if args.plots:
            paths += report.plot_run(args.run_dir)
        if args.analysis:
            paths += _print_analysis(args, results)
    except (OSError, RunDirectoryError) as error:  # tickets missing or damaged, disk full
        return fail(error, 1)
    except ValueError as error:
        return fail(error, 2)
    if paths:
        print()
        print("figures: " + ", ".join(str(path) for path in paths))
    return 0


def _print_analysis(args: argparse.Namespace, results: imp.Results) -> list[Path]:
    seed = results.config.seeds[0] if args.seed is None else args.seed
    if seed not in results.config.seeds:
        raise ValueError(f"--seed must be one of the run's seeds {list(results.config.seeds)}, got {seed}.")
    levels = analysis.finished_levels(args.run_dir, seed)
    level = levels[-1] if args.level is None else args.level
    if level not in levels:
        raise ValueError(f"--level must be a finished level of seed {seed} ({levels}), got {level}.")
    print()
    print(anatomy.format_layers(results, tablefmt=args.tablefmt))
    print()
    print(anatomy.format_overlap(analysis.level_overlap(args.run_dir, seed), tablefmt=args.tablefmt))
    if len(results.config.seeds) > 1:
        print()
        print(anatomy.format_overlap(analysis.seed_overlap(args.run_dir, level), tablefmt=args.tablefmt))
    return anatomy.plot_analysis(args.run_dir, seed=seed, level=level)
