"""BYOL's regression loss between the online prediction and the target projection (Grill et al. 2020,
arXiv 2006.07733)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """Per-sample normalised MSE ``‖p/‖p‖ - z/‖z‖‖² = 2 - 2 cos(p, z)``, in [0, 4].

    Shape:
        p: (B, D) online predictions; z: (B, D) target projections. Output: (B,).

    >>> import torch
    >>> byol_loss(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 1.0]])).tolist()
    [0.0, 2.0]
    """
    p, z = F.normalize(p, dim=-1), F.normalize(z, dim=-1)
    return 2.0 - 2.0 * (p * z).sum(dim=-1)


class BYOLLoss(nn.Module):
    """BYOL's symmetrised loss: view 1's prediction regresses view 2's target projection and vice versa,
    ``L = mean_b [byol_loss(p1, sg(z2)) + byol_loss(p2, sg(z1))]`` (the paper's ``L + L~``), in [0, 8].

    The target projections are detached here (the paper's stop-gradient), so only the online network learns.

    Shape:
        p1, p2: (B, D) online predictions of views 1 and 2; z1, z2: (B, D) target projections of views 1
        and 2. Output: scalar.

    >>> import torch
    >>> p = torch.eye(2)
    >>> float(BYOLLoss()(p, p, p, p)), float(BYOLLoss()(p, p, p.flip(0), p.flip(0)))
    (0.0, 4.0)
    """

    def forward(self, p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
        return (byol_loss(p1, z2.detach()) + byol_loss(p2, z1.detach())).mean()
