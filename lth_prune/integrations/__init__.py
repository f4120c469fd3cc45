"""Integrations with the frameworks researchers train in; each is an optional extra.

* :mod:`lth_prune.integrations.lightning`: IMP as a Lightning callback
  (``pip install 'lth_prune[lightning]'``).

Importing this package imports none of them.
"""
from __future__ import annotations

__all__: list[str] = []
