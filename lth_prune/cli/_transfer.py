"""``lth-prune transfer``: train a run's tickets on another data set (:mod:`lth_prune.imp.transfer`)."""
from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

from lth_prune import imp, report
from lth_prune.cli._settings import WIDTH, HelpFormatter, add_setting_arguments, config_from_args, fail, show_default
from lth_prune.imp.store import RunDirectoryError, RunStore, TicketPath
from lth_prune.imp.transfer import default_controls, read_transfer, transfer

# The settings of how a network trains on the target data; how the source pruned stays its own.
TRANSFER_SETTINGS = (
    "dataset", "data_dir", "download", "optimizer", "lr", "momentum", "weight_decay", "batch_size", "epochs",
    "iterations", "warmup", "decay", "controls", "seeds", "val_size", "limit", "augment", "eval_every",
    "masked_training", "device",
)
NOTES = """\
Training settings not given are the source run's, except --controls (default: both). --seeds are the
trainings on the target data (mean ± std); each trains the source ticket of the same seed, or of
--seed. The output layer is new when the class counts differ: a fresh initialization with a random
mask keeping the fraction of weights the source's output layer kept. Every other layer must fit
the target images: --resize resizes them (bilinear; channels averaged or repeated) to the source's
input shape; without it, a layer that does not fit is an error, reported before any training.

examples:
  lth-prune transfer --ticket runs/fm --dataset digits --resize
      every level of a Fashion-MNIST run, trained on the 8x8 digits resized to 28x28
  lth-prune transfer --ticket runs/fm/level_5 --dataset digits --resize --epochs 20 --seeds 0 1 2
      one level (and the dense network), three trainings of seed 0's ticket
"""


def add_transfer_parser(commands: Any) -> None:
    """Add the ``transfer`` subcommand to ``commands`` (the parser's subparsers)."""
    parser = commands.add_parser(
        "transfer", formatter_class=HelpFormatter, epilog=NOTES,
        help="train a run's tickets on another data set, next to the dense network and both controls",
        description=textwrap.fill(
            "Ticket transfer (Morcos et al., 2019): take the masks and rewind point of the tickets a run "
            "found, fit them to another data set, train them there, and measure them next to the dense "
            "network and the controls (random reinit: same masks, fresh initialization; random pruning: "
            "random masks with the same per-layer sparsity), all trained on the target data. Writes a run "
            "directory of the usual form (plus transfer.json) into --out and prints the table.", WIDTH,
        ),
    )
    options = parser.add_argument_group("transfer options")
    options.add_argument("--ticket", required=True, type=Path, metavar="PATH",
                         help="RUN_DIR (every level), RUN_DIR/level_N (that level and the dense network) or "
                         "RUN_DIR/level_N/seed_S (that seed's ticket)")
    options.add_argument("--seed", type=int, metavar="N",
                         help="the source seed whose tickets every target seed trains (default: the same seed)")
    options.add_argument("--resize", action="store_true",
                         help="resize the target images to the source's input shape when a layer would not fit")
    options.add_argument("--out", type=Path, metavar="DIR",
                         help="run directory (default: runs/<source run>-to-<dataset>[-level_N])")
    options.add_argument("--resume", action="store_true",
                         help="continue the transfer in --out from its last finished level (give the command it "
                         "started with, plus --resume)")
    options.add_argument("--quiet", action="store_true", help="no progress bars")
    options.add_argument("--print-config", action="store_true",
                         help="print the target settings as JSON and exit without running")
    add_setting_arguments(
        parser.add_argument_group("training settings on the target data"),
        only=TRANSFER_SETTINGS, required=("dataset",), default_text=_default_text,
    )
    parser.set_defaults(handler=_command)


def _command(args: argparse.Namespace) -> int:
    try:
        ticket = TicketPath.parse(args.ticket)
        if args.seed is not None and ticket.seed is not None and args.seed != ticket.seed:
            raise ValueError(f"--seed must agree with the ticket's seed ({ticket.seed}), got {args.seed}.")
        source = ticket.run_dir
        levels = None if ticket.level is None else [ticket.level]
        seed = ticket.seed if ticket.seed is not None else args.seed
        saved = RunStore(source).read_config()
        if saved is None:
            return fail(f"{source} has no config.json; --ticket must name a run directory written by lth-prune run.", 1)
        # Both controls unless --controls says otherwise: a transfer means little without them.
        config = config_from_args(args, base=saved if hasattr(args, "controls") else saved.replace(controls=default_controls()))
    except RunDirectoryError as error:
        return fail(error, 1)
    except (ValueError, TypeError) as error:
        return fail(error, 2)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    out = args.out if args.out is not None else Path("runs") / f"{source.name}-to-{config.dataset}{ticket.suffix}"
    try:
        results = transfer(source, config, levels=levels, seed=seed, resize=args.resize, run_dir=out,
                           resume=args.resume, progress=False if args.quiet else None)
        paths = report.plot_run(out)
    except (OSError, RuntimeError, RunDirectoryError) as error:
        return fail(error, 1)
    except (ValueError, TypeError) as error:
        return fail(error, 2)
    except KeyboardInterrupt:
        return fail(f"interrupted; finished levels are kept in {out}; continue with the same command and --resume", 130)
    print(report.format_table(results))
    print()
    print(_describe(results, source, read_transfer(out) or {}))
    print("results: " + ", ".join(str(path) for path in RunStore(out).results_files()))
    print("figures: " + ", ".join(str(path) for path in paths))
    print(f"side by side with the source: lth-prune compare {source} {out}")
    return 0


def _default_text(name: str, default: Any) -> str:
    if name == "controls":
        return show_default(default_controls())
    return "the source run's"


def _describe(results: imp.Results, source: Path, info: dict[str, Any]) -> str:
    if info.get("output_layer") == "new":
        output = "new (fresh initialization, random mask at the source output layer's sparsity)"
    else:
        output = "transferred with the ticket"
    source_accuracy = ", ".join(
        f"{level['level']}: {100.0 * level['source_test_accuracy']:.2f}"
        for level in results.levels if level.get("source_test_accuracy") is not None
    )
    resized = f"; target images resized to {tuple(info['input_shape'])}" if info.get("resized") else ""
    return (
        f"tickets from {source} (test accuracy (%) there by level: {source_accuracy or '-'})\n"
        f"output layer: {output}{resized}"
    )
