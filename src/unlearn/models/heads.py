"""Heads on top of a backbone's features."""

from __future__ import annotations

from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """SimCLR's MLP projection head (Chen et al. 2020): Linear-BN-ReLU-Linear.

    Shape:
        input (B, in_dim); output (B, out_dim).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                                 nn.Linear(hidden_dim, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
