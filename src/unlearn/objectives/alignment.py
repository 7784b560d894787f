"""Per-sample alignment loss between two views: the encoders' membership signal s(x)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def alignment_loss(f1: Tensor, f2: Tensor) -> Tensor:
    """``1 - cos(f1, f2)`` per sample: small for views the encoder maps together (what EncoderMI exploits).

    Shape:
        f1, f2: (B, D). Output: (B,).
    """
    return 1.0 - F.cosine_similarity(f1, f2, dim=1)
