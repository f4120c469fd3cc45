"""The ``lth-prune`` command: ``run`` an IMP experiment, ``report`` a finished one.

The flags of ``lth-prune run`` are generated from :class:`lth_prune.imp.ExperimentConfig`'s
fields, their help from its docstring and their choices from the registries, so the command
line cannot drift from the library. The CLI only builds a config and calls
:func:`lth_prune.imp.run`; it holds no experiment logic.

Example:
    >>> from lth_prune.cli import main
    >>> main(["run", "--preset", "lenet-mnist", "--rounds", "2", "--print-config"])  # doctest: +ELLIPSIS
    {
      "model": "lenet300_100",
      "dataset": "mnist",
    ...
    0
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from lth_prune import __version__, data, imp, models, report
from lth_prune.imp.config import DECAYS, OPTIMIZERS, PRUNING_MODES
from lth_prune.imp.results import RunStore

__all__ = ["build_parser", "config_from_args", "main"]

PROG = "lth-prune"
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
"""
RUN_NOTES = """\
Flags given explicitly override the preset (with --resume and no preset: the settings saved in
--out). Settings whose default is "none" also accept the value none (e.g. --iterations none);
--controls none runs no control and --exclude none prunes every layer. --epochs without
--iterations trains for epochs even if the preset gives iterations.
"""
# Where the choices of a setting come from; a setting not named here takes any value of its type.
_CHOICES: dict[str, Callable[[], Sequence[str]]] = {
    "model": models.names,
    "dataset": data.dataset_names,
    "optimizer": lambda: OPTIMIZERS,
    "decay": lambda: DECAYS,
    "pruning": lambda: PRUNING_MODES,
    "rewind": lambda: imp.REWIND_MODES,
    "controls": lambda: imp.CONTROLS,
}
_NONE = "none"
_WIDTH = 88
_METAVARS = {"int": "N", "float": "X", "int | float": "NUMBER"}


@dataclass(frozen=True)
class _SettingType:
    """A config field's annotation, parsed: ``"int | None"`` is ``("int", optional=True, sequence=False)``."""

    base: str
    optional: bool
    sequence: bool


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout, wraps help texts, and leaves room for long flag names."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


class _SequenceAction(argparse.Action):
    """Stores a tuple; the single value ``none`` stores an empty tuple."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        values = list(values)
        if _NONE in values:
            if len(values) > 1:
                parser.error(f"argument {option_string}: {_NONE} cannot be combined with other values")
            values = []
        setattr(namespace, self.dest, tuple(values))


def main(argv: list[str] | None = None) -> int:
    """Run the ``lth-prune`` command line.

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 when data or a run's results are missing, 2 for a
        usage error or an invalid setting (reported before any training), 130 when
        interrupted.

    Example:
        >>> main(["run", "--rate", "1.5"])  # the message goes to standard error
        2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help (0) and on usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.handler(args)


