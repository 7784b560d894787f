"""Fault injection for the fault-matrix tests (never installed with the package; the tests put this folder on
``PYTHONPATH`` of the processes they start).

``UNLEARN_FAULT_ENOSPC=<glob>``: every open for writing of a path that matches the glob (``fnmatch`` on the
absolute path) raises ``OSError(ENOSPC)``, as a full disk would. Reads are untouched. SQLite and other C-level
writers are not intercepted: the ledger case uses a real full filesystem instead.
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import io
import os

_PATTERN = os.environ.get("UNLEARN_FAULT_ENOSPC")

if _PATTERN:
    _open, _os_open = builtins.open, os.open
    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _full(path: object) -> bool:
        try:
            return fnmatch.fnmatch(os.path.abspath(os.fspath(path)), _PATTERN)
        except TypeError:  # a file descriptor
            return False

    def _raise(path: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))

    def open(file, mode="r", *args, **kwargs):  # noqa: A001 - the point is to shadow open
        if any(c in mode for c in "wax+") and _full(file):
            _raise(file)
        return _open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & _WRITE_FLAGS and _full(path):
            _raise(path)
        return _os_open(path, flags, *args, **kwargs)

    builtins.open = open
    io.open = open
    os.open = os_open
