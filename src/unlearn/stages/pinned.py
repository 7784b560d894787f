"""A checkpoint pinned by sha256 in a local, content-addressed store (``<store>/<sha256>.pt``): the base stage's
production checkpoint (``start.json``) and ``unlearn@retrain``'s stored retrain reference (``reference.json``)
are both copied out of their store by :func:`copy_pinned_checkpoint`, after the same three checks."""

from __future__ import annotations

import shutil
from pathlib import Path

from unlearn.io import atomic_write, sha256_file


def architecture(config: dict) -> dict:
    """The config without its training budget (a retrain reference may have trained for other epochs)."""
    return {k: v for k, v in config.items() if k != "training"}


def copy_pinned_checkpoint(store: str | Path, sha256: str, like: str | Path, out: str | Path, *, pinned_by: str,
                           remedy: str) -> Path:
    """Copy ``<store>/<sha256>.pt`` to ``out`` (atomically) once it is there, intact and of ``like``'s architecture.

    ``pinned_by`` names the pin in the errors (e.g. "the checkpoint of m v3 named by start.json"); ``remedy`` says
    what to do when the file is missing. Returns the source path.
    """
    src = Path(store) / f"{sha256}.pt"
    if not src.is_file():
        raise FileNotFoundError(f"{src}: {pinned_by} is not in the local store; {remedy}")
    if sha256_file(src) != sha256:
        raise ValueError(f"{src}: sha256 does not match {pinned_by}; the store was altered")
    from unlearn.models.checkpoint import read_checkpoint  # torch: only on this path

    ours, theirs = (architecture(read_checkpoint(p)["config"]) for p in (like, src))
    if ours != theirs:
        raise ValueError(f"{src}: {pinned_by} was built with another model config than {like}; it must have the "
                         "same architecture and recipe")
    atomic_write(out, lambda p: shutil.copyfile(src, p))
    return src
