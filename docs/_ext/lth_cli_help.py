"""``.. lth-prune-cli::``: the command-line reference, rendered from the real parser.

The directive calls :func:`lth_prune.cli.build_parser` at build time and renders the top-level
help and every subcommand's ``format_help()`` as literal blocks, one section per subcommand, so
the reference cannot drift from the code. Options:

``:width:``
    the help's line width in characters (default 88).
"""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

PROG = "lth-prune"


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """``(name, parser)`` of every subcommand, in the order they were added (aliases skipped)."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found.append((name, sub))
    return found


@contextmanager
def _fixed_terminal(width: int) -> Iterator[None]:
    """argparse wraps help to the terminal's width and names itself after ``sys.argv[0]``."""
    saved_columns, saved_argv0 = os.environ.get("COLUMNS"), sys.argv[0]
    os.environ["COLUMNS"] = str(width)
    sys.argv[0] = PROG
    try:
        yield
    finally:
        sys.argv[0] = saved_argv0
        if saved_columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved_columns


def render(width: int = 88) -> list[tuple[str, str, str]]:
    """``(command, description, help text)`` for ``lth-prune`` and each subcommand."""
    from lth_prune import cli

    with _fixed_terminal(width):
        parser = cli.build_parser()
        parser.prog = PROG
        pages = [(PROG, "", parser.format_help())]
        for name, sub in subcommands(parser):
            description = ""
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for choice in action._choices_actions:
                        if choice.dest == name and choice.help:
                            description = choice.help
            pages.append((f"{PROG} {name}", description, sub.format_help()))
    return pages


class CliHelpDirective(SphinxDirective):
    """Render ``lth-prune --help`` and ``lth-prune <command> --help`` as sections."""

    has_content = False
    option_spec = {"width": directives.positive_int}

    def run(self) -> list[nodes.Node]:
        from lth_prune import cli

        for source in sorted(Path(cli.__file__).parent.glob("*.py")):
            self.env.note_dependency(str(source))
        width = self.options.get("width", 88)
        lines: list[str] = []
        for command, description, text in render(width):
            title = f"``{command}``"
            lines += [title, "-" * len(title), ""]
            if description:
                lines += [description[0].upper() + description[1:].rstrip(".") + ".", ""]
            lines += [".. code-block:: text", ""]
            lines += [f"   {line}".rstrip() for line in text.rstrip().splitlines()]
            lines.append("")
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="lth-prune --help"), container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("lth-prune-cli", CliHelpDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
