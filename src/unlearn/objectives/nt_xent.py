"""NT-Xent, SimCLR's normalized temperature-scaled cross-entropy (Chen et al. 2020, arXiv 2002.05709)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NTXentLoss(nn.Module):
    """For 2B views, each view's positive is its pair; the other 2B-2 views are negatives.

    Args:
        temperature: softmax temperature (SimCLR uses 0.5 on CIFAR-10).

    Shape:
        z1, z2: (B, D) projections of two views of the same B images. Output: scalar.

    >>> loss = NTXentLoss(0.5)
    >>> float(loss(torch.eye(2, 4), torch.eye(2, 4))) < float(loss(torch.eye(2, 4), torch.eye(2, 4).flip(0)))
    True
    """

    def __init__(self, temperature: float = 0.5) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        b = z1.shape[0]
        z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, D)
        sim = z @ z.T / self.temperature  # (2B, 2B)
        sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
        targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
        return F.cross_entropy(sim, targets)
