"""Unlearning methods, one file each, behind one interface (:class:`UnlearningMethod`)."""

from __future__ import annotations

from unlearn.methods.base import UnlearningData, UnlearningMethod
from unlearn.methods.finetune import finetune
from unlearn.methods.gradient_penalty import gradient_penalty
from unlearn.methods.retrain import retrain

METHODS: dict[str, UnlearningMethod] = {"retrain": retrain, "finetune": finetune, "gp": gradient_penalty}


def get_method(name: str) -> UnlearningMethod:
    if name not in METHODS:
        raise ValueError(f"unknown unlearning method {name!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[name]


__all__ = ["METHODS", "UnlearningData", "UnlearningMethod", "get_method"]
