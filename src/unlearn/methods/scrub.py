"""SCRUB (Kurmanji et al. 2023, "Towards Unbounded Machine Unlearning", arXiv 2302.09880). Supervised only.

A student initialised from the teacher (the original, frozen) alternates:

- max-step on the forget set: ``L_max = −KL_T(teacher ‖ student)`` (move the student away from the teacher);
- min-step on the retain set: ``L_min = α · KL_T(teacher ‖ student) + γ · CE(student, y)``;

with ``KL_T(t ‖ s) = T² · mean_batch Σ_k softmax(t/T)_k (log softmax(t/T)_k − log softmax(s/T)_k)`` (the
authors' ``DistillKL``). Each epoch is one max pass over the forget set (only in the first ``msteps`` epochs),
then one min pass over the retain set, exactly as in the authors' loop; here each pass is one call of the shared
``fit`` with ``epochs=1`` (two ``fit`` calls per epoch while max-steps remain), sharing one optimizer. Teacher
and student see the same (augmented) batch.

Shape:
    logits (B, K); forget_x / retain_x (n, C, H, W) in [0, 1]; labels (n,) -> a new classifier.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn.config import ScrubParams
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.training import fit, make_optimizer, trainable


def distill_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """``T² · KL(softmax(t/T) ‖ softmax(s/T))`` averaged over the batch. Shape: (B, K), (B, K) -> ()."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * temperature ** 2


def scrub(original: Learner, data: UnlearningData, params: ScrubParams, generator: torch.Generator) -> Learner:
    """Run ``params.epochs`` SCRUB epochs (max-steps in the first ``params.msteps``) on a copy of ``original``."""
    if original.family != "supervised":
        raise ValueError(f"scrub: SCRUB needs a supervised model (got {original.name})")
    if len(data.forget_x) == 0:
        raise ValueError("scrub: the forget set is empty; SCRUB's max-steps need forget samples")
    student = copy.deepcopy(original)
    teacher = copy.deepcopy(original).eval().requires_grad_(False)
    temperature = params.temperature

    def student_and_teacher(x: Tensor) -> tuple[Tensor, Tensor]:
        x = student.augment(x)
        with torch.no_grad():
            t = teacher.logits(x)
        return student.logits(x), t

    def max_loss(idx: Tensor) -> Tensor:
        s, t = student_and_teacher(data.forget_x[idx])
        return -distill_kl(s, t, temperature)

    def min_loss(idx: Tensor) -> Tensor:
        s, t = student_and_teacher(data.retain_x[idx])
        return params.alpha * distill_kl(s, t, temperature) + params.gamma * F.cross_entropy(s, data.retain_y[idx])

    optimizer = make_optimizer(trainable(student), params.optimizer, params.lr)
    common = dict(epochs=1, batch_size=params.batch_size, optimizer=optimizer, generator=generator)
    for epoch in range(params.epochs):
        if epoch < params.msteps:
            fit(student, max_loss, len(data.forget_x), desc=f"scrub-max {epoch + 1}/{params.epochs}", **common)
        fit(student, min_loss, len(data.retain_x), desc=f"scrub-min {epoch + 1}/{params.epochs}", **common)
    return student
