"""SimCLR (Chen et al. 2020, arXiv 2002.05709): NT-Xent between two augmented views' projections;
s(x) = 1 - cos of the backbone features of two augmented views."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from unlearn.learners.encoder import EncoderLearner
from unlearn.models.heads import ProjectionHead
from unlearn.objectives.nt_xent import NTXentLoss


class SimCLRLearner(EncoderLearner):
    """Backbone + projection head trained with NT-Xent.

    Shape:
        images (B, C, H, W) in [0, 1]; features (B, D); projections (B, projection_dim).
    """

    name = "simclr"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        dim = self.backbone.out_dim
        self.projection = ProjectionHead(dim, dim, config.get("projection_dim", 64))
        self.criterion = NTXentLoss(config.get("temperature", 0.5))

    def training_loss(self, x: Tensor, y: Tensor) -> Tensor:
        z1 = self.projection(self.features(self.augment(x)))
        z2 = self.projection(self.features(self.augment(x)))
        return self.criterion(z1, z2)