def build_parser() -> argparse.ArgumentParser:
    """The ``lth-prune`` argument parser, with its ``run`` and ``report`` subcommands.

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
        prog=PROG, formatter_class=_HelpFormatter, epilog=EXAMPLES,
        description=textwrap.fill(
            "Find lottery tickets: iterative magnitude pruning with rewinding (Frankle & Carbin, 2019), "
            "its controls, and tables and figures of accuracy at every sparsity level.", _WIDTH,
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    run = commands.add_parser(
        "run", formatter_class=_HelpFormatter, epilog=RUN_NOTES + "\n" + EXAMPLES,
        help="run an IMP experiment and write its results, figures and checkpoints",
        description=textwrap.fill(
            "Run iterative magnitude pruning: train, prune, rewind, repeat. Writes config.json, "
            "results.json, results.csv, the accuracy and early_stop figures (PNG, SVG) and one checkpoint "
            "per level into --out, then prints the table.", _WIDTH,
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
    _add_setting_arguments(run.add_argument_group(
        "experiment settings", "Every field of lth_prune.imp.ExperimentConfig (defaults: the quick digits run)."
    ))
    run.set_defaults(handler=_run_command)

    show = commands.add_parser(
        "report", formatter_class=_HelpFormatter, help="print a finished run's table",
        description="Print the table of a finished run (and re-draw its figures with --plots).",
    )
    show.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="directory written by lth-prune run")
    show.add_argument("--plots", action="store_true", help="re-draw the figures into RUN_DIR")
    show.add_argument("--tablefmt", default="github", metavar="FORMAT",
                      help="a tabulate table format: github, plain, latex_booktabs, ... (default: github)")
    show.set_defaults(handler=_report_command)
    return parser


def config_from_args(args: argparse.Namespace, base: imp.ExperimentConfig | None = None) -> imp.ExperimentConfig:
    """The :class:`lth_prune.imp.ExperimentConfig` a parsed ``lth-prune run`` asks for.

    Starts from ``args.preset`` if given, else from ``base`` (``lth-prune run --resume`` passes
    the run directory's saved config), else from the defaults, and applies every setting given
    on the command line. ``--epochs`` without ``--iterations`` clears ``iterations``, which
    would otherwise win.

    Args:
        args: a namespace from ``build_parser().parse_args(["run", ...])``.
        base: the settings to start from when no preset is named.

    Returns:
        The validated config.

    Raises:
        ValueError: if a setting is invalid (the message says which and why).
        TypeError: if a setting has the wrong type.

    Example:
        >>> args = build_parser().parse_args(["run", "--preset", "lenet-mnist", "--epochs", "2"])
        >>> config = config_from_args(args)
        >>> config.dataset, config.epochs, config.iterations
        ('mnist', 2.0, None)
    """
    given = _given_settings(args)
    if "epochs" in given and "iterations" not in given:
        given["iterations"] = None
    preset = getattr(args, "preset", None)
    if preset is not None:
        return imp.ExperimentConfig.preset(preset, **given)
    start = base.to_dict() if base is not None else {}
    return imp.ExperimentConfig.from_dict({**start, **given})


def _run_command(args: argparse.Namespace) -> int:
    try:
        # Resuming a named run directory needs no settings: they are the ones it started with.
        saved = RunStore(args.out).read_config() if args.resume and args.out is not None else None
        config = config_from_args(args, base=saved)
    except (ValueError, TypeError) as error:
        return _fail(error, 2)
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    out = args.out if args.out is not None else Path("runs") / config.run_name()
    if (out / "config.json").is_file() and not args.resume:
        return _fail(f"{out} already holds a run; pass --resume to continue it, or choose another --out.", 2)
    try:
        results = imp.run(config, run_dir=out, resume=args.resume, progress=False if args.quiet else None)
    except OSError as error:  # data not found (the message says where it looked), disk full, ...
        return _fail(error, 1)
    except (ValueError, TypeError) as error:
        return _fail(error, 2)
    except KeyboardInterrupt:
        return _fail(f"interrupted; finished levels are kept in {out}; continue with: lth-prune run --out {out} --resume", 130)
    print(report.format_table(results))
    print()
    print(f"results: {out / 'results.json'}, {out / 'results.csv'}")
    print("figures: " + ", ".join(str(path) for path in report.figure_paths(out)))
    return 0


def _report_command(args: argparse.Namespace) -> int:
    try:
        results = imp.Results.load(args.run_dir)
    except FileNotFoundError:
        return _fail(f"{args.run_dir} has no results.json; is it a finished lth-prune run directory?", 1)
    try:
        print(report.format_table(results, tablefmt=args.tablefmt))
    except ValueError as error:
        return _fail(error, 2)
    if args.plots:
        try:
            paths = report.plot_results(results, args.run_dir)
        except OSError as error:
            return _fail(error, 1)
        print()
        print("figures: " + ", ".join(str(path) for path in paths))
    return 0


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(imp.ExperimentConfig) if hasattr(args, f.name)}


def _fail(message: object, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _add_setting_arguments(group: argparse._ArgumentGroup) -> None:
    docs = _field_docs(imp.ExperimentConfig)
    defaults = imp.ExperimentConfig()
    for field in dataclasses.fields(imp.ExperimentConfig):
        kind = _parse_type(str(field.type))
        choices = list(_CHOICES[field.name]()) if field.name in _CHOICES else None
        default = getattr(defaults, field.name)
        text = _plain(docs.get(field.name, ""), docs) + f" (default: {_show(default)})"
        flag = "--" + field.name.replace("_", "-")
        # SUPPRESS keeps flags that were not given out of the namespace, so a preset is only
        # overridden by what the user typed.
        options: dict[str, Any] = dict(dest=field.name, default=argparse.SUPPRESS, help=text.replace("%", "%%"))
        if kind.base == "bool" and not kind.sequence:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
            continue
        convert = _converter(kind, choices)
        if kind.sequence:
            options.update(nargs="+", type=convert, action=_SequenceAction, metavar=_METAVARS.get(kind.base, "NAME"))
            if choices is not None:
                options.update(choices=choices + [_NONE])
        else:
            options.update(type=convert)
            if choices is not None:
                options.update(choices=choices)
            elif kind.base in _METAVARS:
                options.update(metavar=_METAVARS[kind.base])
            elif field.name.endswith("_dir"):
                options.update(metavar="DIR")
        group.add_argument(flag, **options)


def _converter(kind: _SettingType, choices: list[str] | None) -> Callable[[str], Any]:
    scalar = {"int": int, "float": float, "str": str, "int | float": _int_or_float}[kind.base]

    def convert(text: str) -> Any:
        if text == _NONE and (kind.optional or kind.sequence):
            return _NONE if kind.sequence else None
        if choices is not None:
            # Accept the registries' spellings ("Conv-2", "LeNet300_100") as the canonical name.
            canonical = {_normalized(choice): choice for choice in choices}
            return canonical.get(_normalized(text), text)
        return scalar(text)

    convert.__name__ = kind.base.replace(" | ", "_or_")  # argparse names it in "invalid int value"
    return convert


def _parse_type(annotation: str) -> _SettingType:
    parts = [part.strip() for part in annotation.split("|")]
    optional = "None" in parts
    parts = [part for part in parts if part != "None"]
    match = re.fullmatch(r"tuple\[(\w+), \.\.\.\]", parts[0]) if len(parts) == 1 else None
    if match:
        return _SettingType(match.group(1), optional, True)
    base = " | ".join(parts)
    if base not in ("int", "float", "str", "bool", "int | float"):
        raise TypeError(f"build_parser(): ExperimentConfig field types must be simple, got {annotation!r}.")
    return _SettingType(base, optional, False)


def _field_docs(cls: type) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring: {name: one-line text}."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    start = lines.index("Args:") + 1 if "Args:" in lines else len(lines)
    docs: dict[str, str] = {}
    name = None
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break  # the next section
        entry = re.match(r"^ {4}(\w+): (.*)$", line)
        if entry:
            name = entry.group(1)
            docs[name] = entry.group(2).strip()
        elif name is not None and line.strip():
            docs[name] += " " + line.strip()
    return docs


def _plain(text: str, settings: dict[str, str]) -> str:
    """Docstring reST to command-line words: ``rewind="step"`` -> --rewind step, ``None`` -> none."""
    text = re.sub(r":(?:func|meth):`~?([\w.]+)`", r"\1()", text)
    text = re.sub(r":\w+:`~?([\w.]+)`", r"\1", text)

    def literal(match: re.Match[str]) -> str:
        content = match.group(1)
        assignment = re.fullmatch(r"(\w+)=[\"']?([^\"']*)[\"']?", content)
        if assignment and assignment.group(1) in settings:
            return f"--{assignment.group(1).replace('_', '-')} {assignment.group(2)}"
        if content in settings:
            return "--" + content.replace("_", "-")
        if content == "None":
            return _NONE
        return content.strip("\"'")

    return re.sub(r"``(.+?)``", literal, text)


def _show(default: Any) -> str:
    if default is None:
        return _NONE
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return " ".join(str(value) for value in default) or _NONE
    return str(default)


def _int_or_float(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _normalized(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")
