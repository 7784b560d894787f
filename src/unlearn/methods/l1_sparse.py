"""ℓ1-sparse fine-tune: fine-tune on retain with an ℓ1 penalty on the weights whose weight decays linearly over
the run (Jia et al. 2023, "Model Sparsity Can Simplify Machine Unlearning", arXiv 2304.04934, "sparsity-aware
unlearning").

``L_e = MEMtrain(D_r batch) + γ_e · ‖θ‖₁`` with ``γ_e = γ · (1 − e / E)`` for epoch ``e = 0, …, E−1`` (their
``FT_l1``: constant within an epoch, ``γ`` in the first epoch, ``γ/E`` in the last, i.e. linearly towards 0).
``‖θ‖₁`` sums |θ| over every trainable parameter (their ``l1_regularization`` over ``model.parameters()``).
Works for both families (``training_loss`` is the model's own objective).

Shape:
    retain_x (n_r, C, H, W) in [0, 1], retain_y (n_r,) -> a new learner.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from unlearn.config import L1SparseParams
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.training import fit, make_optimizer, prepare_schedule, trainable


def l1_weight(gamma: float, epoch: int, epochs: int) -> float:
    """ℓ1 weight of 0-based ``epoch`` out of ``epochs``: ``γ (1 − epoch / epochs)``.

    >>> [l1_weight(1.0, e, 4) for e in range(4)]
    [1.0, 0.75, 0.5, 0.25]
    """
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch must lie in [0, {epochs}), got {epoch}")
    return gamma * (1.0 - epoch / epochs)


def l1_sparse(original: Learner, data: UnlearningData, params: L1SparseParams,
              generator: torch.Generator) -> Learner:
    """Fine-tune a copy of ``original`` on retain with the decaying ℓ1 penalty."""
    learner = copy.deepcopy(original)
    weights = trainable(learner)
    state = {"epoch": 0}  # 0-based epoch in progress; fit reports each finished (1-based) epoch

    def batch_loss(idx: Tensor) -> Tensor:
        utility = learner.training_loss(data.retain_x[idx], data.retain_y[idx])
        gamma = l1_weight(params.gamma, state["epoch"], params.epochs)
        if gamma == 0.0:
            return utility
        return utility + gamma * sum(p.abs().sum() for p in weights)

    def next_epoch(finished: int, _loss: float) -> None:
        state["epoch"] = min(finished, params.epochs - 1)

    prepare_schedule(learner, params.epochs, len(data.retain_x), params.batch_size)
    optimizer = make_optimizer(weights, params.optimizer, params.lr)
    fit(learner, batch_loss, len(data.retain_x), epochs=params.epochs, batch_size=params.batch_size,
        optimizer=optimizer, generator=generator, desc="l1_sparse", on_epoch_end=next_epoch)
    return learner
