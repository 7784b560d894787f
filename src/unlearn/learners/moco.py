"""MoCo v2 (He et al. 2020, arXiv 1911.05722; Chen et al. 2020, arXiv 2003.04297): InfoNCE between a query
encoder and a momentum key encoder, with a queue of earlier keys as negatives; s(x) = 1 - cos of the backbone
features of two augmented views (as SimCLR)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn.learners import register_learner
from unlearn.learners.encoder import EncoderLearner
from unlearn.models.heads import ProjectionHead
from unlearn.models.momentum import update_momentum
from unlearn.objectives.info_nce import InfoNCEWithQueue, MemoryQueue

logger = logging.getLogger(__name__)

KEY_BN_GROUPS = 2  # single-device stand-in for MoCo's shuffling BN (see MoCoLearner.key_projections)


@register_learner
class MoCoLearner(EncoderLearner):
    """Query backbone + MLP projection head trained by InfoNCE against a momentum key encoder and a queue.

    Config keys: ``temperature`` (MoCo v2: 0.2), ``momentum`` (key encoder EMA, MoCo: 0.999),
    ``queue_size`` (K negatives), ``projection_dim``. The head is the project's :class:`ProjectionHead`
    (MoCo v2's 2-layer MLP head, with BatchNorm as in SimCLR).

    The key encoder (``key_backbone``, ``key_projection``) has ``requires_grad=False``: it never receives
    gradients and optimizers skip it; :meth:`after_step` moves it towards the query encoder by EMA. The queue
    (``queue.keys``, ``queue.ptr``) is a buffer, so a checkpoint stores it with the key encoder that filled it.

    Shape:
        images (B, C, H, W) in [0, 1]; features (B, D); projections and queue keys (·, projection_dim).
    """

    name = "moco"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        dim = self.backbone.out_dim
        projection_dim = config.get("projection_dim", 128)
        self.projection = ProjectionHead(dim, dim, projection_dim)
        self.key_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.key_projection = copy.deepcopy(self.projection).requires_grad_(False)
        self.momentum = float(config.get("momentum", 0.999))
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1], got {self.momentum}")
        self.queue = MemoryQueue(int(config.get("queue_size", 4096)), projection_dim)
        self.criterion = InfoNCEWithQueue(config.get("temperature", 0.2))

    @torch.no_grad()
    def key_projections(self, x: Tensor) -> Tensor:
        """L2-normalised key projections of (augmented) images, without gradients.

        In training mode the batch is shuffled and split into ``KEY_BN_GROUPS`` groups whose BatchNorm
        statistics are computed separately, so a key is normalised with other samples' statistics than its
        query (MoCo's "shuffling BN", which stops the model from cheating through batch statistics).

        Shape:
            x (B, C, H, W) -> (B, projection_dim).
        """
        x = self.normalize(x)
        groups = KEY_BN_GROUPS if self.training and len(x) >= 2 * KEY_BN_GROUPS else 1
        perm = torch.randperm(len(x), device=x.device)
        k = torch.cat([self.key_projection(self.key_backbone(chunk)) for chunk in x[perm].chunk(groups)])
        return F.normalize(k[torch.argsort(perm)], dim=1)

    def training_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """InfoNCE of the queries of one view against the keys of another view and the queue.

        In training mode the batch's keys are enqueued after the loss is computed (the loss uses a copy of
        the queue, so the in-place write does not disturb back-propagation): the next batch sees them as
        negatives, made by the key encoder that :meth:`after_step` is about to update, as in MoCo's
        Algorithm 1. In eval mode the queue is left unchanged.
        """
        q = self.projection(self.features(self.augment(x)))
        k = self.key_projections(self.augment(x))
        loss = self.criterion(q, k, self.queue.keys.clone())
        if self.training:
            self.queue.enqueue(k)
        return loss

    @torch.no_grad()
    def after_step(self) -> None:
        """Key encoder EMA: ``θ_k ← m θ_k + (1 - m) θ_q`` (BatchNorm buffers copied)."""
        update_momentum(self.backbone, self.key_backbone, self.momentum)
        update_momentum(self.projection, self.key_projection, self.momentum)
