"""What every stage shares: argument parsing, logging set-up and one clear error line on bad input.

Exit codes (the pipeline flow reads them through DVC to decide whether a retry can help):

- 0: done;
- 2 (:data:`DETERMINISTIC_EXIT`): bad input or a deterministic failure: a params or data error, a missing file,
  a NaN loss, a full disk or a read-only/forbidden path. Re-running the same stage gives the same error, so the
  flow does not retry it;
- 1: anything else (a traceback, or an ``OSError`` such as a refused connection): possibly transient, retried.
"""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from typing import Callable

from unlearn.config import Params, ParamsError, load_params

DETERMINISTIC_EXIT = 2
TRANSIENT_EXIT = 1
# OSErrors that a retry a few seconds later cannot fix
DETERMINISTIC_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT,
                                  errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EFBIG})


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="the params file (default: params.yaml)")
    return p


def describe_error(exc: BaseException) -> str:
    """One line for an expected error: an ``OSError`` as ``<path>: <what happened>`` when it names a path (so a
    full disk names the file being written), anything else as its message, newlines folded."""
    if isinstance(exc, OSError) and exc.strerror:
        paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
        text = f"{' -> '.join(paths)}: {exc.strerror}" if paths else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def exit_code(exc: BaseException) -> int:
    """:data:`DETERMINISTIC_EXIT` when re-running cannot help (see the module docstring), else
    :data:`TRANSIENT_EXIT`."""
    if isinstance(exc, OSError):
        return DETERMINISTIC_EXIT if exc.errno is None or exc.errno in DETERMINISTIC_ERRNOS else TRANSIENT_EXIT
    return DETERMINISTIC_EXIT if isinstance(exc, ValueError) else TRANSIENT_EXIT


def run(main: Callable[[argparse.Namespace, Params], None], args: argparse.ArgumentParser) -> None:
    """Parse arguments, configure logging, load params, run ``main``. Bad input, a NaN loss and ``OSError`` (a
    full disk: the path is named) end with one ``error: ...`` line and exit code :func:`exit_code`, no traceback."""
    ns = args.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("mlflow", "alembic", "urllib3", "git", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("torch._export").setLevel(logging.ERROR)
    try:
        params = load_params(ns.params)
        main(ns, params)
    except (ParamsError, ValueError, OSError) as exc:
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        raise SystemExit(exit_code(exc)) from None
