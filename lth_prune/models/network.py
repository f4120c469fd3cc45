"""The original CIFAR-10 CNN this project started from (an AlexNet-style network, no dropout)."""
from __future__ import annotations

import torch
from torch import nn

from lth_prune.models.build import (
    flattened_size,
    MODELS,
    validate_input_shape,
    validate_num_classes,
)

__all__ = ["Network"]


@MODELS.register(
    "network", title="Network",
    help="the project's original CIFAR-10 CNN: five convolutions, fc 4096, 4096, out",
)
class Network(nn.Module):
    """AlexNet-style CIFAR-10 CNN: the network this project started from.

    Architecture (sizes for a (3, 32, 32) input): conv 3->64 (3x3, stride 2, pad 1), ReLU,
    maxpool 2; conv 64->192 (3x3, pad 1), ReLU, maxpool 2; conv 192->384, ReLU; conv 384->256,
    ReLU; conv 256->256, ReLU, maxpool 2 (all 3x3, pad 1); flatten (256*2*2 = 1024); fc 1024->4096,
    ReLU; fc 4096->4096, ReLU; fc 4096->num_classes. No dropout; PyTorch's default initialization.
    Source: the project's original CIFAR-10 study (see DESIGN.md), which pruned this network with
    and without retraining. 23,272,266 parameters for CIFAR-10.

    Pools use ``ceil_mode=True`` so that small inputs (8x8 digits) keep a 1x1 map instead of
    vanishing; on even sides, as everywhere in a 32x32 input, that equals floor mode. The first fc
    layer's width follows from ``input_shape``.

    Args:
        num_classes: number of output logits, at least 2.
        input_shape: shape (C, H, W) of one input image.

    Raises:
        TypeError: if ``num_classes`` is not an int or ``input_shape`` is not a tuple of ints.
        ValueError: if ``num_classes < 2`` or ``input_shape`` is not 3 positive sides.

    Example:
        >>> model = Network(num_classes=10, input_shape=(3, 32, 32))
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, *, num_classes: int = 10, input_shape: tuple[int, int, int] = (3, 32, 32)
    ) -> None:
        super().__init__()
        self.num_classes = validate_num_classes("Network", num_classes)
        self.input_shape = validate_input_shape("Network", input_shape)
        channels = self.input_shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(channels, 64, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(64, 192, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
        )
        flat_features = flattened_size(self.features, self.input_shape)
        self.classifier = nn.Sequential(
            nn.Linear(flat_features, 4096),
            nn.ReLU(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, self.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute class logits.

        Args:
            x: images of shape (N, C, H, W) matching ``input_shape``.

        Returns:
            Logits of shape (N, num_classes).
        """
        return self.classifier(torch.flatten(self.features(x), 1))
