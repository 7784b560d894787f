"""Alignment Calibration (AC) for encoders, from MUC (Wang et al. 2024, "MUC: Machine Unlearning for Contrastive
Learning with Black-box Evaluation", arXiv 2406.03603; code github.com/EhanW/Alignment-Calibration). Encoders
only.

What the public AC code does (SimCLR/MoCo, Lightning ``training_step``): batches mix retain and forget samples;
the contrastive loss is kept on all of them, but a forget anchor's positive is a view of a *random other*
forget image ("negative alignment calibration"), and ``α · mean cos(z(t₁x_f), z(t₂x_f))`` over the forget
samples' own two views (projections) is added ("positive alignment calibration", α ∈ [0.8, 2] in their scripts).

What is implemented here (reconstruction, because ``Learner.training_loss`` is opaque and cannot swap a
forget anchor's positive for another image):

``L = MEMtrain(D_r batch) + β · A(D_f batch)``, an epoch walking the retain set with forget batches alongside,
where ``s(x) = 1 − cos(g(t₁x), g(t₂x))`` is the encoder's membership signal on *backbone features* (what
EncoderMI and our verifier attack; the AC code uses projections), computed in eval mode as at evaluation, and

- ``calibration="reference"`` (default): ``A = relu(τ − mean s(x_f))`` with ``τ`` the mean of ``s`` over the
  reference non-members under the original model (measured once, no gradient): forget views are pulled apart
  only until they are as aligned as non-members are, never beyond (over-forgetting is itself detectable);
- ``calibration="cosine"``: ``A = mean cos = 1 − mean s(x_f)``, the AC code's positive-alignment term, no target.

The negative-alignment part of AC is not reproduced.

Shape:
    retain_x / forget_x / reference_x (n, C, H, W) in [0, 1] -> a new encoder learner.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import Tensor

from unlearn.config import AlignmentCalibrationParams
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.training import cycle_batches, fit, make_optimizer, prepare_schedule, trainable

logger = logging.getLogger(__name__)


def eval_signal(learner: Learner, x: Tensor, y: Tensor) -> Tensor:
    """Per-sample membership signal ``s(x)`` in eval mode (differentiable in the weights). Shape: (B,...) -> (B,)."""
    was_training = learner.training
    learner.eval()
    s = learner.signal(learner.signal_views(x), y)
    learner.train(was_training)
    return s


@torch.no_grad()
def mean_signal(learner: Learner, x: Tensor, y: Tensor, batch_size: int = 256) -> float:
    """Mean ``s(x)`` over a data set, in eval mode, without gradients: the non-member level τ."""
    total = sum(eval_signal(learner, x[i:i + batch_size], y[i:i + batch_size]).sum().item()
                for i in range(0, len(x), batch_size))
    return total / len(x)


def alignment_calibration(original: Learner, data: UnlearningData, params: AlignmentCalibrationParams,
                          generator: torch.Generator) -> Learner:
    """Keep the encoder's own objective on retain and calibrate the forget set's view alignment."""
    if original.family != "encoder":
        raise ValueError(f"muc: alignment calibration needs an encoder (got {original.name})")
    if len(data.forget_x) == 0:
        raise ValueError("muc: the forget set is empty; alignment calibration needs forget samples")
    if params.calibration == "reference" and len(data.reference_x) == 0:
        raise ValueError("muc: the reference (non-member) set is empty; calibration='reference' needs it")
    learner = copy.deepcopy(original)
    tau = 0.0
    if params.calibration == "reference":
        tau = mean_signal(original, data.reference_x, data.reference_y)
        logger.info("muc: non-member alignment level tau_s=%.4f", tau)
    forget_batches = cycle_batches(len(data.forget_x), params.batch_size, generator)

    def batch_loss(idx: Tensor) -> Tensor:
        f = next(forget_batches)
        s_f = eval_signal(learner, data.forget_x[f], data.forget_y[f]).mean()
        calibration = torch.relu(tau - s_f) if params.calibration == "reference" else 1.0 - s_f
        return learner.training_loss(data.retain_x[idx], data.retain_y[idx]) + params.beta * calibration

    prepare_schedule(learner, params.epochs, len(data.retain_x), params.batch_size)
    optimizer = make_optimizer(trainable(learner), params.optimizer, params.lr)
    fit(learner, batch_loss, len(data.retain_x), epochs=params.epochs, batch_size=params.batch_size,
        optimizer=optimizer, generator=generator, desc=f"muc-{params.calibration}")
    return learner
