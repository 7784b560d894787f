"""Every learner on a tiny problem: builds from its config, trains, exposes a differentiable signal."""

import copy

import pytest
import torch
import torch.nn.functional as F

from unlearn.learners import LEARNERS, build_learner
from unlearn.models.momentum import cosine_momentum
from unlearn.training import fit, make_optimizer, seed_everything

METHODS = ["supervised", "simclr", "moco", "byol"]


def tiny_config(method: str, augment: str = "digits", **overrides) -> dict:
    cfg = {"method": method, "backbone": {"name": "small_cnn", "width": 4}, "augment": augment, "in_channels": 1,
           "num_classes": 2, "temperature": 0.5, "projection_dim": 8, "queue_size": 16, "momentum": 0.9,
           "training": {"epochs": 10, "batch_size": 8, "lr": 1e-2, "weight_decay": 0.0, "optimizer": "adam",
                        "seed": 0}}
    cfg.update(overrides)
    return cfg


def tiny_data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random 8x8 images (upsampled 3x3 noise); label = brighter than the median."""
    x = F.interpolate(torch.rand(n, 1, 3, 3), size=8, mode="bilinear", align_corners=True)
    brightness = x.mean(dim=(1, 2, 3))
    return x, (brightness > brightness.median()).long()


def train(learner, x, y, epochs: int = 10) -> list[float]:
    optimizer = make_optimizer(learner.parameters(), "adam", 1e-2)
    return fit(learner, lambda idx: learner.training_loss(x[idx], y[idx]), len(x), epochs=epochs, batch_size=8,
               optimizer=optimizer, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method", METHODS)
def test_build_from_config(method):
    learner = build_learner(tiny_config(method))
    assert type(learner) is LEARNERS[method] and learner.name == method
    assert learner.config() == tiny_config(method)
    x, _ = tiny_data(4)
    assert learner.features(x).shape == (4, 8)


@pytest.mark.parametrize("method", ["supervised", "simclr", "byol"])
def test_fit_lowers_epoch_loss(method):
    seed_everything(0)
    x, y = tiny_data()
    history = train(build_learner(tiny_config(method)), x, y)
    assert len(history) == 10 and all(map(torch.isfinite, torch.tensor(history)))
    assert sum(history[-3:]) / 3 < 0.95 * history[0], history


@pytest.mark.parametrize("method", METHODS)
def test_gradient_steps_lower_the_objective(method):
    """A deterministic objective (no augmentation; the same RNG state for MoCo's key shuffle; MoCo's queue
    and BYOL's target held fixed): a few small SGD steps on one batch must lower it. MoCo's epoch loss is
    not monotone (its queue fills with ever harder negatives), so this checks its gradients point downhill."""
    seed_everything(0)
    x, y = tiny_data(16)
    learner = build_learner(tiny_config(method, augment="none"))
    queue = copy.deepcopy(learner.queue.state_dict()) if method == "moco" else None

    def objective() -> torch.Tensor:
        torch.manual_seed(1)
        if queue is not None:
            learner.queue.load_state_dict(queue)
        return learner.training_loss(x, y)

    optimizer = torch.optim.SGD([p for p in learner.parameters() if p.requires_grad], lr=0.05)
    start = objective().item()
    for _ in range(5):
        optimizer.zero_grad()
        objective().backward()
        optimizer.step()
    end = objective().item()
    assert end < start - 1e-4, (start, end)


def test_moco_trains_through_fit():
    seed_everything(0)
    x, y = tiny_data()
    learner = build_learner(tiny_config("moco"))
    history = train(learner, x, y, epochs=3)
    assert all(torch.isfinite(torch.tensor(history)))
    assert int(learner.queue.ptr) == (3 * 32) % 16


def test_moco_key_encoder_ema_and_queue():
    seed_everything(0)
    x, y = tiny_data(8)
    learner = build_learner(tiny_config("moco"))
    assert all(not p.requires_grad for p in learner.key_backbone.parameters())
    assert all(not p.requires_grad for p in learner.key_projection.parameters())
    key_before = copy.deepcopy(learner.key_backbone.state_dict())
    optimizer = torch.optim.SGD([p for p in learner.parameters() if p.requires_grad], lr=0.1)
    loss = learner.training_loss(x, y)
    assert int(learner.queue.ptr) == 8
    assert torch.allclose(learner.queue.keys[:8].norm(dim=1), torch.ones(8))
    loss.backward()
    assert all(p.grad is None for p in learner.key_backbone.parameters())
    optimizer.step()
    learner.after_step()
    for name, key in learner.key_backbone.state_dict().items():
        query = learner.backbone.state_dict()[name]
        assert not torch.equal(key, key_before[name])
        torch.testing.assert_close(key, 0.9 * key_before[name] + 0.1 * query)
    learner.eval()
    learner.training_loss(x, y)
    assert int(learner.queue.ptr) == 8  # eval mode leaves the queue alone


def test_byol_target_ema_with_cosine_schedule():
    seed_everything(0)
    x, y = tiny_data(8)
    learner = build_learner(tiny_config("byol"))
    assert learner.total_steps == 10 * 10
    learner.set_total_steps(4)
    assert learner.total_steps == 4 and "ema_total_steps" in learner.state_dict()
    target_before = copy.deepcopy(learner.target_projection.state_dict())
    optimizer = torch.optim.SGD([p for p in learner.parameters() if p.requires_grad], lr=0.1)
    learner.training_loss(x, y).backward()
    assert all(p.grad is None for p in learner.target_backbone.parameters())
    optimizer.step()
    learner.after_step()
    m = cosine_momentum(0, 4, 0.9)
    for name, target in learner.target_projection.state_dict().items():
        online = learner.projection.state_dict()[name]
        expected = online if not target.is_floating_point() or "running" in name else \
            m * target_before[name] + (1 - m) * online
        torch.testing.assert_close(target, expected)
    assert int(learner.ema_step) == 1
    assert learner.current_momentum == pytest.approx(cosine_momentum(1, 4, 0.9))
    learner.set_total_steps(4, restart=True)
    assert int(learner.ema_step) == 0
    with pytest.raises(ValueError, match="total_steps"):
        learner.set_total_steps(0)


@pytest.mark.parametrize("method", METHODS)
def test_signal_shape_and_differentiable_in_views(method):
    seed_everything(0)
    x, y = tiny_data(6)
    learner = build_learner(tiny_config(method)).eval()
    views = [v.detach().requires_grad_(True) for v in learner.signal_views(x)]
    s = learner.signal(views, y)
    assert s.shape == (6,)
    grads = torch.autograd.grad(s.sum(), views)
    assert all(g.shape == v.shape and torch.isfinite(g).all() for g, v in zip(grads, views))
    assert any(g.abs().sum() > 0 for g in grads)


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown pretraining method"):
        build_learner(tiny_config("nope"))
