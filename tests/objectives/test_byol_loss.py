"""BYOL's normalised regression loss."""

import pytest
import torch
import torch.nn.functional as F

from unlearn.objectives.byol_loss import BYOLLoss, byol_loss


def test_equals_two_minus_two_cos_and_normalised_mse():
    g = torch.Generator().manual_seed(0)
    p, z = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    out = byol_loss(p, z)
    assert out.shape == (6,)
    torch.testing.assert_close(out, 2 - 2 * F.cosine_similarity(p, z, dim=1))
    torch.testing.assert_close(out, (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(dim=1))


def test_symmetrised_module_and_stop_gradient():
    g = torch.Generator().manual_seed(1)
    p1, p2 = (torch.randn(4, 3, generator=g, requires_grad=True) for _ in range(2))
    z1, z2 = (torch.randn(4, 3, generator=g, requires_grad=True) for _ in range(2))
    loss = BYOLLoss()(p1, p2, z1, z2)
    torch.testing.assert_close(loss, (byol_loss(p1, z2) + byol_loss(p2, z1)).mean())
    loss.backward()
    assert p1.grad is not None and z1.grad is None and z2.grad is None
