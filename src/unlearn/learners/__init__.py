"""Learners: a model family = networks + training objective (MEMtrain) + membership signal s(x).

``LEARNERS`` maps the ``pretrain.method`` name to its class; ``build_learner`` rebuilds one from the config
stored in every checkpoint; ``load_learner`` reads a checkpoint safely.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unlearn.learners.base import Learner
from unlearn.learners.simclr import SimCLRLearner
from unlearn.learners.supervised import SupervisedLearner
from unlearn.models.checkpoint import load_state, read_checkpoint

LEARNERS: dict[str, type[Learner]] = {"supervised": SupervisedLearner, "simclr": SimCLRLearner}


def register_learner(cls: type[Learner]) -> type[Learner]:
    """Class decorator used by learner modules that live outside this file."""
    LEARNERS[cls.name] = cls
    return cls


def build_learner(config: dict[str, Any]) -> Learner:
    """Build a fresh learner from its config dict (see :meth:`Learner.config`)."""
    _import_optional_learners()
    method = config.get("method")
    if method not in LEARNERS:
        raise ValueError(f"unknown pretraining method {method!r}; available: {', '.join(sorted(LEARNERS))}")
    return LEARNERS[method](config)


def load_learner(path: str | Path, device: torch.device | str = "cpu") -> tuple[Learner, dict[str, Any]]:
    """Rebuild the learner stored at ``path`` (weights only) and move it to ``device``."""
    payload = read_checkpoint(path)
    try:
        learner = build_learner(payload["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: checkpoint config cannot rebuild a model ({exc})") from None
    load_state(learner, payload["state_dict"], path)
    return learner.to(device), payload


def _import_optional_learners() -> None:
    """Import learner modules that register themselves (MoCo, BYOL) when present."""
    import importlib

    for module in ("unlearn.learners.moco", "unlearn.learners.byol"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
