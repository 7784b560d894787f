"""Gradient ascent (GA): maximise the model's own objective on the forget set (Thudi et al. 2022, "Unrolling
SGD", arXiv 2109.13398; Graves et al. 2021, "Amnesiac Machine Learning", arXiv 2010.10981).

``L = −MEMtrain(D_f)``: cross-entropy for classifiers, the contrastive/BYOL loss for encoders. An epoch walks
the forget set (as in the Unlearn-Sparse/SalUn GA baseline); nothing keeps utility, so GA is unbounded and
drifts far with many steps or a large lr.

Shape:
    forget_x (n_f, C, H, W) in [0, 1], forget_y (n_f,) -> a new learner of the same family.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from unlearn.config import GradientAscentParams
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.training import fit, make_optimizer, prepare_schedule, trainable


def gradient_ascent(original: Learner, data: UnlearningData, params: GradientAscentParams,
                    generator: torch.Generator) -> Learner:
    """Minimise ``−training_loss`` on forget batches for ``params.epochs`` passes over the forget set."""
    if len(data.forget_x) == 0:
        raise ValueError("ga: the forget set is empty; gradient ascent has nothing to ascend on")
    learner = copy.deepcopy(original)

    def batch_loss(idx: Tensor) -> Tensor:
        return -learner.training_loss(data.forget_x[idx], data.forget_y[idx])

    prepare_schedule(learner, params.epochs, len(data.forget_x), params.batch_size)
    optimizer = make_optimizer(trainable(learner), params.optimizer, params.lr)
    fit(learner, batch_loss, len(data.forget_x), epochs=params.epochs, batch_size=params.batch_size,
        optimizer=optimizer, generator=generator, desc="ga")
    return learner
