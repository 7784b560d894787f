"""Checkpoints: a ``state_dict`` plus the JSON-able config that rebuilds the model; nothing pickled.

Loaded with ``torch.load(weights_only=True)``; a truncated file or a mismatched architecture raises a
``ValueError`` that names the file.

A checkpoint's bytes are a function of its weights and config only: :func:`torch_bytes` serialises into memory,
where ``torch.save`` names the zip archive's records ``archive/...`` (saving to a path names them after the file,
and the atomic write's temp name is random), and the bytes are then written atomically. Every ``torch.save`` of
the package goes through :func:`save_torch`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unlearn.io import sha256_bytes, write_bytes

FORMAT = "unlearn-checkpoint/1"

#: Config keys that are the training budget and recipe, not the model: a retrain reference or an unlearned model
#: may differ there from the original (see :func:`architecture_diff`).
TRAINING_KEYS = frozenset({"training"})


def torch_bytes(obj: Any) -> bytes:
    """``torch.save(obj)`` into memory: the same object gives the same bytes, whatever file they end up in."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def save_torch(path: str | Path, obj: Any) -> str:
    """Serialise ``obj`` with ``torch.save`` and write the bytes atomically to ``path``; returns their sha256."""
    data = torch_bytes(obj)
    write_bytes(path, data)
    return sha256_bytes(data)


def save_checkpoint(path: str | Path, model: nn.Module, config: dict[str, Any]) -> str:
    """Write ``{"format", "config", "state_dict"}`` atomically; returns the file's sha256.

    Identical weights and config give identical bytes (and sha256), whatever ``path`` is.
    """
    payload = {"format": FORMAT, "config": config,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    return save_torch(path, payload)


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


def architecture_diff(stored: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Dotted keys (``backbone.width``) where ``stored`` differs from ``expected``, as ``{key: (stored, expected)}``.

    Every key of ``expected`` except :data:`TRAINING_KEYS` is compared; a key missing from ``stored`` reads as
    ``None``. Keys only ``stored`` has (bookkeeping such as ``seconds``) are ignored.

    >>> architecture_diff({"method": "simclr", "backbone": {"width": 16}}, {"method": "simclr", "backbone": {"width": 32}})
    {'backbone.width': (16, 32)}
    """
    diff: dict[str, tuple[Any, Any]] = {}

    def walk(ours: Any, theirs: Any, prefix: str) -> None:
        if isinstance(theirs, dict) and isinstance(ours, dict):
            for key in theirs:
                walk(ours.get(key), theirs[key], f"{prefix}{key}.")
        elif _normal(ours) != _normal(theirs):
            diff[prefix[:-1]] = (ours, theirs)

    walk(stored, {k: v for k, v in expected.items() if k not in TRAINING_KEYS}, "")
    return diff


def check_architecture(path: str | Path, stored: dict[str, Any], expected: dict[str, Any],
                       expected_from: str = "params.yaml pretrain") -> None:
    """Raise one ``ValueError`` naming ``path`` and every differing key when the checkpoint's config ``stored``
    does not describe the model ``expected`` (e.g. :func:`unlearn.pretraining.learner_config` of the params)."""
    diff = architecture_diff(stored, expected)
    if diff:
        keys = "; ".join(f"{k}: {a!r} in the checkpoint, {b!r} in {expected_from}" for k, (a, b) in diff.items())
        raise ValueError(f"{path}: checkpoint of another architecture than {expected_from} ({keys})")


def _normal(value: Any) -> Any:
    """Compare lists and tuples alike (a config read back from JSON or pickle may hold either)."""
    return [_normal(v) for v in value] if isinstance(value, (list, tuple)) else value
