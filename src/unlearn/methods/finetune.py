"""Fine-tune (FT): continue the model's own objective on the retain set (Golatkar et al. 2020; a baseline
that relies on catastrophic forgetting)."""

from __future__ import annotations

import copy

import torch

from unlearn.config import MethodBudget
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.training import fit, make_optimizer, prepare_schedule, trainable


def finetune(original: Learner, data: UnlearningData, params: MethodBudget, generator: torch.Generator) -> Learner:
    learner = copy.deepcopy(original)
    prepare_schedule(learner, params.epochs, len(data.retain_x), params.batch_size)
    optimizer = make_optimizer(trainable(learner), params.optimizer, params.lr)
    fit(learner, lambda idx: learner.training_loss(data.retain_x[idx], data.retain_y[idx]), len(data.retain_x),
        epochs=params.epochs, batch_size=params.batch_size, optimizer=optimizer, generator=generator,
        desc="finetune")
    return learner
