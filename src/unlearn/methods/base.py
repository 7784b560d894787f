"""The shared interface of unlearning methods: same data handles, same budget knobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from unlearn.learners.base import Learner


@dataclass(frozen=True)
class UnlearningData:
    """Tensors on the training device. Images float in [0, 1], Shape: (n, C, H, W); labels (n,) int64.

    ``reference`` holds non-members the unlearner may use (never trained on); the test split is never here.
    """

    retain_x: Tensor
    retain_y: Tensor
    forget_x: Tensor
    forget_y: Tensor
    reference_x: Tensor
    reference_y: Tensor


class UnlearningMethod(Protocol):
    """``method(original, data, params, generator) -> unlearned``; the original learner is not modified."""

    def __call__(self, original: Learner, data: UnlearningData, params: Any,
                 generator: torch.Generator) -> Learner: ...
