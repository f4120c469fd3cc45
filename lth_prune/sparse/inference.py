"""Sparse inference: :func:`to_sparse` turns a ticket into a model that runs sparse kernels.

A masked model computes with dense weights full of zeros, so sparsity buys nothing.
:func:`to_sparse` copies the model and replaces each pruned linear layer by a
:class:`~lth_prune.SparseLinear` (the weight as a CSR matrix) and each pruned 2-d convolution
by a :class:`~lth_prune.SparseConv2d` (a direct sparse convolution over the nonzero weights)
where a timing on an example input shows that faster, and keeps the dense layer where it is
not. :func:`load_sparse_state_dict` rebuilds such a copy from its saved ``state_dict``.
"""
from __future__ import annotations

import copy
import time
from typing import Any, Callable, Mapping

import torch
import torch.nn.utils.prune as prune
from torch import Tensor, nn

from lth_prune._reparam import collapse, pruned_names, refresh
from lth_prune.sparse._rewrites import fold_batchnorms, inplace_relus, replace_module
from lth_prune.sparse.modules import SparseConv2d, SparseLinear, VectorizedMaxPool2d

__all__ = ["load_sparse_state_dict", "to_sparse"]


def to_sparse(
    model: nn.Module,
    example_input: Tensor | None = None,
    *,
    max_density: float = 0.1,
    repeats: int = 5,
    fold_batchnorm: bool = True,
) -> nn.Module:
    """A copy of ``model`` for inference whose pruned layers use sparse kernels where they pay.

    Pruning is made permanent in the copy (``model`` is not changed) and it is put in eval
    mode. Each ``nn.BatchNorm2d`` that only normalizes one convolution's output is folded into
    that convolution (its weights scaled per output channel, the same zeros, one pass over the
    activations fewer; found by tracing the model with ``torch.fx``, skipped where it does not
    trace), and each ``nn.ReLU`` that rectifies a layer's output no other layer reads does it in
    place. With ``example_input``, every pruned linear and 2-d convolution layer is timed
    dense and sparse on the input it sees in a forward pass of ``example_input``, and the
    faster form is kept: pass one whenever you can. Max-pooling layers are timed the same way
    against :class:`~lth_prune.sparse.modules.VectorizedMaxPool2d` (the same maxima; torch's
    CPU kernel for contiguous inputs is not vectorized and took a third of Conv-2's dense time
    at batch 64 on the benchmark machine). Without ``example_input``, a linear layer becomes
    sparse when its density is at most ``max_density``, and convolutions stay dense: whether
    the direct sparse convolution (:class:`~lth_prune.SparseConv2d`) beats the dense one
    depends on the density, the shape of the layer and the batch, more than a threshold can
    say (see the benchmarks page).

    Args:
        model: a pruned model (``torch.nn.utils.prune`` form, or any model with zero weights).
        example_input: a typical input batch, e.g. ``(N, C, H, W)``, used to choose per layer.
        max_density: fraction of nonzero weights up to which a linear layer goes sparse when
            no ``example_input`` is given, in [0, 1].
        repeats: timed calls per layer and form when choosing by timing.
        fold_batchnorm: whether to fold batch norms into the convolutions before them.

    Returns:
        The sparse copy, in eval mode. Its layers hold CSR buffers and compute no gradients.
        ``torch.save(copy.state_dict(), ...)`` saves it; :func:`load_sparse_state_dict`
        rebuilds it.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``example_input`` not a tensor.
        ValueError: if ``max_density`` is not in [0, 1], ``repeats`` < 1, or the model fails
            on ``example_input`` (the message names the layer that failed, what it expects
            and the shape it got).

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
        >>> _ = torch.nn.utils.prune.random_unstructured(net[0], "weight", amount=0.95)
        >>> fast = to_sparse(net)
        >>> type(fast[0]).__name__, type(fast[2]).__name__
        ('SparseLinear', 'Linear')
        >>> x = torch.randn(3, 64)
        >>> torch.allclose(fast(x), net(x), atol=1e-5)
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_sparse(): model must be an nn.Module, got {type(model).__name__}.")
    if not 0.0 <= max_density <= 1.0:
        raise ValueError(f"to_sparse(): max_density must be in [0, 1], got {max_density}.")
    if repeats < 1:
        raise ValueError(f"to_sparse(): repeats must be >= 1, got {repeats}.")
    if example_input is not None and not isinstance(example_input, Tensor):
        raise TypeError(
            f"to_sparse(): example_input must be a Tensor or None, got {type(example_input).__name__}."
        )
    sparse_model = _permanent_copy(model)
    if fold_batchnorm:
        fold_batchnorms(sparse_model)
    inplace_relus(sparse_model)
    candidates = {
        name: module for name, module in sparse_model.named_modules()
        if (isinstance(module, nn.Linear) or _convertible_conv(module))
        and _density(module.weight) < 1.0
    }
    inputs = {} if example_input is None else _layer_inputs(
        sparse_model, example_input, {**candidates, **_pools(sparse_model)}
    )
    for name, module in candidates.items():
        if name not in inputs and not (isinstance(module, nn.Linear) and _density(module.weight) <= max_density):
            continue
        sparse = SparseLinear(module.weight, module.bias) if isinstance(module, nn.Linear) else SparseConv2d(module)
        if name not in inputs or _faster(sparse, module, inputs[name], repeats):
            replace_module(sparse_model, name, sparse)
    _choose_pools(sparse_model, inputs, repeats)
    return sparse_model


def load_sparse_state_dict(
    model: nn.Module, state_dict: Mapping[str, Tensor], example_input: Tensor | None = None
) -> nn.Module:
    """Rebuild a :func:`to_sparse` copy from its ``state_dict`` and the model's architecture.

    Every linear and 2-d convolution layer of ``model`` whose entries in ``state_dict`` are
    those of a :class:`~lth_prune.SparseLinear` (a CSR ``weight``) or a
    :class:`~lth_prune.SparseConv2d` (``crow_indices``, ``col_indices``, ``values``) becomes
    one, and each batch norm that ``to_sparse`` folded away (its entries are missing) becomes
    ``nn.Identity``; the other entries load as usual. The state dict holds plain and CSR
    tensors only, so it can be saved with ``torch.save`` and read back with
    ``torch.load(..., weights_only=True)``. Max-pooling layers hold no state: with
    ``example_input`` they are timed again as ``to_sparse`` times them.

    Args:
        model: a model of the architecture ``to_sparse`` was given (dense or pruned; its
            weights are not used).
        state_dict: what ``to_sparse(...).state_dict()`` returned.
        example_input: a typical input batch, to choose the form of each max-pooling layer.

    Returns:
        A new model in eval mode, the sparse layers in place; ``model`` is not changed.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module``.
        ValueError: if the model fails on ``example_input``.
        RuntimeError: as ``load_state_dict`` does, for missing, unexpected or mis-shaped keys.

    Example:
        >>> import io
        >>> def build():
        ...     return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8),
        ...                                torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 2))
        >>> net = build()
        >>> for layer in (net[0], net[3]):
        ...     _ = torch.nn.utils.prune.l1_unstructured(layer, "weight", amount=0.9)
        >>> fast = to_sparse(net, max_density=0.5)
        >>> [type(layer).__name__ for layer in fast]
        ['Conv2d', 'Identity', 'Flatten', 'SparseLinear']
        >>> buffer = io.BytesIO()
        >>> torch.save(fast.state_dict(), buffer)
        >>> _ = buffer.seek(0)
        >>> loaded = load_sparse_state_dict(build(), torch.load(buffer, weights_only=True))
        >>> x = torch.randn(2, 3, 6, 6)
        >>> torch.equal(loaded(x), fast(x))
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_sparse_state_dict(): model must be an nn.Module, got {type(model).__name__}.")
    rebuilt = _permanent_copy(model)
    for name, module in list(rebuilt.named_modules()):
        prefix = f"{name}." if name else ""
        weight = state_dict.get(prefix + "weight")
        if type(module) is nn.BatchNorm2d and module.running_mean is not None and prefix + "running_mean" not in state_dict:
            replace_module(rebuilt, name, nn.Identity())
        elif isinstance(module, nn.Linear) and isinstance(weight, Tensor) and weight.layout == torch.sparse_csr:
            sparse = SparseLinear(torch.zeros(0, module.in_features), module.bias)
            sparse.in_features, sparse.out_features = module.in_features, module.out_features
            replace_module(rebuilt, name, sparse)
        elif _convertible_conv(module) and prefix + "values" in state_dict:
            with torch.no_grad():
                module.weight.zero_()  # not used: the pattern comes from the state dict
            replace_module(rebuilt, name, SparseConv2d(module))
        elif isinstance(module, nn.Conv2d) and module.bias is None and prefix + "bias" in state_dict:
            # A folded batch norm left its shift in the bias of a convolution that had none.
            module.bias = nn.Parameter(torch.zeros(module.out_channels), requires_grad=False)
    rebuilt.load_state_dict(state_dict)
    rebuilt.eval()
    inplace_relus(rebuilt)
    if example_input is not None:
        _choose_pools(rebuilt, _layer_inputs(rebuilt, example_input, _pools(rebuilt)), 5)
    return rebuilt


