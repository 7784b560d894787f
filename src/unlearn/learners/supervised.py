"""Supervised classifier: backbone + linear head, cross-entropy; s(x) = per-sample cross-entropy."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from unlearn.learners.base import Learner


class SupervisedLearner(Learner):
    """Cross-entropy classifier.

    Shape:
        images (B, C, H, W) in [0, 1]; logits (B, num_classes).
    """

    name = "supervised"
    family = "supervised"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.head = nn.Linear(self.backbone.out_dim, config["num_classes"])

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def training_loss(self, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(self.logits(self.augment(x)), y)

    def signal_views(self, x: Tensor) -> list[Tensor]:
        return [x]

    def signal_from_features(self, features: list[Tensor], y: Tensor) -> Tensor:
        return F.cross_entropy(self.head(features[0]), y, reduction="none")
