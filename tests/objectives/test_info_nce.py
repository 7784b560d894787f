"""InfoNCE with a queue (MoCo) against a direct computation; the FIFO memory queue."""

import math

import pytest
import torch
import torch.nn.functional as F

from unlearn.objectives.info_nce import InfoNCEWithQueue, MemoryQueue


def info_nce_direct(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, t: float) -> float:
    total = 0.0
    for qi, ki in zip(q.double(), k.double()):
        qi, ki = qi / qi.norm(), ki / ki.norm()
        pos = math.exp(float(qi @ ki) / t)
        neg = sum(math.exp(float(qi @ n) / t) for n in queue.double())
        total += -math.log(pos / (pos + neg))
    return total / len(q)


@pytest.mark.parametrize("t", [0.07, 0.2, 1.0])
def test_matches_direct_computation(t):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    queue = F.normalize(torch.randn(6, 3, generator=g), dim=1)
    assert float(InfoNCEWithQueue(t)(q, k, queue)) == pytest.approx(info_nce_direct(q, k, queue, t), rel=1e-5)


def test_gradient_only_through_queries_and_keys():
    q = torch.randn(3, 4, requires_grad=True)
    k = torch.randn(3, 4, requires_grad=True)
    queue = F.normalize(torch.randn(5, 4), dim=1)
    InfoNCEWithQueue()(q, k, queue).backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and k.grad is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        InfoNCEWithQueue(-1.0)
    with pytest.raises(ValueError, match="queue"):
        InfoNCEWithQueue()(torch.randn(2, 3), torch.randn(2, 3), torch.randn(4, 5))
    with pytest.raises(ValueError, match="positive"):
        MemoryQueue(0, 3)


def test_queue_starts_normalised_and_is_saved_in_state_dict():
    queue = MemoryQueue(5, 3)
    assert torch.allclose(queue.keys.norm(dim=1), torch.ones(5))
    assert set(queue.state_dict()) == {"keys", "ptr"}


def test_enqueue_fifo_and_wrap_around():
    queue = MemoryQueue(5, 2)
    first = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    queue.enqueue(first)
    assert int(queue.ptr) == 3
    assert torch.allclose(queue.keys[:3], F.normalize(first, dim=1))
    before = queue.keys[3:].clone()
    second = torch.tensor([[0.0, -1.0], [-1.0, 0.0], [1.0, 1.0]])
    queue.enqueue(second)  # rows 3, 4 then wraps to row 0
    assert int(queue.ptr) == 1
    expected = F.normalize(second, dim=1)
    assert torch.allclose(queue.keys[3], expected[0]) and torch.allclose(queue.keys[4], expected[1])
    assert torch.allclose(queue.keys[0], expected[2])
    assert torch.allclose(queue.keys[1:3], F.normalize(first[1:], dim=1))  # older keys survive
    assert not torch.allclose(queue.keys[3:], before)


def test_enqueue_more_than_size_keeps_the_last_keys():
    queue = MemoryQueue(3, 2)
    queue.enqueue(torch.tensor([[1.0, 0.0]]))  # ptr 1
    angles = torch.arange(5) * 0.3
    keys = torch.stack([angles.cos(), angles.sin()], dim=1)
    queue.enqueue(keys)  # one-by-one writes go to rows 1, 2, 0, 1, 2
    assert int(queue.ptr) == (1 + 5) % 3
    torch.testing.assert_close(queue.keys, keys[[2, 3, 4]])
