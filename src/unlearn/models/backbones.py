"""Backbones: image batch -> feature vector. Each exposes ``out_dim``.

- ``small_cnn``: two 3x3 conv blocks and global pooling; suits 8x8 digits and fast CPU runs.
- ``resnet_compact``: a CIFAR-style ResNet (3x3 stem, no max-pool) with configurable width and blocks.
- ``resnet18``: the CIFAR ResNet-18 (width 64, blocks [2, 2, 2, 2]); a GPU configuration.
"""

from __future__ import annotations

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """Conv(3x3)-ReLU x2 per block, two blocks, global average pooling.

    Shape:
        input (B, C, H, W); output (B, 2 * width).
    """

    def __init__(self, in_channels: int, width: int = 32) -> None:
        super().__init__()
        self.out_dim = 2 * width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): two 3x3 convs with BN and an identity/projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        return (self.body(x) + self.shortcut(x)).relu()


class CifarResNet(nn.Module):
    """CIFAR-style ResNet: 3x3 stem without max-pool, four stages of basic blocks, global pooling.

    Shape:
        input (B, C, H, W); output (B, 8 * width).
    """

    def __init__(self, in_channels: int, width: int = 16, blocks: list[int] | tuple[int, ...] = (1, 1, 1, 1)) -> None:
        super().__init__()
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"blocks must list four positive counts, got {blocks}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(inplace=True)]
        cin = width
        for stage, n_blocks in enumerate(blocks):
            cout = width * 2 ** stage
            for i in range(n_blocks):
                layers.append(BasicBlock(cin, cout, 2 if (i == 0 and stage > 0) else 1))
                cin = cout
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_backbone(name: str, in_channels: int, width: int = 32, blocks: list[int] | None = None) -> nn.Module:
    """Build a backbone by name (``small_cnn``, ``resnet_compact``, ``resnet18``)."""
    if name == "small_cnn":
        return SmallCNN(in_channels, width)
    if name == "resnet_compact":
        return CifarResNet(in_channels, width, blocks or [1, 1, 1, 1])
    if name == "resnet18":
        return CifarResNet(in_channels, 64, [2, 2, 2, 2])
    raise ValueError(f"unknown backbone {name!r}; expected small_cnn, resnet_compact or resnet18")
