"""InfoNCE with a queue of negatives, MoCo's objective (He et al. 2020, arXiv 1911.05722; MoCo v2: Chen et
al. 2020, arXiv 2003.04297), and the FIFO memory queue that holds those negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class InfoNCEWithQueue(nn.Module):
    """Each query's positive is its own key; the queue's K keys (earlier batches) are its negatives.

    ``logits = [q·k, q·queue^T] / T`` with L2-normalised ``q`` and ``k``, cross-entropy against class 0.
    The queue rows are used as given: :class:`MemoryQueue` stores them L2-normalised.

    Args:
        temperature: softmax temperature (MoCo v2 uses 0.2).

    Shape:
        q: (B, D) queries (gradients flow); k: (B, D) keys (no gradient in MoCo); queue: (K, D).
        Output: scalar.

    >>> loss = InfoNCEWithQueue(0.2)
    >>> q, queue = torch.eye(2, 4), torch.eye(4)[2:]
    >>> float(loss(q, q, queue)) < float(loss(q, q.flip(0), queue))
    True
    """

    def __init__(self, temperature: float = 0.2) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, q: Tensor, k: Tensor, queue: Tensor) -> Tensor:
        if q.shape != k.shape or q.ndim != 2:
            raise ValueError(f"q and k must both be (B, D), got {tuple(q.shape)} and {tuple(k.shape)}")
        if queue.ndim != 2 or queue.shape[1] != q.shape[1]:
            raise ValueError(f"queue must be (K, {q.shape[1]}), got {tuple(queue.shape)}")
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
        negative = q @ queue.T  # (B, K)
        logits = torch.cat([positive, negative], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


class MemoryQueue(nn.Module):
    """A fixed-size FIFO of L2-normalised keys; the oldest keys are overwritten first.

    Both the keys and the write pointer are buffers, so a checkpoint restores the queue exactly. MoCo
    initialises the queue with random unit vectors (as here, from torch's global RNG).

    Args:
        size: number of keys kept, K (MoCo: 65536 on ImageNet, 4096 on CIFAR-sized runs).
        dim: key dimension, D.

    Shape:
        keys buffer: (K, D); ptr buffer: () int64, the row the next key is written to.

    >>> queue = MemoryQueue(3, 2)
    >>> queue.enqueue(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    >>> int(queue.ptr), queue.keys[:2].tolist()
    (2, [[1.0, 0.0], [0.0, 1.0]])
    """

    keys: Tensor
    ptr: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and key dim must be positive, got size={size}, dim={dim}")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` (normalised, detached) over the oldest entries, wrapping around the end.

        With more than K keys only the last K are kept, at the positions a one-by-one write would leave.

        Shape:
            keys: (B, D).
        """
        if keys.ndim != 2 or keys.shape[1] != self.keys.shape[1]:
            raise ValueError(f"keys must be (B, {self.keys.shape[1]}), got {tuple(keys.shape)}")
        b, size = keys.shape[0], self.size
        if b == 0:
            return
        keys = F.normalize(keys.detach(), dim=1).to(self.keys.dtype)
        start = int(self.ptr)
        if b > size:
            start, keys = start + b - size, keys[-size:]
        rows = (start + torch.arange(len(keys), device=self.keys.device)) % size
        self.keys[rows] = keys
        self.ptr.fill_((int(self.ptr) + b) % size)
