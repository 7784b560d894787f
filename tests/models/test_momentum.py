"""EMA updates and BYOL's cosine momentum schedule."""

import math

import pytest
import torch
from torch import nn

from unlearn.models.momentum import cosine_momentum, update_momentum


def pair() -> tuple[nn.Module, nn.Module]:
    online = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    target = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    with torch.no_grad():
        for i, (a, b) in enumerate(zip(online.parameters(), target.parameters())):
            a.fill_(1.0 + i)
            b.fill_(-1.0)
        online[1].running_mean.fill_(5.0)
        online[1].num_batches_tracked.fill_(7)
    return online, target


def test_ema_exact_values_and_buffers_copied():
    online, target = pair()
    update_momentum(online, target, 0.9)
    for i, t in enumerate(target.parameters()):
        assert torch.allclose(t, torch.full_like(t, 0.9 * -1.0 + 0.1 * (1.0 + i)))
    assert torch.equal(target[1].running_mean, torch.full((3,), 5.0))
    assert int(target[1].num_batches_tracked) == 7
    assert all(not t.requires_grad or t.grad is None for t in target.parameters())


def test_ema_endpoints_and_errors():
    online, target = pair()
    update_momentum(online, target, 1.0)
    assert all(torch.all(t == -1.0) for t in target.parameters())
    update_momentum(online, target, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters()))
    with pytest.raises(ValueError, match="momentum"):
        update_momentum(online, target, 1.5)
    with pytest.raises(ValueError, match="differ"):
        update_momentum(online, nn.Linear(2, 3), 0.5)


def test_cosine_schedule():
    assert cosine_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(100, 100, 0.99) == pytest.approx(1.0)
    assert cosine_momentum(500, 100, 0.99) == pytest.approx(1.0)
    assert cosine_momentum(50, 100, 0.99) == pytest.approx(1 - 0.01 * (math.cos(math.pi / 2) + 1) / 2)
    values = [cosine_momentum(k, 10, 0.9) for k in range(11)]
    assert values == sorted(values)
    with pytest.raises(ValueError, match="total_steps"):
        cosine_momentum(0, 0, 0.9)
