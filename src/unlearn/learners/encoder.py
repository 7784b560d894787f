"""What every self-supervised encoder shares: the two-view alignment membership signal."""

from __future__ import annotations

from torch import Tensor

from unlearn.learners.base import Learner
from unlearn.objectives.alignment import alignment_loss


class EncoderLearner(Learner):
    """An encoder family: s(x) = 1 - cos of the backbone features of two augmented views (EncoderMI's signal).

    Shape:
        views: two (B, C, H, W) tensors; signal (B,).
    """

    family = "encoder"

    def signal_views(self, x: Tensor) -> list[Tensor]:
        return [self.augment(x), self.augment(x)]

    def signal_from_features(self, features: list[Tensor], y: Tensor) -> Tensor:
        return alignment_loss(features[0], features[1])
