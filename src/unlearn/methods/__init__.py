"""Unlearning methods, one file each, behind one interface (:class:`UnlearningMethod`)."""

from __future__ import annotations

from unlearn.methods.alignment_calibration import alignment_calibration
from unlearn.methods.base import UnlearningData, UnlearningMethod
from unlearn.methods.finetune import finetune
from unlearn.methods.gradient_ascent import gradient_ascent
from unlearn.methods.gradient_penalty import gradient_penalty
from unlearn.methods.l1_sparse import l1_sparse
from unlearn.methods.neggrad_plus import neggrad_plus
from unlearn.methods.random_labels import random_labels
from unlearn.methods.retrain import retrain
from unlearn.methods.salun import salun
from unlearn.methods.scrub import scrub

METHODS: dict[str, UnlearningMethod] = {
    "retrain": retrain, "finetune": finetune, "gp": gradient_penalty,
    "ga": gradient_ascent, "neggrad_plus": neggrad_plus, "rl": random_labels, "l1_sparse": l1_sparse,
    "scrub": scrub, "salun": salun, "muc": alignment_calibration,
}


def get_method(name: str) -> UnlearningMethod:
    if name not in METHODS:
        raise ValueError(f"unknown unlearning method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = ["METHODS", "UnlearningData", "UnlearningMethod", "get_method"]
