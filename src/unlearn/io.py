"""Atomic file writes and content hashes: every output goes through here (temp file + rename)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


#: errno values that mean "the filesystem is full": no space, or the user's quota is spent.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it onto ``path``.

    A crash leaves either the old file or the new one, never a half-written file. The temp name never reaches
    the content (writers get a path, not a name to embed): :func:`write_bytes` callers serialise first.

    Raises:
        OSError: ``errno.ENOSPC`` (or ``EDQUOT``) with ``filename`` set to ``path`` (never the temp name) when the
            disk is full at any step; the temp file is removed and any previous ``path`` is left as it was.
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp_path = Path(tmp)
        write(tmp_path)
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise OSError(exc.errno, f"{os.strerror(exc.errno)}; not written (any previous file is unchanged)",
                          str(path)) from None
        raise
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` atomically: the file's bytes are exactly ``data`` (the way to write a serialised model)."""
    def _write(p: Path) -> None:
        with open(p, "wb") as fh:
            fh.write(data)

    return atomic_write(path, _write)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as pretty, key-sorted JSON atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` in ``.npy`` format atomically."""
    def _write(p: Path) -> None:
        with open(p, "wb") as fh:
            np.save(fh, array)

    return atomic_write(path, _write)


def read_json(path: str | Path) -> Any:
    """Read JSON, naming the file in the error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_ids(ids: list[str]) -> str:
    """Hash of an id list: sha256 of the ids joined by newlines, in the given order."""
    return sha256_bytes("\n".join(ids).encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
