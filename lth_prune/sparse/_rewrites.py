"""Rewrites of an eval-mode copy that :func:`to_sparse` makes before it chooses layer forms.

Once the convolutions are sparse, the passes over the activations between them cost as much
as they do: at 2 % of the weights a ResNet-20 spent as long in its 19 batch norms as in its
sparse convolutions, and each out-of-place ReLU of a Conv-2 batch of 64 allocated and filled
16 MB. So:

* :func:`fold_batchnorms`: in eval mode ``bn(conv(x))`` is ``conv'(x)`` with each output
  channel's weights scaled by ``gamma / sqrt(running_var + eps)`` and a bias shifted to match:
  the same zeros, one pass fewer.
* :func:`inplace_relus`: an ``nn.ReLU`` whose input is a layer's fresh output, read by nothing
  else, rectifies it in place.

Both find their patterns by tracing the model with ``torch.fx`` (forward code calls
``self.bn1(self.conv1(x))`` as a ``Sequential`` chains them); a model that does not trace is
left as it is.
"""
from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn

from lth_prune.sparse.modules import SparseConv2d, SparseLinear, VectorizedMaxPool2d

__all__ = ["fold_batchnorms", "inplace_relus", "replace_module"]


def fold_batchnorms(model: nn.Module) -> list[tuple[str, str]]:
    """Fold every batch norm that only ever normalizes one convolution's output into it, in place.

    A pair is folded where the ``nn.Conv2d`` and the ``nn.BatchNorm2d`` are each called once in
    the forward pass, the batch norm has running statistics, and nothing else reads the
    convolution's output. The convolution gets the folded weights and a bias; the batch norm
    becomes ``nn.Identity``. Meant for an eval-mode copy.

    Args:
        model: the model to change.

    Returns:
        The (convolution, batch norm) names folded, in forward order; empty where the model
        does not trace.
    """
    graph, calls = _trace(model)
    modules = dict(model.named_modules())
    folded = []
    for node in graph.nodes:
        if node.op != "call_module" or type(modules.get(node.target)) is not nn.BatchNorm2d:
            continue
        source = node.args[0] if node.args else None
        if not (isinstance(source, fx.Node) and source.op == "call_module"
                and type(modules.get(source.target)) is nn.Conv2d and len(source.users) == 1
                and calls[source.target] == 1 and calls[node.target] == 1):
            continue
        conv, norm = modules[source.target], modules[node.target]
        if norm.running_mean is None or norm.running_var is None or norm.num_features != conv.out_channels:
            continue
        _fold(conv, norm)
        replace_module(model, node.target, nn.Identity())
        folded.append((source.target, node.target))
    return folded


def inplace_relus(model: nn.Module) -> list[str]:
    """Make each ``nn.ReLU`` in place whose input is a layer's own output that nothing else reads.

    The input must come, through ``nn.Identity`` modules at most (folded batch norms), from a
    convolution, linear or batch norm layer whose output has no other reader, and the ReLU must
    be called once: then no tensor the caller or another layer holds is changed.

    Args:
        model: the model to change, in place.

    Returns:
        The names of the ReLUs made in place; empty where the model does not trace.
    """
    graph, calls = _trace(model)
    modules = dict(model.named_modules())
    fresh = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, SparseConv2d, SparseLinear)
    changed = []
    for node in graph.nodes:
        if node.op != "call_module" or type(modules.get(node.target)) is not nn.ReLU or calls[node.target] != 1:
            continue
        source = node.args[0] if node.args else None
        while (isinstance(source, fx.Node) and source.op == "call_module" and len(source.users) == 1
               and type(modules.get(source.target)) is nn.Identity):
            source = source.args[0] if source.args else None
        if (isinstance(source, fx.Node) and source.op == "call_module" and len(source.users) == 1
                and type(modules.get(source.target)) in fresh):
            modules[node.target].inplace = True
            changed.append(node.target)
    return changed


def _trace(model: nn.Module) -> tuple[fx.Graph, dict[str, int]]:
    """The model's fx graph and how often each module is called (empty where it does not trace)."""
    try:
        graph = _Tracer().trace(model)
    except Exception:  # control flow on values, unsupported calls: fx raises many kinds
        return fx.Graph(), {}
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    return graph, calls


class _Tracer(fx.Tracer):
    """fx's tracer, with the sparse layers as leaves (their forward calls C through ctypes)."""

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        leaves = (SparseConv2d, SparseLinear, VectorizedMaxPool2d)
        return isinstance(module, leaves) or super().is_leaf_module(module, qualified_name)


def _fold(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        scale = torch.rsqrt(norm.running_var + norm.eps)
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` in the place of ``model``'s submodule ``name`` (a dotted name)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
