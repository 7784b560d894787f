"""Momentum (exponential moving average) encoders: MoCo's key encoder (He et al. 2020, arXiv 1911.05722) and
BYOL's target network with its cosine momentum schedule (Grill et al. 2020, arXiv 2006.07733)."""

from __future__ import annotations

import math

import torch
from torch import nn


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, m: float) -> None:
    """EMA update ``θ_target ← m θ_target + (1 - m) θ_online`` in place; buffers (BatchNorm running
    statistics) are copied from the online network.

    Args:
        online: the network trained by gradient descent.
        target: a copy of it with the same architecture (parameter and buffer names and shapes).
        m: momentum in [0, 1]; 1 keeps the target, 0 copies the online network.

    >>> a, b = nn.Linear(1, 1, bias=False), nn.Linear(1, 1, bias=False)
    >>> _ = a.weight.data.fill_(1.0), b.weight.data.fill_(0.0)
    >>> update_momentum(a, b, 0.75); b.weight.item()
    0.25
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {m}")
    for kind, src, dst in (("parameters", dict(online.named_parameters()), dict(target.named_parameters())),
                           ("buffers", dict(online.named_buffers()), dict(target.named_buffers()))):
        if src.keys() != dst.keys():
            raise ValueError(f"online and target networks differ in {kind}: "
                             f"{sorted(set(src) ^ set(dst))[:5]}")
        for name, t in dst.items():
            s = src[name].detach()
            if s.shape != t.shape:
                raise ValueError(f"{kind[:-1]} {name!r}: online shape {tuple(s.shape)} != target {tuple(t.shape)}")
            if kind == "buffers" or not t.is_floating_point():
                t.copy_(s)
            else:
                t.mul_(m).add_(s, alpha=1.0 - m)


def cosine_momentum(step: int, total_steps: int, base: float = 0.996) -> float:
    """BYOL's schedule ``τ = 1 - (1 - τ_base)(cos(π k / K) + 1) / 2``: ``τ_base`` at step 0, 1 at step K
    (steps past K stay at 1).

    >>> cosine_momentum(0, 100, 0.996), cosine_momentum(100, 100, 0.996)
    (0.996, 1.0)
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0.0 <= base <= 1.0:
        raise ValueError(f"base momentum must lie in [0, 1], got {base}")
    k = min(max(step, 0), total_steps)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * k / total_steps) + 1.0) / 2.0
