"""Model zoo: the original CIFAR-10 CNN and the lottery-ticket papers' networks, by name.

Every model takes the keyword arguments ``num_classes`` and ``input_shape`` (C, H, W), so each one
runs on 8x8 one-channel digits, 28x28 grey images and 32x32 colour images. The output layer is
always the last ``nn.Linear`` in ``model.modules()`` order.

Example:
    >>> from lth_prune import models
    >>> model = models.get("Conv-2", num_classes=10, input_shape=(3, 32, 32))
    >>> type(model).__name__
    'Conv2'
"""
from __future__ import annotations

from lth_prune.models.network import Network
from lth_prune.models.paper import Conv2, Conv4, Conv6, LeNet300_100
from lth_prune.models.build import MODELS, get
from lth_prune.models.resnet import ResNet20
from lth_prune.models.vgg import VGG16

__all__ = [
    # Registry
    "MODELS",
    "get",
    # The project's original CIFAR-10 CNN
    "Network",
    # Frankle & Carbin 2019
    "Conv2",
    "Conv4",
    "Conv6",
    "LeNet300_100",
    # Frankle et al. 2020 (open_lth)
    "ResNet20",
    "VGG16",
]
