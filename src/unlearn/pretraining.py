"""Train a learner from scratch with its own objective (pretraining, and the retrain-from-scratch reference)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from unlearn.learners import build_learner
from unlearn.learners.base import Learner
from unlearn.training import EpochCallback, fit, make_optimizer, prepare_schedule, seed_everything, trainable


def learner_config(pretrain: Any, in_channels: int, num_classes: int) -> dict[str, Any]:
    """The checkpoint config of a learner built from ``params.pretrain`` (a :class:`PretrainParams`)."""
    return {
        "method": pretrain.method,
        "backbone": pretrain.backbone.model_dump(),
        "augment": pretrain.augment,
        "in_channels": in_channels,
        "num_classes": num_classes,
        "temperature": pretrain.temperature,
        "projection_dim": pretrain.projection_dim,
        "queue_size": pretrain.queue_size,
        "momentum": pretrain.momentum,
        "training": {"epochs": pretrain.epochs, "batch_size": pretrain.batch_size, "lr": pretrain.lr,
                     "weight_decay": pretrain.weight_decay, "optimizer": pretrain.optimizer, "seed": pretrain.seed},
    }


def train_from_scratch(config: dict[str, Any], images: Tensor, labels: Tensor, *, desc: str = "pretrain",
                       on_epoch_end: EpochCallback | None = None) -> tuple[Learner, list[float]]:
    """Build a fresh learner from ``config`` and train it with ``config["training"]``.

    Args:
        images: Shape: (N, C, H, W) float in [0, 1], on the training device.
        labels: Shape: (N,) int64 on the same device (ignored by self-supervised objectives).
    Returns:
        The trained learner and its per-epoch mean loss.
    """
    t = config["training"]
    generator = seed_everything(t["seed"])
    learner = build_learner(config).to(images.device)
    prepare_schedule(learner, t["epochs"], len(images), t["batch_size"])
    optimizer = make_optimizer(trainable(learner), t["optimizer"], t["lr"], t["weight_decay"])
    history = fit(learner, lambda idx: learner.training_loss(images[idx], labels[idx]), len(images),
                  epochs=t["epochs"], batch_size=t["batch_size"], optimizer=optimizer, generator=generator,
                  desc=desc, on_epoch_end=on_epoch_end)
    return learner, history
