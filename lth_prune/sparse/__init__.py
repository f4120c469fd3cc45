"""Speed: training a pruned model at dense cost, and running a ticket through sparse kernels.

``torch.nn.utils.prune`` computes with dense weights full of zeros and recomputes
``weight = weight_orig * weight_mask`` on every forward pass: about 3x the parameter memory,
and no speed-up from sparsity. This package is what lth_prune offers instead:

* :func:`masked_training` (module ``masked_training``): a context in which each pruned tensor
  is a plain parameter with exact zeros and a byte mask, so training runs the dense passes
  plus one in-place pass over each gradient (a compiled loop, ``_native.c``, where a C
  compiler is at hand; an in-place torch multiply over the floats' bits otherwise) that sets
  pruned gradients to exactly 0, NaN and infinity included. It owns its masks.
* :mod:`lth_prune.sparse.kernels`: sparse training kernels for linear layers with a fixed
  mask (:func:`sparse_linear`, :class:`CsrPattern`), which :func:`masked_training` uses for
  large, very sparse layers when asked to.
* :func:`to_sparse` (module ``inference``): a copy of a ticket for inference whose pruned
  layers run sparse kernels where a timing shows them faster (module ``layers``):
  :class:`SparseLinear` a CSR matrix product, :class:`SparseConv2d` a direct sparse
  convolution (a compiled loop, ``_direct_conv.c``, built as the mask loop is; a CSR product
  over unfolded patches where it cannot be). :func:`load_sparse_state_dict` rebuilds such a
  copy from its saved ``state_dict`` (``torch.load(..., weights_only=True)`` reads it).

:func:`masked_training`, :class:`MaskedTraining`, :func:`to_sparse`,
:func:`load_sparse_state_dict`, :class:`SparseLinear` and :class:`SparseConv2d` are also
exported by :mod:`lth_prune` itself.
"""
from __future__ import annotations

from lth_prune.sparse.inference import load_sparse_state_dict, to_sparse
from lth_prune.sparse.kernels import CsrPattern, sparse_linear
from lth_prune.sparse.modules import SparseConv2d, SparseLinear
# After this import the package's attribute masked_training is the function, not its module
# (as lth_prune.rewind is); importlib.import_module reaches the module, e.g. to patch it.
from lth_prune.sparse.masked_training import MaskedTraining, masked_training

__all__ = [
    # training pruned models at dense cost
    "MaskedTraining",
    "masked_training",
    # sparse inference
    "to_sparse",
    "load_sparse_state_dict",
    "SparseLinear",
    "SparseConv2d",
    # sparse training kernels
    "sparse_linear",
    "CsrPattern",
]
