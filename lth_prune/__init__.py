"""lth_prune: lottery-ticket pruning for PyTorch, as a ``torch.nn.utils.prune`` plugin."""
from __future__ import annotations

__version__ = "0.1.0"
