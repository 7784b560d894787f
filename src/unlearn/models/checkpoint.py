"""Checkpoints: a ``state_dict`` plus the JSON-able config that rebuilds the model; nothing pickled.

Loaded with ``torch.load(weights_only=True)``; a truncated file or a mismatched architecture raises a
``ValueError`` that names the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from unlearn.io import atomic_write, sha256_file

FORMAT = "unlearn-checkpoint/1"


def save_checkpoint(path: str | Path, model: nn.Module, config: dict[str, Any]) -> str:
    """Write ``{"format", "config", "state_dict"}`` atomically; returns the file's sha256."""
    payload = {"format": FORMAT, "config": config,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_write(path, lambda p: torch.save(payload, p))
    return sha256_file(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint's payload safely (weights only); clear errors for missing or corrupted files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError for damaged files
        raise ValueError(f"{path}: corrupted or not a checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an {FORMAT} checkpoint")
    return payload


def load_state(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """Load weights strictly, turning key/shape mismatches into one error naming the file."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:3]
        raise ValueError(f"{path}: weights do not fit the architecture in its config: {' '.join(first)}") from None
    return model
