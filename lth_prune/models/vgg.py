"""VGG-16 for CIFAR-10 as used for lottery tickets by Frankle et al. 2020 (open_lth)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lth_prune.models.build import MODELS, validate_input_shape, validate_num_classes

__all__ = ["VGG16"]

# Output channels of each 3x3 conv, "M" for a 2x2 max pool (Simonyan & Zisserman 2015, config D,
# without the last pool and the three large fc layers).
_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


@MODELS.register(
    "vgg16", title="VGG-16",
    help="13 convolutions with BatchNorm, one fc output layer (open_lth's CIFAR VGG-16)",
)
class VGG16(nn.Module):
    """VGG-16 with BatchNorm for CIFAR-10, as in Frankle et al. 2020 and open_lth.

    Architecture: thirteen 3x3 convs (padding 1), each followed by BatchNorm and ReLU, with
    channels 64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512 (M = 2x2
    max pool); global average pool; a single fc 512->num_classes. 14,728,266 parameters for
    CIFAR-10. Conv and fc weights use Kaiming normal initialization, as in open_lth; BatchNorm
    starts at weight 1, bias 0. Source: Frankle et al. 2020, "Linear Mode Connectivity and the
    Lottery Ticket Hypothesis", and open_lth's ``cifar_vgg_16``; the conv stack is Simonyan &
    Zisserman 2015's configuration D.

    Pools use ``ceil_mode=True`` so that an 8x8 input keeps a 1x1 map through all four pools; on
    even sides, as everywhere in a 32x32 input, that equals floor mode. For a 32x32 input the
    global average pool sees 2x2 maps, exactly open_lth's ``AvgPool2d(2)``.

    Args:
        num_classes: number of output logits, at least 2.
        input_shape: shape (C, H, W) of one input image.

    Raises:
        TypeError: if ``num_classes`` is not an int or ``input_shape`` is not a tuple of ints.
        ValueError: if ``num_classes < 2`` or ``input_shape`` is not 3 positive sides.

    Example:
        >>> model = VGG16(num_classes=10, input_shape=(3, 32, 32))
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, *, num_classes: int = 10, input_shape: tuple[int, int, int] = (3, 32, 32)
    ) -> None:
        super().__init__()
        self.num_classes = validate_num_classes("VGG16", num_classes)
        self.input_shape = validate_input_shape("VGG16", input_shape)
        layers: list[nn.Module] = []
        in_channels = self.input_shape[0]
        for spec in _PLAN:
            if spec == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                layers += [
                    nn.Conv2d(in_channels, int(spec), kernel_size=3, padding=1),
                    nn.BatchNorm2d(int(spec)),
                    nn.ReLU(),
                ]
                in_channels = int(spec)
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(in_channels, self.num_classes)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute class logits.

        Args:
            x: images of shape (N, C, H, W) matching ``input_shape``.

        Returns:
            Logits of shape (N, num_classes).
        """
        out = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.fc(torch.flatten(out, 1))
