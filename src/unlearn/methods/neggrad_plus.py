"""NegGrad+: descend on retain and ascend on forget at once (Kurmanji et al. 2023, "Towards Unbounded Machine
Unlearning" (SCRUB), arXiv 2302.09880, baseline NegGrad+).

``L = α · MEMtrain(D_r batch) − (1 − α) · MEMtrain(D_f batch)``, as in the authors' ``train_negrad``: an epoch
walks the retain set, and each retain batch is paired with the next batch of an endlessly reshuffled forget set
(``zip(retain_loader, cycle(forget_loader))``). Works for both families (``training_loss`` is the model's own
objective).

Shape:
    retain_x (n_r, C, H, W), forget_x (n_f, C, H, W) in [0, 1]; labels (n,) -> a new learner.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from unlearn.config import NegGradPlusParams
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.training import cycle_batches, fit, make_optimizer, prepare_schedule, trainable


def neggrad_plus(original: Learner, data: UnlearningData, params: NegGradPlusParams,
                 generator: torch.Generator) -> Learner:
    """Minimise ``α L(retain) − (1 − α) L(forget)`` for ``params.epochs`` passes over the retain set."""
    if len(data.forget_x) == 0:
        raise ValueError("neggrad_plus: the forget set is empty; NegGrad+ needs forget batches to ascend on")
    learner = copy.deepcopy(original)
    forget_batches = cycle_batches(len(data.forget_x), params.batch_size, generator)
    alpha = params.alpha

    def batch_loss(idx: Tensor) -> Tensor:
        f = next(forget_batches)
        retain = learner.training_loss(data.retain_x[idx], data.retain_y[idx])
        forget = learner.training_loss(data.forget_x[f], data.forget_y[f])
        return alpha * retain - (1.0 - alpha) * forget

    prepare_schedule(learner, params.epochs, len(data.retain_x), params.batch_size)
    optimizer = make_optimizer(trainable(learner), params.optimizer, params.lr)
    fit(learner, batch_loss, len(data.retain_x), epochs=params.epochs, batch_size=params.batch_size,
        optimizer=optimizer, generator=generator, desc="neggrad_plus")
    return learner
