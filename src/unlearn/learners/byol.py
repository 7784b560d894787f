"""BYOL (Grill et al. 2020, arXiv 2006.07733): an online network predicts a slow-moving target network's
projection of another view; no negatives. s(x) = 1 - cos of the backbone features of two augmented views
(as SimCLR)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import Tensor

from unlearn.learners import register_learner
from unlearn.learners.encoder import EncoderLearner
from unlearn.models.heads import ProjectionHead
from unlearn.models.momentum import cosine_momentum, update_momentum
from unlearn.objectives.byol_loss import BYOLLoss

logger = logging.getLogger(__name__)

DEFAULT_STEPS_PER_EPOCH = 10


@register_learner
class BYOLLearner(EncoderLearner):
    """Online backbone + projector + predictor; target backbone + projector updated by EMA.

    Config keys: ``momentum`` (the base EMA momentum τ_base, BYOL: 0.996), ``projection_dim``. Projector and
    predictor are the project's :class:`ProjectionHead` (Linear-BN-ReLU-Linear, as in BYOL) with the
    backbone's width as hidden size.

    The target momentum follows BYOL's cosine schedule from τ_base to 1 over ``total_steps`` optimizer steps.
    The learner does not know the dataset size, so ``total_steps`` defaults to
    ``config["training"]["epochs"] * 10``; the trainer should call :meth:`set_total_steps` with
    ``epochs * batches_per_epoch`` before training. The step counter and ``total_steps`` are buffers, so a
    checkpoint resumes the schedule where it stopped. The target (``target_backbone``,
    ``target_projection``) has ``requires_grad=False``.

    Shape:
        images (B, C, H, W) in [0, 1]; features (B, D); projections and predictions (B, projection_dim).
    """

    name = "byol"

    ema_step: Tensor
    ema_total_steps: Tensor

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        dim = self.backbone.out_dim
        projection_dim = config.get("projection_dim", 256)
        self.projection = ProjectionHead(dim, dim, projection_dim)
        self.predictor = ProjectionHead(projection_dim, dim, projection_dim)
        self.target_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.target_projection = copy.deepcopy(self.projection).requires_grad_(False)
        self.base_momentum = float(config.get("momentum", 0.996))
        if not 0.0 <= self.base_momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1], got {self.base_momentum}")
        self.criterion = BYOLLoss()
        self.register_buffer("ema_step", torch.zeros((), dtype=torch.long))
        self.register_buffer("ema_total_steps",
                             torch.tensor(max(1, config["training"]["epochs"] * DEFAULT_STEPS_PER_EPOCH)))

    @property
    def total_steps(self) -> int:
        """Optimizer steps over which the target momentum rises from τ_base to 1."""
        return int(self.ema_total_steps)

    def set_total_steps(self, n: int, restart: bool = False) -> None:
        """Set the schedule length (``epochs * batches_per_epoch``); ``restart`` also resets the step counter
        (e.g. to give a fine-tuning run its own schedule)."""
        if n < 1:
            raise ValueError(f"total_steps must be positive, got {n}")
        self.ema_total_steps.fill_(int(n))
        if restart:
            self.ema_step.zero_()

    @property
    def current_momentum(self) -> float:
        """The momentum the next :meth:`after_step` applies."""
        return cosine_momentum(int(self.ema_step), self.total_steps, self.base_momentum)

    def _online(self, x: Tensor) -> Tensor:
        return self.predictor(self.projection(self.features(x)))

    @torch.no_grad()
    def _target(self, x: Tensor) -> Tensor:
        return self.target_projection(self.target_backbone(self.normalize(x)))

    def training_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Symmetrised BYOL loss over two augmented views (mean over the batch of both directions, in [0, 8])."""
        v1, v2 = self.augment(x), self.augment(x)
        return self.criterion(self._online(v1), self._online(v2), self._target(v1), self._target(v2))

    @torch.no_grad()
    def after_step(self) -> None:
        """Target EMA with the cosine-scheduled momentum, then advance the step counter."""
        m = self.current_momentum
        update_momentum(self.backbone, self.target_backbone, m)
        update_momentum(self.projection, self.target_projection, m)
        self.ema_step.add_(1)
