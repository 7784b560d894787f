"""Retrain from scratch on the retain set: the gold reference every certificate compares against."""

from __future__ import annotations

import torch

from unlearn.config import RetrainParams
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.pretraining import train_from_scratch


def retrain(original: Learner, data: UnlearningData, params: RetrainParams, generator: torch.Generator) -> Learner:
    """Train a fresh learner with the original's own config and training budget on the retain set only
    (``params.epochs`` and ``params.seed`` override the number of epochs and the training seed when set)."""
    config = original.config()
    overrides = {k: v for k, v in (("epochs", params.epochs), ("seed", params.seed)) if v is not None}
    config["training"] = {**config["training"], **overrides}
    learner, _ = train_from_scratch(config, data.retain_x, data.retain_y, desc="retrain")
    return learner
