"""SalUn: saliency-masked random labels (Fan et al. 2024, "SalUn: Empowering Machine Unlearning via Gradient-based
Weight Saliency in Both Image Classification and Generation", arXiv 2310.12508). Supervised only.

1. Weight saliency from the original model (eval mode): ``g = |Σ_batches ∇_θ CE(f(x_f), y_f)|``; the mask
   ``m = 1[g ≥ γ]`` keeps the ``mask_ratio`` share of weights with the largest ``g`` over all parameters ranked
   together (the paper's Eq. 4 with γ the quantile; SalUn's default 0.5 = above the median).
2. Random labels (:mod:`unlearn.methods.random_labels`) restricted to salient weights: every parameter gradient
   is multiplied by its mask before the optimizer sees it, through ``Tensor.register_hook`` on the parameters
   (:func:`masked_gradients`), so the shared ``fit`` is unchanged. With no weight decay a zero gradient leaves a
   weight exactly where it was under Adam and SGD (their moments stay zero), so non-salient weights do not move.

Shape:
    forget_x (n_f, C, H, W) in [0, 1], forget_y (n_f,) -> masks: one {0, 1} tensor per trainable parameter.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearn.config import SalUnParams
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.methods.random_labels import fit_random_labels
from unlearn.training import trainable


def forget_gradient_magnitude(learner: Learner, params: Sequence[nn.Parameter], x: Tensor, y: Tensor,
                              batch_size: int) -> list[Tensor]:
    """``|Σ_batches ∇_θ mean CE(f(x_b), y_b)|`` per parameter, in eval mode (SalUn's ``save_gradient_ratio``
    without its optimizer steps). Shape: x (n, C, H, W), y (n,) -> one tensor shaped like each parameter."""
    was_training = learner.training
    learner.eval()
    total = [torch.zeros_like(p) for p in params]
    for i in range(0, len(x), batch_size):
        loss = F.cross_entropy(learner.logits(x[i:i + batch_size]), y[i:i + batch_size])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for acc, g in zip(total, grads):
            if g is not None:
                acc.add_(g)
    learner.train(was_training)
    return [t.abs() for t in total]


def saliency_masks(magnitudes: Sequence[Tensor], ratio: float) -> list[Tensor]:
    """{0, 1} masks marking the ``ratio`` share of entries with the largest magnitude, ranked over all tensors
    together (ties broken by ``topk``). Shape: tensors of any shapes -> masks of the same shapes and dtypes.

    >>> [m.tolist() for m in saliency_masks([torch.tensor([3.0, 0.0]), torch.tensor([1.0, 2.0])], 0.5)]
    [[1.0, 0.0], [0.0, 1.0]]
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"mask ratio must lie in (0, 1], got {ratio}")
    flat = torch.cat([m.detach().flatten() for m in magnitudes])
    keep = torch.zeros_like(flat)
    keep[torch.topk(flat, max(1, round(ratio * flat.numel()))).indices] = 1.0
    return [chunk.view_as(m).to(m.dtype) for chunk, m in zip(keep.split([m.numel() for m in magnitudes]), magnitudes)]


@contextmanager
def masked_gradients(params: Sequence[nn.Parameter], masks: Sequence[Tensor]) -> Iterator[None]:
    """Within the block, the gradient reaching each parameter is multiplied by its mask (``register_hook``);
    the hooks are removed on exit."""
    handles = [p.register_hook(lambda grad, m=m: grad * m) for p, m in zip(params, masks)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def salun(original: Learner, data: UnlearningData, params: SalUnParams, generator: torch.Generator) -> Learner:
    """Random-label fine-tuning of a copy of ``original`` restricted to its forget-salient weights."""
    if original.family != "supervised":
        raise ValueError(f"salun: SalUn needs a supervised model (got {original.name})")
    if len(data.forget_x) == 0:
        raise ValueError("salun: the forget set is empty; the saliency mask needs forget samples")
    learner = copy.deepcopy(original)
    weights = trainable(learner)
    masks = saliency_masks(
        forget_gradient_magnitude(learner, weights, data.forget_x, data.forget_y, params.batch_size),
        params.mask_ratio)
    with masked_gradients(weights, masks):
        fit_random_labels(learner, data, params, generator, desc="salun")
    return learner
