"""Flags generated from :class:`lth_prune.imp.ExperimentConfig`, and what the commands share.

The flags' names come from the config's fields, their help from its docstring and their
choices from the registries, so the command line cannot drift from the library.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Collection, Sequence

from lth_prune import imp
from lth_prune.data import DATASETS
from lth_prune.imp.config import BATCHNORM_MODES, DECAYS, OPTIMIZERS, PRUNING_MODES
from lth_prune.models import MODELS
from lth_prune.registry import load_plugins

PROG = "lth-prune"
# Where the choices of a setting come from; a setting not named here takes any value of its type.
_CHOICES: dict[str, Callable[[], Sequence[str]]] = {
    "model": MODELS.names,
    "dataset": DATASETS.names,
    "optimizer": lambda: OPTIMIZERS,
    "decay": lambda: DECAYS,
    "pruning": lambda: PRUNING_MODES,
    "stability_batchnorm": lambda: BATCHNORM_MODES,
    "rewind": imp.REWIND_POLICIES.names,
    "method": imp.METHODS.names,
    "controls": imp.BRANCHES.names,
}
_NONE = "none"
# Settings with a flag of their own shape, not generated: --plugin MODULE, repeatable, imported
# before the parser is built (see preload_plugins).
_NOT_GENERATED = ("plugins",)
PLUGIN_HELP = (
    "import MODULE first (a module name or the path of a .py file): the models, data sets, methods, "
    "branches and rewind modes it registers become valid choices; repeatable; stored with the run, so "
    "--resume, report and compare import it again"
)
# Settings whose registry spellings are made canonical but that take other values too
# (model: "torchvision:<name>", "timm:<name>"; ExperimentConfig checks them).
_OPEN_CHOICES = ("model",)
WIDTH = 88
_METAVARS = {"int": "N", "float": "X", "int | float": "NUMBER", "dict": "JSON"}


@dataclass(frozen=True)
class _SettingType:
    """A config field's annotation, parsed: ``"int | None"`` is ``("int", optional=True, sequence=False)``."""

    base: str
    optional: bool
    sequence: bool


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
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


def config_from_args(args: argparse.Namespace, base: imp.ExperimentConfig | None = None) -> imp.ExperimentConfig:
    """The :class:`lth_prune.imp.ExperimentConfig` a parsed ``lth-prune run`` asks for.

    Starts from ``args.preset`` if given, else from ``base`` (``lth-prune run --resume`` passes
    the run directory's saved config, ``lth-prune transfer`` the source run's), else from the
    defaults, and applies every setting given on the command line. ``--epochs`` without
    ``--iterations`` clears ``iterations``, which would otherwise win.

    Args:
        args: a namespace from ``build_parser().parse_args(["run", ...])``.
        base: the settings to start from when no preset is named.

    Returns:
        The validated config.

    Raises:
        ValueError: if a setting is invalid (the message says which and why).
        TypeError: if a setting has the wrong type.

    Example:
        >>> from lth_prune.cli import build_parser
        >>> args = build_parser().parse_args(["run", "--preset", "lenet-mnist", "--epochs", "2"])
        >>> config = config_from_args(args)
        >>> config.dataset, config.epochs, config.iterations
        ('mnist', 2.0, None)
    """
    given = given_settings(args)
    if "epochs" in given and "iterations" not in given:
        given["iterations"] = None
    preset = getattr(args, "preset", None)
    if preset is not None:
        return imp.ExperimentConfig.preset(preset, **given)
    start = base.to_dict() if base is not None else {}
    return imp.ExperimentConfig.from_dict({**start, **given})


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The config settings typed on the command line (the others are absent from ``args``)."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(imp.ExperimentConfig) if hasattr(args, f.name)}


