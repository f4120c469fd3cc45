"""How a run executes, beside the engine: worker processes and TensorBoard logs.

* :mod:`~lth_prune.execution.jobs`: seeds side by side in worker processes that die with the
  process that started them (``ExperimentConfig.jobs``);
* :mod:`~lth_prune.execution.tensorboard`: one TensorBoard run per seed
  (``ExperimentConfig.tensorboard``).

Neither knows the experiment's settings: :mod:`lth_prune.imp` calls them with what they need.
"""
from __future__ import annotations

__all__: list[str] = []
