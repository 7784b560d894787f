"""Random labels (RL): fine-tune on the forget samples relabelled at random, together with the retain samples and
their true labels (Golatkar et al. 2020, "Eternal Sunshine of the Spotless Net", arXiv 1911.04933; the RL
baseline as implemented in SalUn, Fan et al. 2024, arXiv 2310.12508). Supervised models only.

One epoch walks the union ``D_f ∪ D_r`` in shuffled batches (SalUn's ``ConcatDataset`` of relabelled forget and
retain data) and minimises the classifier's own loss, ``CE(f(x), ỹ)``, with ``ỹ`` a random *wrong* label for
forget samples (drawn once, uniform over the other classes) and the true label for retain samples. SalUn's code
draws ``ỹ`` uniformly over all classes (so about 1/K of them stay correct); we exclude the true label.

Shape:
    forget_x (n_f, C, H, W), retain_x (n_r, C, H, W) in [0, 1]; labels (n,) int64 -> a new classifier.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from unlearn.config import MethodBudget, RandomLabelsParams
from unlearn.learners.base import Learner
from unlearn.methods.base import UnlearningData
from unlearn.training import fit, make_optimizer, trainable


def wrong_labels(y: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """A uniformly random label different from each true one: ``(y + U{1, …, K−1}) mod K``.

    Shape:
        y (n,) int64 -> (n,) int64 on y's device.

    >>> wrong_labels(torch.tensor([0, 1, 2]), 3, torch.Generator().manual_seed(0)).ne(torch.tensor([0, 1, 2])).all()
    tensor(True)
    """
    if num_classes < 2:
        raise ValueError(f"random labels need at least 2 classes, got {num_classes}")
    shift = torch.randint(1, num_classes, y.shape, generator=generator)
    return (y + shift.to(y.device)) % num_classes


def fit_random_labels(learner: Learner, data: UnlearningData, params: MethodBudget, generator: torch.Generator,
                      desc: str = "rl") -> list[float]:
    """Train ``learner`` in place on relabelled forget ∪ retain data; returns the epoch losses.

    Shared by :func:`random_labels` and SalUn (which wraps this call in a gradient mask).
    """
    num_classes = int(learner.config()["num_classes"])
    forget_labels = wrong_labels(data.forget_y, num_classes, generator)
    n_forget = len(data.forget_x)

    def batch_loss(idx: Tensor) -> Tensor:
        f, r = idx[idx < n_forget], idx[idx >= n_forget] - n_forget
        x = torch.cat([data.forget_x[f], data.retain_x[r]])
        y = torch.cat([forget_labels[f], data.retain_y[r]])
        return learner.training_loss(x, y)

    optimizer = make_optimizer(trainable(learner), params.optimizer, params.lr)
    return fit(learner, batch_loss, n_forget + len(data.retain_x), epochs=params.epochs,
               batch_size=params.batch_size, optimizer=optimizer, generator=generator, desc=desc)


def random_labels(original: Learner, data: UnlearningData, params: RandomLabelsParams,
                  generator: torch.Generator) -> Learner:
    """Fine-tune a copy of ``original`` on forget samples with random wrong labels plus the retain set."""
    if original.family != "supervised":
        raise ValueError(f"rl: random labels needs a supervised model (got {original.name})")
    if len(data.forget_x) == 0:
        raise ValueError("rl: the forget set is empty; random labels has nothing to relabel")
    learner = copy.deepcopy(original)
    fit_random_labels(learner, data, params, generator, desc="rl")
    return learner
