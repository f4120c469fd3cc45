"""``python -m lth_prune``: the same as the ``lth-prune`` command."""
from __future__ import annotations

import sys

from lth_prune.cli import main

if __name__ == "__main__":
    sys.exit(main())
