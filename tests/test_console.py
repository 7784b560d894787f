"""Failures inside a Prefect flow reach the terminal as one line: expected errors lose the engine's traceback,
bugs keep theirs."""

from __future__ import annotations

import logging

from unlearn.console import expected, quiet_expected_errors
from unlearn.lock import ProjectLocked
from unlearn.tracking import TrackingError


def _record(exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, "failed: %s", (exc,),
                             (type(exc), exc, None))


def test_expected_errors_lose_the_traceback_bugs_keep_it():
    quiet_expected_errors()
    quiet_expected_errors()  # idempotent
    log = logging.getLogger("prefect.flow_runs")
    assert sum(type(f).__name__ == "_OneLine" for f in log.filters) == 1
    for exc in (TrackingError("MLflow store http://127.0.0.1:9 unreachable"), ProjectLocked("locked"),
                FileNotFoundError("x.json: file not found")):
        record = _record(exc)
        assert all(f.filter(record) for f in log.filters)
        assert record.exc_info is None and "failed" in record.getMessage()
    bug = _record(KeyError("rows"))
    assert all(f.filter(bug) for f in log.filters)
    assert bug.exc_info is not None
    assert not expected(None) and not expected(TypeError("x"))


def test_unlearn_run_against_an_unreachable_server_is_one_line(tmp_path, monkeypatch, capsys):
    import shutil
    from pathlib import Path

    from unlearn.cli import main

    root = Path(__file__).resolve().parents[1]
    shutil.copy(root / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    assert main(["run", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: MLflow store http://127.0.0.1:9 unreachable"), err
