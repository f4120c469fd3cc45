"""Models by name: the :data:`MODELS` registry, :func:`get`, and what the built-in builders share.

Names are matched case-insensitively and with ``-`` and ``_`` ignored, so ``"LeNet-300-100"``,
``"lenet_300_100"`` and ``"lenet300_100"`` all reach the same builder. Every built-in model takes
the keyword arguments ``num_classes`` and ``input_shape``; the validators that enforce that contract
(and the dry run that sizes a flattened feature map) live here so that all models report bad
arguments the same way.
"""
from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import nn

from lth_prune.models.external import build_external, is_external
from lth_prune.registry import Registry

# validate_num_classes, validate_input_shape and flattened_size are for the built-in models'
# modules, not part of the API.
__all__ = ["MODELS", "get"]

#: Model builders by name: ``MODELS.register("name", title=..., help=...)`` on a function or
#: class that takes ``num_classes`` and ``input_shape`` (C, H, W) and returns a fresh ``nn.Module``.
MODELS: Registry[Any] = Registry("model", normalize=True, accepts=(callable, "a builder (a function or class)"))


def get(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered under ``name``.

    Args:
        name: a registered name (:data:`MODELS`); case, ``-`` and ``_`` are ignored
            (``"Conv-2"`` is ``"conv2"``); or another library's model, ``"torchvision:<name>"``
            or ``"timm:<name>"`` (:mod:`lth_prune.models.external`).
        **kwargs: passed to the builder, e.g. ``num_classes`` and ``input_shape`` (C, H, W).

    Returns:
        A freshly initialized model.

    Raises:
        TypeError: if ``name`` is not a str.
        ValueError: if no model is registered under ``name``; the message lists the valid names.

    Example:
        >>> model = get("LeNet-300-100", num_classes=10, input_shape=(1, 28, 28))
        >>> type(model).__name__
        'LeNet300_100'
    """
    if not isinstance(name, str):
        raise TypeError(f"get(): name must be a str, got {type(name).__name__}.")
    if is_external(name):
        return build_external(name, **kwargs)
    if name not in MODELS:
        raise ValueError(
            f"get(): model must be one of {MODELS.names()}, or 'torchvision:<name>' or 'timm:<name>', got {name!r}."
        )
    return MODELS.get(name)(**kwargs)


def validate_num_classes(caller: str, num_classes: object) -> int:
    """``num_classes`` as an int, checked for a built-in model's constructor.

    Args:
        caller: the model's name, e.g. ``"VGG16"``, named in error messages.
        num_classes: the value given; at least 2.

    Returns:
        ``num_classes`` as a plain int.

    Raises:
        TypeError: if ``num_classes`` is not an int (a bool is not one).
        ValueError: if ``num_classes`` is less than 2.
    """
    # numbers.Integral admits numpy integers (common in configs); bool is an int but never a count.
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool):
        raise TypeError(
            f"{caller}(): num_classes must be an int, got {type(num_classes).__name__}."
        )
    if num_classes < 2:
        raise ValueError(f"{caller}(): num_classes must be >= 2, got {num_classes}.")
    return int(num_classes)


def validate_input_shape(caller: str, input_shape: object) -> tuple[int, int, int]:
    """``input_shape`` as a ``(C, H, W)`` tuple, checked for a built-in model's constructor.

    Args:
        caller: the model's name, e.g. ``"VGG16"``, named in error messages.
        input_shape: the value given; a tuple or list of 3 positive ints.

    Returns:
        ``(channels, height, width)`` as plain ints.

    Raises:
        TypeError: if ``input_shape`` is not a tuple or list of ints.
        ValueError: if it does not hold exactly 3 positive ints.
    """
    expectation = "a (C, H, W) tuple of 3 positive ints"
    # A list is accepted because shapes read back from JSON or YAML configs arrive as lists.
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(
            f"{caller}(): input_shape must be {expectation}, got {type(input_shape).__name__}."
        )
    if any(
        not isinstance(side, numbers.Integral) or isinstance(side, bool) for side in input_shape
    ):
        raise TypeError(f"{caller}(): input_shape must be {expectation}, got {input_shape!r}.")
    if len(input_shape) != 3 or any(side < 1 for side in input_shape):
        raise ValueError(f"{caller}(): input_shape must be {expectation}, got {input_shape!r}.")
    channels, height, width = (int(side) for side in input_shape)
    return channels, height, width


def flattened_size(features: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Number of features ``features`` gives for one ``input_shape`` image, once flattened."""
    # A dry run on one zero image is exact for any stack of convs and pools, where closed-form
    # arithmetic would have to be kept in step with every layer's stride, padding and ceil_mode.
    with torch.no_grad():
        return int(features(torch.zeros(1, *input_shape)).numel())
