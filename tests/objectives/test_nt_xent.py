"""NT-Xent (SimCLR) against a hand-written loop over the 2B anchors."""

import math

import pytest
import torch
import torch.nn.functional as F

from unlearn.objectives.nt_xent import NTXentLoss


def nt_xent_loop(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    z = F.normalize(torch.cat([z1, z2]), dim=1).double()
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        positive = (i + b) % n
        denom = sum(math.exp(float(z[i] @ z[j]) / t) for j in range(n) if j != i)
        total += -math.log(math.exp(float(z[i] @ z[positive]) / t) / denom)
    return total / n


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_matches_loop(t):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    assert float(NTXentLoss(t)(z1, z2)) == pytest.approx(nt_xent_loop(z1, z2, t), rel=1e-5)


def test_scale_invariant_and_rejects_bad_temperature():
    z1, z2 = torch.randn(4, 6), torch.randn(4, 6)
    loss = NTXentLoss(0.5)
    assert float(loss(3 * z1, z2)) == pytest.approx(float(loss(z1, z2)), rel=1e-5)
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)