def _permanent_copy(model: nn.Module) -> nn.Module:
    for module in model.modules():
        # A collapsed hook lets deepcopy through the non-leaf masked weight.
        collapse(module)
    duplicate = copy.deepcopy(model)
    for module in duplicate.modules():
        for name in pruned_names(module):
            refresh(module, name)
            prune.remove(module, name)
    for parameter in duplicate.parameters():
        parameter.requires_grad_(False)
    return duplicate.eval()


def _layer_inputs(model: nn.Module, example_input: Tensor, layers: dict[str, nn.Module]) -> dict[str, Tensor]:
    seen: dict[str, Tensor] = {}
    # The modules whose forward has begun and not ended: where the model raises, the last one
    # is the layer that did.
    running: list[tuple[str, nn.Module, Any]] = []
    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(_recorder(seen, running, name, name in layers)))
        handles.append(module.register_forward_hook(_finisher(running)))
    try:
        with torch.inference_mode():
            model(example_input)
    except Exception as error:
        raise ValueError(_failure(example_input, running, error)) from error
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _recorder(
    seen: dict[str, Tensor], running: list[tuple[str, nn.Module, Any]], name: str, candidate: bool
) -> Callable[[nn.Module, Any], None]:
    def record(module: nn.Module, inputs: Any) -> None:
        running.append((name, module, inputs))
        if candidate:
            seen[name] = inputs[0].detach()
    return record