def fail(message: object, status: int) -> int:
    """Print ``lth-prune: error: <message>`` to standard error and return ``status``."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def add_setting_arguments(
    group: argparse._ArgumentGroup,
    *,
    only: Collection[str] | None = None,
    required: Collection[str] = (),
    default_text: Callable[[str, Any], str] | None = None,
) -> None:
    """Add one flag per field of :class:`lth_prune.imp.ExperimentConfig` to ``group``.

    Args:
        group: where to add them.
        only: the fields to add; default: all.
        required: fields whose flag must be given.
        default_text: ``(field, default) -> text`` shown as the flag's default; default: the
            config's default value.
    """
    docs = _field_docs(imp.ExperimentConfig)
    defaults = imp.ExperimentConfig()
    for field in dataclasses.fields(imp.ExperimentConfig):
        if (only is not None and field.name not in only) or field.name in _NOT_GENERATED:
            continue
        kind = _parse_type(str(field.type))
        choices = list(_CHOICES[field.name]()) if field.name in _CHOICES else None
        default = getattr(defaults, field.name)
        shown = default_text(field.name, default) if default_text is not None else show_default(default)
        text = _plain(docs.get(field.name, ""), docs) + f" (default: {shown})"
        flag = "--" + field.name.replace("_", "-")
        # SUPPRESS keeps flags that were not given out of the namespace, so a preset (or a
        # source run's settings) is only overridden by what the user typed.
        options: dict[str, Any] = dict(dest=field.name, default=argparse.SUPPRESS, help=text.replace("%", "%%"))
        if field.name in required:
            options.update(required=True, help=_plain(docs.get(field.name, ""), docs).replace("%", "%%"))
        if kind.base == "bool" and not kind.sequence:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
            continue
        convert = _converter(kind, choices)
        if kind.sequence:
            options.update(nargs="+", type=convert, action=_SequenceAction, metavar=_METAVARS.get(kind.base, "NAME"))
            if choices is not None:
                options.update(choices=choices + [_NONE], help=options["help"] + "; registered: " + ", ".join(choices))
        else:
            options.update(type=convert)
            if choices is not None and field.name not in _OPEN_CHOICES:
                options.update(choices=choices)
            elif choices is not None:
                options.update(metavar="NAME", help=options["help"] + "; registered: " + ", ".join(choices))
            elif kind.base in _METAVARS:
                options.update(metavar=_METAVARS[kind.base])
            elif field.name.endswith("_dir") or field.name in ("tensorboard", "transfer_from"):
                options.update(metavar="DIR")
        group.add_argument(flag, **options)


def add_plugin_argument(parser: argparse.ArgumentParser) -> None:
    """``--plugin MODULE`` (repeatable), stored as the ``plugins`` setting."""
    parser.add_argument("--plugin", dest="plugins", action="append", metavar="MODULE", default=argparse.SUPPRESS,
                        help=PLUGIN_HELP)


def preload_plugins(argv: Sequence[str]) -> None:
    """Import the modules ``--plugin`` names in ``argv``, before the parser asks the registries
    for the choices of each setting.

    Raises:
        ValueError: if one cannot be imported (see :func:`lth_prune.registry.load_plugins`).
    """
    plugins = []
    for index, token in enumerate(argv):
        if token == "--plugin" and index + 1 < len(argv):
            plugins.append(argv[index + 1])
        elif token.startswith("--plugin="):
            plugins.append(token.split("=", 1)[1])
    load_plugins(plugins, "--plugin")


def parse_value(name: str, text: str) -> Any:
    """One command-line value of the setting ``name``, converted as its flag converts it.

    Raises:
        ValueError: if ``name`` is not a setting or ``text`` is not a value of its type.

    Example:
        >>> parse_value("lr", "3e-4"), parse_value("model", "Conv-2"), parse_value("one_shot", "true")
        (0.0003, 'conv2', True)
    """
    fields = {field.name: field for field in dataclasses.fields(imp.ExperimentConfig)}
    if name not in fields:
        raise ValueError(f"{name!r} is not a setting; settings are {sorted(fields)}.")
    kind = _parse_type(str(fields[name].type))
    if kind.base == "bool" and not kind.sequence:
        if text.lower() not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
            raise ValueError(f"{name} takes true or false, got {text!r}.")
        return text.lower() in ("true", "on", "yes", "1")
    choices = list(_CHOICES[name]()) if name in _CHOICES else None
    convert = _converter(kind, choices)
    try:
        value = convert(text)
    except (ValueError, argparse.ArgumentTypeError) as error:
        kinds = {"int": "an int", "float": "a float", "str": "a string", "int | float": "a number", "dict": "a JSON object"}
        raise ValueError(f"{name} takes {kinds.get(kind.base, kind.base)}, got {text!r} ({error}).") from None
    return (value,) if kind.sequence else value


def show_default(default: Any) -> str:
    """A default value as the help shows it: ``none``, ``on``/``off``, space-separated lists."""
    if default is None:
        return _NONE
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return " ".join(str(value) for value in default) or _NONE
    return str(default)


def _converter(kind: _SettingType, choices: list[str] | None) -> Callable[[str], Any]:
    scalar = {"int": int, "float": float, "str": str, "int | float": _int_or_float, "dict": _json_object}[kind.base]

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
    if base.startswith("dict["):
        base = "dict"
    if base not in ("int", "float", "str", "bool", "int | float", "dict"):
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


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"num_classes\": 10}}', got {text!r}")
    return value


def _int_or_float(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _normalized(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")
