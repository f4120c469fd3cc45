"""The networks of Frankle & Carbin 2019 (ICLR), Fig. 2: LeNet-300-100 and Conv-2/4/6.

All use Glorot-normal weights and zero biases, as the paper did, and no dropout. Convolutions are
3x3 with padding 1 followed by ReLU; "pool" is a 2x2 max pool.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import torch
from torch import nn

from lth_prune.models.build import (
    flattened_size,
    MODELS,
    validate_input_shape,
    validate_num_classes,
)

__all__ = ["Conv2", "Conv4", "Conv6", "LeNet300_100"]

# A conv plan lists output channels, with "M" for a 2x2 max pool.
_Plan = Sequence[Union[int, str]]


class _GlorotConvNet(nn.Module):
    """Conv-2/4/6 skeleton: a conv plan, then fc 256, 256, num_classes; Glorot-normal init."""

    def __init__(
        self,
        *,
        caller: str,
        plan: _Plan,
        num_classes: int,
        input_shape: tuple[int, int, int],
    ) -> None:
        super().__init__()
        self.num_classes = validate_num_classes(caller, num_classes)
        self.input_shape = validate_input_shape(caller, input_shape)
        self.features = _conv_layers(plan, self.input_shape[0])
        flat_features = flattened_size(self.features, self.input_shape)
        self.classifier = nn.Sequential(
            nn.Linear(flat_features, 256),
            nn.ReLU(),
            nn.Linear(256, 256),
            nn.ReLU(),
            nn.Linear(256, self.num_classes),
        )
        _glorot_normal_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute class logits.

        Args:
            x: images of shape (N, C, H, W) matching ``input_shape``.

        Returns:
            Logits of shape (N, num_classes).
        """
        return self.classifier(torch.flatten(self.features(x), 1))


@MODELS.register("conv2", title="Conv-2", help="conv 64, 64, pool; fc 256, 256, out (Frankle & Carbin 2019)")
class Conv2(_GlorotConvNet):
    """Conv-2 of Frankle & Carbin 2019 (Fig. 2): conv 64, 64, pool; fc 256, 256, num_classes.

    Convolutions are 3x3, padding 1, ReLU; the pool is 2x2 max. Glorot-normal weights, zero biases,
    no dropout. The paper trained it with Adam 2e-4, batch 60, 20K iterations, pruning conv layers
    10% and fc layers 20% per round.

    Args:
        num_classes: number of output logits, at least 2.
        input_shape: shape (C, H, W) of one input image.

    Raises:
        TypeError: if ``num_classes`` is not an int or ``input_shape`` is not a tuple of ints.
        ValueError: if ``num_classes < 2`` or ``input_shape`` is not 3 positive sides.

    Example:
        >>> Conv2()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, *, num_classes: int = 10, input_shape: tuple[int, int, int] = (3, 32, 32)
    ) -> None:
        super().__init__(
            caller="Conv2", plan=(64, 64, "M"), num_classes=num_classes, input_shape=input_shape
        )


@MODELS.register(
    "conv4", title="Conv-4",
    help="conv 64, 64, pool, 128, 128, pool; fc 256, 256, out (Frankle & Carbin 2019)",
)
class Conv4(_GlorotConvNet):
    """Conv-4 of Frankle & Carbin 2019 (Fig. 2): conv 64, 64, pool, 128, 128, pool; fc 256, 256.

    Convolutions are 3x3, padding 1, ReLU; pools are 2x2 max; the output layer has num_classes
    units. Glorot-normal weights, zero biases, no dropout. The paper trained it with Adam 3e-4,
    batch 60, 25K iterations, pruning conv layers 10% and fc layers 20% per round.

    Args:
        num_classes: number of output logits, at least 2.
        input_shape: shape (C, H, W) of one input image.

    Raises:
        TypeError: if ``num_classes`` is not an int or ``input_shape`` is not a tuple of ints.
        ValueError: if ``num_classes < 2`` or ``input_shape`` is not 3 positive sides.

    Example:
        >>> Conv4(input_shape=(1, 28, 28))(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, *, num_classes: int = 10, input_shape: tuple[int, int, int] = (3, 32, 32)
    ) -> None:
        super().__init__(
            caller="Conv4",
            plan=(64, 64, "M", 128, 128, "M"),
            num_classes=num_classes,
            input_shape=input_shape,
        )


