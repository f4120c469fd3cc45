"""Saving and loading a ticket: its masks and its rewind point, in one ``weights_only`` file.

By default the file is compact: masks encoded by :mod:`lth_prune.packing`, and of each masked
weight only the values at kept positions. At 2 % weights remaining a ticket takes about 3 % of
the dense ``state_dict`` file.
"""
from __future__ import annotations

import contextlib
import io
import numbers
import os
import pickle
from typing import Any, BinaryIO, Union

import torch
from torch import Tensor, nn

from lth_prune._reparam import named_tensors
from lth_prune.layers import prunable_layers, stored_tensor, tensor_key
from lth_prune.masks import get_masks, set_masks
from lth_prune.packing import pack_mask, unpack_mask
from lth_prune.rewind import Rewinder, register_rewind_hooks, registered_rewinder

__all__ = ["load_ticket", "read_ticket", "save_ticket"]

PathLike = Union[str, "os.PathLike[str]"]
_FORMAT = "lth_prune.ticket"
_PLAIN, _COMPACT = 1, 2


def save_ticket(
    model: nn.Module, path: PathLike | BinaryIO, rewinder: Rewinder | None = None, *, compact: bool = True
) -> None:
    """Write ``model``'s masks and rewind point to ``path``.

    The file holds only tensors, strings, lists and ints, so ``torch.load(path,
    weights_only=True)`` reads it. :func:`load_ticket` restores the masks and every kept value
    bit for bit; a compact file stores no value at pruned positions (they load as zeros).

    Args:
        model: a model with rewind hooks (or pass ``rewinder``); pruned or not.
        path: a file name, written through a temporary file that is renamed into place (and
            removed if the write fails), or a binary file object, as :func:`torch.save` takes.
        rewinder: the rewind point's holder; default: the model's registered rewind hooks.
        compact: encode masks and keep only surviving values; ``False`` writes boolean masks
            and whole tensors.

    Raises:
        RuntimeError: if there is no rewind point to save.
    """
    rewinder = rewinder if rewinder is not None else registered_rewinder(model)
    if rewinder is None:
        raise RuntimeError(
            "save_ticket(): model has no rewind point; call lth_prune.register_rewind_hooks(model) "
            "before training, or pass rewinder=."
        )
    masks, state = get_masks(model), rewinder.rewind_point
    if compact:
        state = {k: v[masks[k].to(v.device)] if k in masks else v for k, v in state.items()}
        masks = {k: pack_mask(v) for k, v in masks.items()}
    payload = {
        "format": _FORMAT,
        "version": _COMPACT if compact else _PLAIN,
        "masks": masks,
        "rewind_point": state,
        "rewind_step": rewinder.rewind_step,
    }
    if not isinstance(path, (str, os.PathLike)):
        torch.save(payload, path)
        return
    # Serialized in memory first, so a full disk fails as a plain write, not inside torch's writer.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    temporary = f"{os.fspath(path)}.tmp"
    try:
        with open(temporary, "wb") as file:
            file.write(buffer.getvalue())
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def load_ticket(
    model: nn.Module, path: PathLike, map_location: str | torch.device | None = None
) -> Rewinder:
    """Put a saved ticket on ``model``: its masks, and its weights at the rewind point.

    The ticket's masks replace any masks ``model`` has; the model is rewound to the ticket's
    rewind point, ready to train; and new rewind hooks hold that rewind point.

    Args:
        model: a model of the architecture the ticket was found on.
        path: a file written by :func:`save_ticket`.
        map_location: passed to :func:`torch.load`; default: the model's device.

    Returns:
        The :class:`Rewinder` registered on ``model``.

    Raises:
        TypeError: if ``model`` is not an ``nn.Module`` or ``path`` is not a file name.
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a ticket (not a torch file, truncated, another object
            such as a state dict or a pickled module, or a ticket whose contents do not
            agree), or its masks or rewind point do not match the model's layers and shapes;
            all checked before anything is changed, and the message names the file.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_ticket(): model must be an nn.Module, got {type(model).__name__}.")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"load_ticket(): path must be a file name (str or os.PathLike), got {type(path).__name__}."
        )
    if map_location is None:
        first = next(iter(model.parameters()), None)
        map_location = first.device if first is not None else "cpu"
    masks, state, rewind_step = _read(path, map_location, "load_ticket()")
    _check_ticket(model, masks, state, path)
    set_masks(model, masks)
    rewinder = register_rewind_hooks(model)
    rewinder.set_rewind_point(state)
    rewinder.rewind_step = rewind_step
    rewinder.rewind()
    return rewinder


def read_ticket(
    path: PathLike | BinaryIO, map_location: str | torch.device | None = "cpu"
) -> tuple[dict[str, Tensor], dict[str, Tensor], int]:
    """The boolean masks, the rewind point (whole tensors) and the rewind step in a ticket file.

    Args:
        path: a file written by :func:`save_ticket`, or a binary file object.
        map_location: passed to :func:`torch.load`.

    Returns:
        ``(masks, rewind_point, rewind_step)``: masks and values by dense weight name
        (``"fc1.weight"``), and the optimizer step the rewind point was taken at.

    Raises:
        TypeError: if ``path`` is neither a file name nor a binary file object.
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a ticket (not a torch file, truncated, another object
            such as a state dict or a pickled module) or its contents do not agree; the
            message names the file.

    Example:
        >>> import io
        >>> net = torch.nn.Linear(4, 2)
        >>> _ = register_rewind_hooks(net)
        >>> _ = torch.nn.utils.prune.random_unstructured(net, "weight", amount=3)
        >>> buffer = io.BytesIO()
        >>> save_ticket(net, buffer)
        >>> _ = buffer.seek(0)
        >>> masks, rewind_point, rewind_step = read_ticket(buffer)
        >>> int(masks["weight"].sum()), sorted(rewind_point), rewind_step
        (5, ['bias', 'weight'], 0)
    """
    return _read(path, map_location, "read_ticket()")


def _read(
    path: PathLike | BinaryIO, map_location: str | torch.device | None, caller: str
) -> tuple[dict[str, Tensor], dict[str, Tensor], int]:
    if isinstance(path, (str, os.PathLike)):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{caller}: path must be an existing ticket file, got {os.fspath(path)!r}, which "
                f"{'is a directory' if os.path.isdir(path) else 'does not exist'}."
            )
    elif not (hasattr(path, "read") and hasattr(path, "seek")):
        raise TypeError(
            f"{caller}: path must be a file name or a binary file object, got {type(path).__name__}."
        )
    where = _name(path)
    try:
        payload: Any = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refused an object: a pickled module or optimizer, or not a pickle at all.
        raise ValueError(
            f"{caller}: {where} must be a ticket saved by save_ticket(), got a file that holds "
            f"something else (a pickled module or other object, or bytes that are no pickle: "
            f"{_first_sentence(error)})."
        ) from error
    except (RuntimeError, EOFError, KeyError, ValueError, AttributeError, IndexError) as error:
        raise ValueError(
            f"{caller}: {where} must be a ticket saved by save_ticket(), got a file torch.load "
            f"cannot read (truncated, or not a torch file: {_first_sentence(error)})."
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        found = f"a dict with keys {sorted(map(str, payload))[:6]}" if isinstance(payload, dict) else (
            f"a {type(payload).__name__}"
        )
        raise ValueError(f"{caller}: {where} must be a ticket saved by save_ticket(), got {found}.")
    version = payload.get("version")
    if version not in (_PLAIN, _COMPACT):
        raise ValueError(
            f"{caller}: {where} must be a ticket of format version {_PLAIN} or {_COMPACT}, got "
            f"version {version!r}; it was written by another lth_prune."
        )
    masks, state, rewind_step = (payload.get(key) for key in ("masks", "rewind_point", "rewind_step"))
    if not _is_named(masks, (Tensor, dict)) or not _is_named(state, Tensor):
        raise ValueError(
            f"{caller}: {where} is a damaged ticket: its masks and rewind_point must be dicts of "
            f"tensors by name, got {type(masks).__name__} and {type(state).__name__}."
        )
    if isinstance(rewind_step, bool) or not isinstance(rewind_step, numbers.Integral) or rewind_step < 0:
        raise ValueError(
            f"{caller}: {where} is a damaged ticket: its rewind_step must be an int >= 0, got "
            f"{rewind_step!r}."
        )
    if version == _COMPACT:
        masks, state = _expand(masks, state, where, caller)
    elif not all(isinstance(mask, Tensor) for mask in masks.values()):
        raise ValueError(f"{caller}: {where} is a damaged ticket: a plain ticket's masks must be tensors.")
    return masks, state, int(rewind_step)


def _expand(packed: dict, values: dict, where: str, caller: str) -> tuple[dict, dict]:
    masks = {}
    for name, entry in packed.items():
        try:
            masks[name] = unpack_mask(entry)
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, IndexError) as error:
            raise ValueError(
                f"{caller}: {where} is a damaged ticket: the mask of {name} cannot be decoded "
                f"({type(error).__name__}: {error})."
            ) from error
    state = dict(values)
    for name, mask in masks.items():
        kept = values.get(name)
        if kept is None or kept.numel() != int(mask.sum()):
            raise ValueError(
                f"{caller}: the ticket {where} holds {None if kept is None else kept.numel()} "
                f"values for {name}, whose mask keeps {int(mask.sum())}."
            )
        full = torch.zeros(mask.shape, dtype=kept.dtype, device=kept.device)
        full[mask.to(kept.device)] = kept.reshape(-1)
        state[name] = full
    return masks, state


def _is_named(value: object, kinds: type | tuple[type, ...]) -> bool:
    return isinstance(value, dict) and all(
        isinstance(key, str) and isinstance(entry, kinds) for key, entry in value.items()
    )


def _first_sentence(error: BaseException) -> str:
    """The error's type and the first sentence of its message: torch's run to a paragraph."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text.split('. ')[0].rstrip('.')[:200]}" if text else type(error).__name__


