"""The learner interface every model family implements; the unlearning methods only use this interface."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from unlearn.data.augment import augment_preset
from unlearn.models.backbones import build_backbone


class Learner(nn.Module):
    """A trainable model family.

    Images enter every method as float tensors in [0, 1], Shape: (B, C, H, W); labels as (B,) int64.

    Subclasses set ``name`` and ``family`` (``"supervised"`` or ``"encoder"``) and implement
    :meth:`training_loss` (the family's own objective, "MEMtrain"), :meth:`signal_views` and :meth:`signal`
    (the per-sample membership signal s(x), differentiable with respect to the views).
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self._config = dict(config)
        bb = config["backbone"]
        self.backbone = build_backbone(bb["name"], config["in_channels"], bb.get("width", 32), bb.get("blocks"))
        self.augment = augment_preset(config.get("augment", "none"))

    def config(self) -> dict[str, Any]:
        """The JSON-able config that rebuilds this learner (stored in every checkpoint)."""
        return dict(self._config)

    @staticmethod
    def normalize(x: Tensor) -> Tensor:
        """Map [0, 1] pixels to [-1, 1]."""
        return x * 2.0 - 1.0

    def forward(self, x: Tensor) -> Tensor:
        """What a registered model serves: logits for classifiers, backbone features for encoders."""
        return self.logits(x) if self.family == "supervised" else self.features(x)

    def features(self, x: Tensor) -> Tensor:
        """Backbone features of un-augmented images. Shape: (B, C, H, W) -> (B, D)."""
        return self.backbone(self.normalize(x))

    def training_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """The family's own objective on a batch (scalar)."""
        raise NotImplementedError

    def signal_views(self, x: Tensor) -> list[Tensor]:
        """The inputs s(x) is computed from (the gradient-penalty term differentiates s with respect to them)."""
        raise NotImplementedError

    def signal(self, views: list[Tensor], y: Tensor) -> Tensor:
        """Per-sample membership signal s(x): lower for samples the model fits better. Shape: (B,)."""
        return self.signal_from_features([self.features(v) for v in views], y)

    def signal_from_features(self, features: list[Tensor], y: Tensor) -> Tensor:
        """s(x) from the backbone (penultimate) features of each view, Shape: V x (B, D) -> (B,).

        Lets the gradient penalty differentiate s with respect to the features instead of the pixels.
        """
        raise NotImplementedError

    def logits(self, x: Tensor) -> Tensor:
        """Class logits (supervised family only). Shape: (B, K)."""
        raise NotImplementedError(f"{self.name} is an encoder: it has no classifier head; use a probe")

    @torch.no_grad()
    def view_features(self, x: Tensor, n_views: int) -> Tensor:
        """Features of ``n_views`` augmented views per image, for EncoderMI. Shape: (B, n_views, D)."""
        return torch.stack([self.features(self.augment(x)) for _ in range(n_views)], dim=1)

    def after_step(self) -> None:
        """Hook after each optimizer step (momentum encoders update here)."""
