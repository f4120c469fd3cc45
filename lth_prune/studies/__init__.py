"""Studies beside the engine: what runs :mod:`lth_prune.imp` many times, or reads its run stores.

* :mod:`~lth_prune.studies.stability`: instability against the rewind step (Frankle et al.,
  ICML 2020), ``lth-prune stability``;
* :mod:`~lth_prune.studies.sweep`: a grid of runs, one job each, ``lth-prune sweep``.

Their names are imported from the modules (``from lth_prune.studies.sweep import sweep``): a
package name that were also a function's would hide the module.
"""
from __future__ import annotations

__all__: list[str] = []