def _finisher(running: list[tuple[str, nn.Module, Any]]) -> Callable[[nn.Module, Any, Any], None]:
    def finish(module: nn.Module, inputs: Any, output: Any) -> None:
        running.pop()
    return finish


def _failure(example_input: Tensor, running: list[tuple[str, nn.Module, Any]], error: Exception) -> str:
    """The message for a model that failed on ``example_input``: which layer, what it expects."""
    text = f"to_sparse(): the model fails on example_input of shape {tuple(example_input.shape)}"
    if running:
        name, module, inputs = running[-1]
        shapes = [tuple(value.shape) for value in inputs if isinstance(value, Tensor)]
        got = shapes[0] if len(shapes) == 1 else shapes
        if isinstance(module, nn.Linear):
            expects = f" expects (*, {module.in_features})"
        elif isinstance(module, nn.Conv2d):
            expects = f" expects (N, {module.in_channels}, H, W)"
        else:
            expects = ""
        where = f"layer {name!r}" if name else "the model's own forward"
        text += f": {where} ({type(module).__name__}){expects}, got input of shape {got}"
    return f"{text}. ({type(error).__name__}: {error})"


def _faster(candidate: nn.Module, current: nn.Module, input: Tensor, repeats: int) -> bool:
    """Whether ``candidate`` runs ``input`` faster than ``current``."""
    # The two forms alternate call by call and each keeps its fastest call, so a burst of load
    # from elsewhere cannot land on one form only.
    best = {"current": float("inf"), "candidate": float("inf")}
    with torch.inference_mode():
        for call in range(repeats + 1):  # the first call of each warms it up, uncounted
            for form, module in (("current", current), ("candidate", candidate)):
                start = time.perf_counter()
                module(input)
                if input.is_cuda:
                    torch.cuda.synchronize(input.device)
                elapsed = time.perf_counter() - start
                if call > 0:
                    best[form] = min(best[form], elapsed)
    return best["candidate"] < best["current"]


def _pools(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: module for name, module in model.named_modules()
        if type(module) is nn.MaxPool2d and not module.return_indices
    }


def _choose_pools(model: nn.Module, inputs: Mapping[str, Tensor], repeats: int) -> None:
    for name, pool in _pools(model).items():
        if name in inputs and inputs[name].dim() == 4 and inputs[name].device.type == "cpu":
            vectorized = VectorizedMaxPool2d.like(pool)
            if _faster(vectorized, pool, inputs[name], repeats):
                replace_module(model, name, vectorized)


def _convertible_conv(module: nn.Module) -> bool:
    return (
        type(module) is nn.Conv2d and module.padding_mode == "zeros"
        and (not isinstance(module.padding, str) or module.padding == "valid")
    )


def _density(weight: Tensor) -> float:
    return float(torch.count_nonzero(weight)) / max(1, weight.numel())


