"""What the report's tables share: how a cell is written, and the checks of a table format."""
from __future__ import annotations

import math
from typing import Any

from lth_prune.imp import Results

MISSING = "-"


def several_seeds(results: Results) -> bool:
    """Whether the run aggregates several seeds (cells and curves then show a spread)."""
    counts = [len(level.get("seeds") or ()) for level in results.levels]
    return len(results.config.seeds) > 1 or max(counts, default=0) > 1


def format_cell(level: dict[str, Any], key: str, accuracy: bool, several: bool) -> str:
    """A table cell: a percentage (accuracy) or a count, ``mean ± std`` with several seeds."""
    value = level.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    spread = level.get(key + "_std")
    if several and spread is not None:
        return f"{_number(value, accuracy)} ± {_number(spread, accuracy)}"
    return _number(value, accuracy)


def check_table_format(function: str, tablefmt: str) -> None:
    """Raise unless ``tablefmt`` is a format :mod:`tabulate` knows (the message lists them)."""
    import tabulate as tabulate_module

    formats = set(tabulate_module.tabulate_formats)
    if tablefmt not in formats:
        raise ValueError(f"{function}(): tablefmt must be one of {sorted(formats)}, got {tablefmt!r}.")


def _number(value: float, accuracy: bool) -> str:
    return f"{100.0 * value:.2f}" if accuracy else f"{value:.0f}"