def _name(path: PathLike | BinaryIO) -> str:
    """How a message names the ticket: the file name, quoted, or the file object's name."""
    if isinstance(path, (str, os.PathLike)):
        return repr(os.fspath(path))
    name = getattr(path, "name", None)
    return repr(name) if isinstance(name, str) else f"the file object {type(path).__name__}"


def _check_ticket(model: nn.Module, masks: dict, state: dict, path: PathLike) -> None:
    weights = {tensor_key(name, module): stored_tensor(module) for name, module in prunable_layers(model, (), "load_ticket()")}
    for key, mask in masks.items():
        if key not in weights:
            raise ValueError(
                f"load_ticket(): the ticket in {path!r} masks {key!r}, which is not a prunable "
                f"weight of the model; the model has {sorted(weights)}."
            )
        if tuple(mask.shape) != tuple(weights[key].shape):
            raise ValueError(
                f"load_ticket(): {key} has shape {tuple(weights[key].shape)} in the model but "
                f"{tuple(mask.shape)} in the ticket {path!r}."
            )
    current = {key: value for key, value, _ in named_tensors(model)}
    missing, unexpected = sorted(set(current) - set(state)), sorted(set(state) - set(current))
    if missing or unexpected:
        raise ValueError(
            f"load_ticket(): the ticket's rewind point in {path!r} does not match the model: "
            f"missing {missing}, unexpected {unexpected}."
        )
    for key, value in current.items():
        if tuple(value.shape) != tuple(state[key].shape):
            raise ValueError(
                f"load_ticket(): {key} has shape {tuple(value.shape)} in the model but "
                f"{tuple(state[key].shape)} in the ticket {path!r}."
            )