@MODELS.register(
    "conv6", title="Conv-6",
    help="conv 64, 64, pool, 128, 128, pool, 256, 256, pool; fc 256, 256, out (Frankle & Carbin 2019)",
)
class Conv6(_GlorotConvNet):
    """Conv-6 of Frankle & Carbin 2019 (Fig. 2): conv 64, 64, pool, 128, 128, pool, 256, 256, pool.

    Then fc 256, 256, num_classes. Convolutions are 3x3, padding 1, ReLU; pools are 2x2 max (ceil
    mode, so an 8x8 input keeps a 1x1 map). Glorot-normal weights, zero biases, no dropout. The
    paper trained it with Adam 3e-4, batch 60, 30K iterations, pruning conv layers 15% and fc
    layers 20% per round.

    Args:
        num_classes: number of output logits, at least 2.
        input_shape: shape (C, H, W) of one input image.

    Raises:
        TypeError: if ``num_classes`` is not an int or ``input_shape`` is not a tuple of ints.
        ValueError: if ``num_classes < 2`` or ``input_shape`` is not 3 positive sides.

    Example:
        >>> Conv6(num_classes=10, input_shape=(1, 8, 8))(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, *, num_classes: int = 10, input_shape: tuple[int, int, int] = (3, 32, 32)
    ) -> None:
        super().__init__(
            caller="Conv6",
            plan=(64, 64, "M", 128, 128, "M", 256, 256, "M"),
            num_classes=num_classes,
            input_shape=input_shape,
        )


@MODELS.register("lenet300_100", title="LeNet-300-100", help="fc 300, 100, out (Frankle & Carbin 2019)")
class LeNet300_100(nn.Module):
    """LeNet-300-100 of Frankle & Carbin 2019 (Fig. 2): flatten; fc 300, 100, num_classes.

    ReLU between layers, Glorot-normal weights, zero biases, no dropout. The paper trained it on
    MNIST with Adam 1.2e-3, batch 60, 50K iterations, pruning hidden layers 20% and the output
    layer 10% per round. The first layer's width follows from ``input_shape`` (784 for MNIST).

    Args:
        num_classes: number of output logits, at least 2.
        input_shape: shape (C, H, W) of one input image.

    Raises:
        TypeError: if ``num_classes`` is not an int or ``input_shape`` is not a tuple of ints.
        ValueError: if ``num_classes < 2`` or ``input_shape`` is not 3 positive sides.

    Example:
        >>> LeNet300_100()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, *, num_classes: int = 10, input_shape: tuple[int, int, int] = (1, 28, 28)
    ) -> None:
        super().__init__()
        self.num_classes = validate_num_classes("LeNet300_100", num_classes)
        self.input_shape = validate_input_shape("LeNet300_100", input_shape)
        self.classifier = nn.Sequential(
            nn.Linear(math.prod(self.input_shape), 300),
            nn.ReLU(),
            nn.Linear(300, 100),
            nn.ReLU(),
            nn.Linear(100, self.num_classes),
        )
        _glorot_normal_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute class logits.

        Args:
            x: images of shape (N, C, H, W) matching ``input_shape``.

        Returns:
            Logits of shape (N, num_classes).
        """
        return self.classifier(torch.flatten(x, 1))


def _conv_layers(plan: _Plan, in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for spec in plan:
        if spec == "M":
            # ceil_mode keeps a 1x1 map at 1x1 (8x8 inputs through three pools) and equals floor
            # mode on even sides, so the paper's 32x32 architecture is unchanged.
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        else:
            layers += [nn.Conv2d(in_channels, int(spec), kernel_size=3, padding=1), nn.ReLU()]
            in_channels = int(spec)
    return nn.Sequential(*layers)


def _glorot_normal_init(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
