"""Train a learner from scratch with its own objective (pretraining, and the retrain-from-scratch reference)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from unlearn import distributed
from unlearn.learners import build_learner
from unlearn.learners.base import Learner
from unlearn.models.checkpoint import load_state, save_torch
from unlearn.training import EpochCallback, fit, make_optimizer, prepare_schedule, seed_everything, trainable

logger = logging.getLogger(__name__)


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
                     "weight_decay": pretrain.weight_decay, "optimizer": pretrain.optimizer, "seed": pretrain.seed,
                     # only when set: checkpoints and caches made before the option keep their config
                     **({"lr_schedule": pretrain.lr_schedule} if pretrain.lr_schedule != "constant" else {})},
    }


def scheduled_lr(base_lr: float, epoch: int, epochs: int, schedule: str = "constant") -> float:
    """The learning rate of ``epoch`` (1-based): constant, or cosine decay from ``base_lr`` towards 0 per epoch.

    >>> scheduled_lr(0.1, 1, 10, "cosine"), round(scheduled_lr(0.1, 6, 10, "cosine"), 3)
    (0.1, 0.05)
    """
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
    raise ValueError(f"unknown lr schedule {schedule!r}; expected constant or cosine")


def train_from_scratch(config: dict[str, Any], images: Tensor, labels: Tensor, *, desc: str = "pretrain",
                       on_epoch_end: EpochCallback | None = None,
                       monitor: Callable[[Learner, int], None] | None = None, monitor_every: int = 10,
                       resume_path: str | Path | None = None, checkpoint_every: int = 10,
                       amp: bool = False) -> tuple[Learner, list[float]]:
    """Build a fresh learner from ``config`` and train it with ``config["training"]``.

    Args:
        images: Shape: (N, C, H, W) float in [0, 1], on the training device.
        labels: Shape: (N,) int64 on the same device (ignored by self-supervised objectives).
        monitor: called as ``monitor(learner, epoch)`` every ``monitor_every`` epochs and at the end
            (e.g. kNN / linear-probe curves).
        resume_path: a training-state file (weights, optimizer, RNG, epoch) written every ``checkpoint_every``
            epochs; when it exists at start and was made with the same config, training resumes from it.
            It is deleted once training completes.
        amp: bfloat16 autocast when the data is on CUDA (ignored on CPU).
    Returns:
        The trained learner and its per-epoch mean loss.
    """
    t = config["training"]
    generator = seed_everything(t["seed"])
    learner = build_learner(config).to(images.device)
    prepare_schedule(learner, t["epochs"], len(images), t["batch_size"])
    optimizer = make_optimizer(trainable(learner), t["optimizer"], t["lr"], t["weight_decay"])
    history: list[float] = []
    if resume_path is not None and Path(resume_path).is_file():
        history = load_training_state(resume_path, config, learner, optimizer, generator)
        logger.info("%s: resuming from %s after epoch %d", desc, resume_path, len(history))

    def set_lr(epoch: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = scheduled_lr(t["lr"], epoch, t["epochs"], t.get("lr_schedule", "constant"))

    def epoch_end(epoch: int, loss: float) -> None:
        history.append(loss)
        set_lr(epoch + 1)
        if on_epoch_end is not None:
            on_epoch_end(epoch, loss)
        if monitor is not None and (epoch % monitor_every == 0 or epoch == t["epochs"]):
            monitor(learner, epoch)
        if resume_path is not None and epoch % checkpoint_every == 0 and epoch < t["epochs"] and distributed.is_main():
            save_training_state(resume_path, config, learner, optimizer, generator, history)

    set_lr(len(history) + 1)
    autocast = "cuda" if amp and images.device.type == "cuda" else None
    # one process: learner.training_loss(images[idx], labels[idx]); under torchrun, DDP on this rank's shard
    fit(learner, distributed.batch_loss(learner, images, labels), len(images), epochs=t["epochs"],
        batch_size=t["batch_size"], optimizer=optimizer, generator=generator, desc=desc, on_epoch_end=epoch_end,
        start_epoch=len(history) + 1, autocast_device=autocast)
    if resume_path is not None and distributed.is_main():
        Path(resume_path).unlink(missing_ok=True)
    return learner, history


def save_training_state(path: str | Path, config: dict[str, Any], learner: Learner, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator, history: list[float]) -> None:
    """Everything needed to continue training exactly: weights, optimizer, RNG states, loss history."""
    state = {"config": config, "model": learner.state_dict(), "optimizer": optimizer.state_dict(),
             "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "history": list(history)}
    save_torch(path, state)


def load_training_state(path: str | Path, config: dict[str, Any], learner: Learner, optimizer: torch.optim.Optimizer,
                        generator: torch.Generator) -> list[float]:
    """Restore a training state in place (weights only); a state made with another config is an error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # damaged file
        raise ValueError(f"{path}: corrupted training state ({type(exc).__name__}); delete it to start over") from None
    if state.get("config") != config:
        raise ValueError(f"{path}: training state was made with a different config; delete it to start over")
    load_state(learner, state["model"], path)
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    return list(state["history"])
