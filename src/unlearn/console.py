"""How the command line reports a failure inside a Prefect flow: one ``error:`` line, no engine traceback.

Prefect logs every failed task and flow with its traceback (``exc_info``). For the errors this package raises on
purpose (bad input, an unreachable store, a locked project, a failed stage, a NaN loss) the message already says
what went wrong and where; the traceback through Prefect's engine only buries it. :func:`quiet_expected_errors`
drops the traceback of those records, keeps the log line itself, and leaves every other exception (a bug: a
``KeyError``, a ``TypeError``) with its full traceback.

>>> import logging
>>> record = logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, "failed", None,
...                            (ValueError, ValueError("bad"), None))
>>> _OneLine().filter(record), record.exc_info
(True, None)
"""

from __future__ import annotations

import logging

PREFECT_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")
# flows/ modules are loaded by path under these names (cli.py, cli_ops.py)
_PACKAGES = ("unlearn", "unlearn_project_pipeline", "unlearn_project_deletion_requests")


def expected(exc: BaseException | None) -> bool:
    """Whether ``exc`` is an error raised on purpose with a message that says it all."""
    if exc is None:
        return False
    if isinstance(exc, (ValueError, OSError)):
        return True
    return type(exc).__module__.split(".")[0] in _PACKAGES


class _OneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and expected(record.exc_info[1]):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_expected_errors() -> None:
    """Install the filter on Prefect's flow- and task-run loggers (idempotent)."""
    for name in PREFECT_LOGGERS:
        log = logging.getLogger(name)
        if not any(isinstance(f, _OneLine) for f in log.filters):
            log.addFilter(_OneLine())
