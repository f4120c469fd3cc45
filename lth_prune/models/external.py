"""Models of other libraries by name: ``"torchvision:resnet18"``, ``"timm:vit_tiny_patch16_224"``.

:func:`lth_prune.models.get` builds them freshly initialized (never pretrained) for the data:
``num_classes`` is passed to the builder, and ``in_chans`` (the data's channels) to timm's;
torchvision's classification models take 3-channel images. Other keyword arguments go to the
builder as they are (``image_size=32`` for a torchvision ViT, ``img_size=32`` for timm's).
torchvision ships with lth_prune; timm is the ``lth_prune[timm]`` extra.
"""
from __future__ import annotations

import importlib
from typing import Any

from torch import nn

__all__ = ["SOURCES", "build_external", "check_external", "is_external"]

SOURCES = ("torchvision", "timm")


def is_external(name: object) -> bool:
    """Whether ``name`` names another library's model (``"<source>:<model>"``)."""
    return isinstance(name, str) and ":" in name


def check_external(name: str) -> None:
    """Check that ``"<source>:<model>"`` can be built here.

    Raises:
        ValueError: if the source is unknown, its package is not installed (the message names
            the extra), or it has no such model.

    Example:
        >>> check_external("torchvision:resnet18")
        >>> check_external("torchvision:resnet9000")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: model: torchvision has no model 'resnet9000'; ...
    """
    source, _, model = name.partition(":")
    if source not in SOURCES or not model:
        raise ValueError(f"model: {name!r} must be '<source>:<model>' with a source of {list(SOURCES)}.")
    library = _library(source)
    if source == "torchvision":
        available = library.models.list_models()
        hint = "torchvision.models.list_models() lists them"
    else:
        available = library.list_models()
        hint = "timm.list_models() lists them"
    if model not in available:
        close = sorted(candidate for candidate in available if candidate.startswith(model[:4]))[:8]
        raise ValueError(f"model: {source} has no model {model!r}; {hint}" + (f" (close: {close})." if close else "."))


def build_external(name: str, num_classes: int, input_shape: tuple[int, int, int], **kwargs: Any) -> nn.Module:
    """Build another library's model, freshly initialized, for ``num_classes`` classes.

    Raises:
        ValueError: as :func:`check_external`, or if the builder refuses the arguments.

    Example:
        >>> net = build_external("torchvision:resnet18", num_classes=4, input_shape=(3, 32, 32))
        >>> net.fc.out_features
        4
    """
    check_external(name)
    source, _, model = name.partition(":")
    library = _library(source)
    options = {"num_classes": num_classes, **kwargs}
    try:
        if source == "torchvision":
            return library.models.get_model(model, weights=None, **options)
        return library.create_model(model, pretrained=False, **{"in_chans": input_shape[0], **options})
    except TypeError as error:
        raise ValueError(f"model: {name} does not take the arguments {sorted(options)}: {error}") from error


def _library(source: str) -> Any:
    try:
        return importlib.import_module(source)
    except ImportError:
        raise ValueError(f"model: {source} models need the {source} package; pip install 'lth_prune[{source}]'.") from None
