"""The project lock: one pipeline or deletion-request run per project at a time.

``unlearn run``, the pipeline flow and the deletion-request ingestion take an exclusive ``flock`` on
``<project>/.unlearn.lock`` without waiting. A second run exits at once with one line naming the lock file and the
holder's pid, instead of being stopped midway by DVC's own lock (whose message says to delete ``.dvc/tmp/rwlock``
by hand). The kernel releases a ``flock`` when its holder dies, so a killed run never leaves a stale lock.

The lock is re-entrant within one process (``unlearn run`` holds it while the pipeline flow it starts takes it
again; the deletion-request flow holds it while it runs the pipeline flow as a sub-flow).

>>> import tempfile
>>> project = tempfile.mkdtemp()
>>> with project_lock(project) as path:
...     with project_lock(project):
...         path.name
'.unlearn.lock'
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

LOCK_NAME = ".unlearn.lock"

_guard = threading.Lock()
_held: dict[Path, tuple[IO[str], int, int]] = {}  # lock path -> (open file, depth, owner pid)


class ProjectLocked(RuntimeError):
    """Another process holds the project lock; the message names the lock file and the holder's pid."""


def lock_path(project: str | Path) -> Path:
    """``<project>/.unlearn.lock``."""
    return Path(project).resolve() / LOCK_NAME


def find_project(start: str | Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds ``params.yaml`` (a project root), else None."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").is_file():
            return folder
    return None


def _holder(fh: IO[str]) -> str:
    try:
        fh.seek(0)
        text = fh.read(32).strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "pid unknown"


@contextmanager
def project_lock(project: str | Path) -> Iterator[Path]:
    """Hold the project's lock for the ``with`` block; raise :class:`ProjectLocked` at once when another process
    holds it. Yields the lock file's path. The file keeps the holder's pid while held (and afterwards, harmlessly:
    only the ``flock`` counts)."""
    path = lock_path(project)
    pid = os.getpid()
    with _guard:
        if path in _held and _held[path][2] != pid:  # inherited through fork: the parent's, not ours
            del _held[path]
        if path in _held:
            fh, depth, _ = _held[path]
            _held[path] = (fh, depth + 1, pid)
        else:
            fh = open(path, "a+", encoding="utf-8")
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fh)
                fh.close()
                raise ProjectLocked(f"{path}: another unlearn run holds this project's lock ({holder}); wait for it "
                                    "to finish, then run again") from None
            except BaseException:
                fh.close()
                raise
            fh.seek(0)
            fh.truncate()
            fh.write(f"{pid}\n")
            fh.flush()
            _held[path] = (fh, 1, pid)
    try:
        yield path
    finally:
        with _guard:
            fh, depth, _ = _held[path]
            if depth > 1:
                _held[path] = (fh, depth - 1, pid)
            else:
                del _held[path]
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                fh.close()
