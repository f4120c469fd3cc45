"""``.. markdown-include:: path``: include a repository Markdown file (e.g. ``benchmarks/README.md``).

The docs are reStructuredText and MyST is not a dependency, so this converts the small subset of
GitHub Markdown the repository's READMEs use -- ATX headings, paragraphs, ``-`` lists, pipe
tables, fenced code, images, inline code, bold and links -- to reStructuredText and parses it
in place. Anything else is kept as paragraph text. The file is a dependency of the page, so the
page is rebuilt when it changes. Options:

``:skip-title:``
    drop the file's first level-1 heading (the page has its own title).
``:heading-chars:``
    underline characters for Markdown heading levels 1, 2, 3, ... (default ``=-~^"``); level 2
    becomes a section of the including page when the page only has a title.
"""
from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_FENCE = re.compile(r"^(```|~~~)\s*([\w+-]*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)\s*$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LEXERS = {"sh": "console", "shell": "console", "bash": "console", "": "text"}


def inline(text: str) -> str:
    """Markdown inline markup to reStructuredText: code spans and links; bold is the same."""
    pieces = re.split(r"(`[^`]+`|\[[^\]]+\]\([^)\s]+\))", text)
    out = []
    for index, piece in enumerate(pieces):
        following = pieces[index + 1][:1] if index + 1 < len(pieces) else ""
        # reST needs whitespace or punctuation after inline markup; "\ " is an empty join.
        join = "\\ " if following.isalnum() else ""
        if piece.startswith("`") and piece.endswith("`") and len(piece) > 2:
            out.append(f"``{piece[1:-1].strip()}``" + join)
        elif piece.startswith("[") and piece.endswith(")"):
            label, url = re.fullmatch(r"\[([^\]]+)\]\(([^)\s]+)\)", piece).groups()
            out.append(f"`{_escape(label)} <{url}>`__" + join)
        else:
            out.append(_escape(piece))
    return "".join(out)


def _escape(text: str) -> str:
    """Plain Markdown text that reST would read as markup: a trailing ``_``, a lone ``|``."""
    return re.sub(r"(\w)_(?=\W|$)", r"\1\\_", text).replace("|", "\\|")


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    cells, current, code = [], "", False
    for char in line:
        if char == "`":
            code = not code
        if char == "|" and not code and not current.endswith("\\"):
            cells.append(current.strip())
            current = ""
        else:
            current += char
    cells.append(current.strip())
    return cells


def _table(rows: list[str]) -> list[str]:
    header, body = _cells(rows[0]), [_cells(row) for row in rows[2:]]
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [header, *body]:
        cells = (cells + [""] * len(header))[: len(header)]
        lines.append(f"   * - {inline(cells[0]) or ' '}")
        lines += [f"     - {inline(cell) or ' '}" for cell in cells[1:]]
    return lines + [""]


def convert(markdown: str, *, skip_title: bool = False, heading_chars: str = "=-~^\"") -> list[str]:
    """The reStructuredText lines for ``markdown``."""
    lines = markdown.splitlines()
    out: list[str] = []
    index, title_skipped = 0, not skip_title
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence:
            end = index + 1
            while end < len(lines) and not lines[end].startswith(fence.group(1)):
                end += 1
            out += [f".. code-block:: {_LEXERS.get(fence.group(2), fence.group(2))}", ""]
            out += [f"   {code}".rstrip() for code in lines[index + 1:end]] + [""]
            index = end + 1
            continue
        heading = _HEADING.match(line)
        if heading:
            level, text = len(heading.group(1)), inline(heading.group(2))
            if level == 1 and not title_skipped:
                title_skipped = True
            else:
                out += [text, heading_chars[level - 1] * max(len(text), 4), ""]
            index += 1
            continue
        if line.lstrip().startswith("|") and index + 1 < len(lines) and _TABLE_RULE.match(lines[index + 1]):
            end = index + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            out += _table(lines[index:end])
            index = end
            continue
        image = _IMAGE.match(line)
        if image:
            out += [f".. image:: {image.group(2)}", f"   :alt: {image.group(1)}", ""]
            index += 1
            continue
        if line.strip() and out and out[-1].strip().startswith(".. ") and not line.startswith(" "):
            out.append("")
        out.append(inline(line) if line.strip() else "")
        index += 1
    return out


class MarkdownInclude(SphinxDirective):
    """Parse a Markdown file, converted to reStructuredText, where the directive stands."""

    required_arguments = 1
    option_spec = {"skip-title": directives.flag, "heading-chars": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        relative, path = self.env.relfn2path(self.arguments[0])
        source = Path(path)
        if not source.is_file():
            raise self.error(f"markdown-include: no file {self.arguments[0]!r} (looked for {source}).")
        self.env.note_dependency(relative)
        lines = convert(
            source.read_text(encoding="utf-8"),
            skip_title="skip-title" in self.options,
            heading_chars=self.options.get("heading-chars", "=-~^\""),
        )
        # Relative image paths in the file are relative to the file, not to the page.
        base = Path(self.arguments[0]).parent.as_posix()
        lines = [
            f".. image:: {base}/{line[len('.. image:: '):]}"
            if line.startswith(".. image:: ") and "://" not in line and base not in ("", ".")
            else line
            for line in lines
        ]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=str(source)), container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("markdown-include", MarkdownInclude)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
