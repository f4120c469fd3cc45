"""ResNet-20 for CIFAR-10 (He et al. 2016, Section 4.2), as used for lottery tickets by open_lth."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lth_prune.models.build import MODELS, validate_input_shape, validate_num_classes

__all__ = ["ResNet20"]

_SHORTCUTS = ("conv", "pad")


@MODELS.register(
    "resnet20", title="ResNet-20",
    help="CIFAR ResNet of 3 stages of 3 basic blocks (He et al. 2016; open_lth)",
)
class ResNet20(nn.Module):
    """ResNet-20 for CIFAR-10 (He et al. 2016, "Deep Residual Learning", Section 4.2).

    Architecture: conv 3x3 16, BatchNorm, ReLU; three stages of three basic blocks with 16, 32 and
    64 channels (the first block of stages 2 and 3 halves the spatial size with stride 2); global
    average pool; fc 64->num_classes. A basic block is conv 3x3, BN, ReLU, conv 3x3, BN, plus the
    shortcut, ReLU. Convolutions have no bias (BN follows each). Conv and fc weights use Kaiming
    normal initialization (He et al. 2015), as in open_lth; BatchNorm starts at weight 1, bias 0.

    Where a block changes shape, the shortcut is either ``"conv"``, a strided 1x1 conv + BN as in
    open_lth (Frankle et al. 2020; 272,474 parameters for CIFAR-10), or ``"pad"``, He et al.'s
    option A: subsample by 2 and zero-pad the new channels, no parameters (269,722 for CIFAR-10).

    Args:
        num_classes: number of output logits, at least 2.
        input_shape: shape (C, H, W) of one input image.
        shortcut: ``"conv"`` or ``"pad"``, the shortcut used where a block changes shape.

    Raises:
        TypeError: if ``num_classes`` is not an int, ``input_shape`` is not a tuple of ints or
            ``shortcut`` is not a str.
        ValueError: if ``num_classes < 2``, ``input_shape`` is not 3 positive sides or
            ``shortcut`` is not ``"conv"`` or ``"pad"``.

    Example:
        >>> model = ResNet20(num_classes=10, input_shape=(3, 32, 32))
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        *,
        num_classes: int = 10,
        input_shape: tuple[int, int, int] = (3, 32, 32),
        shortcut: str = "conv",
    ) -> None:
        super().__init__()
        self.num_classes = validate_num_classes("ResNet20", num_classes)
        self.input_shape = validate_input_shape("ResNet20", input_shape)
        if not isinstance(shortcut, str):
            raise TypeError(
                f"ResNet20(): shortcut must be a str, got {type(shortcut).__name__}."
            )
        if shortcut not in _SHORTCUTS:
            raise ValueError(
                f"ResNet20(): shortcut must be one of {', '.join(map(repr, _SHORTCUTS))}, "
                f"got {shortcut!r}."
            )
        self.shortcut = shortcut
        self.conv = nn.Conv2d(self.input_shape[0], 16, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks: list[nn.Module] = []
        in_channels = 16
        for stage, channels in enumerate((16, 32, 64)):
            for index in range(3):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(_BasicBlock(in_channels, channels, stride, shortcut))
                in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, self.num_classes)
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
        out = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


class _BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers around a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        elif shortcut == "conv":
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = _PadShortcut(out_channels - in_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class _PadShortcut(nn.Module):
    """He et al.'s option A: subsample by ``stride`` and zero-pad the extra channels."""

    def __init__(self, extra_channels: int, stride: int) -> None:
        super().__init__()
        self.extra_channels = extra_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Slicing from 0 with step `stride` gives ceil(side / stride) rows, the same count as the
        # block's 3x3 stride-2 pad-1 conv, so odd sides (7x7 from a 28x28 input) still line up.
        x = x[:, :, :: self.stride, :: self.stride]
        before = self.extra_channels // 2
        return F.pad(x, (0, 0, 0, 0, before, self.extra_channels - before))
