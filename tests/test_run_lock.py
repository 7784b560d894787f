"""Issue 12 defect 11: one pipeline or deletion-request run per project at a time.

A second ``unlearn run`` (or ingestion) while one holds the project lock exits at once with one line naming the
lock file and the holder's pid, instead of being stopped later by DVC's own lock (whose message says to delete
``.dvc/tmp/rwlock`` by hand)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from pathlib import Path

import pytest

from unlearn.cli import main
from unlearn.lock import LOCK_NAME, ProjectLocked, project_lock
from unlearn.requests.ingest import exclusive

ROOT = Path(__file__).resolve().parents[1]


def _hold(project, started, release):
    with project_lock(project):
        started.set()
        release.wait(20)


@pytest.fixture
def held(tmp_path):
    """A project whose lock another process holds; yields (project, holder pid)."""
    project = tmp_path / "proj"
    project.mkdir()
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(project, started, release))
    p.start()
    assert started.wait(10)
    yield project, p.pid
    release.set()
    p.join(10)


def test_a_second_lock_fails_at_once_naming_the_file_and_the_holder(held):
    project, pid = held
    t0 = time.monotonic()
    with pytest.raises(ProjectLocked) as err:
        with project_lock(project):
            pass
    assert time.monotonic() - t0 < 2
    msg = str(err.value)
    assert str(project / LOCK_NAME) in msg and f"pid {pid}" in msg and "\n" not in msg


def test_unlearn_run_exits_non_zero_at_once_with_one_line(held, capsys):
    project, pid = held
    t0 = time.monotonic()
    assert main(["run", "--project", str(project)]) != 0
    assert time.monotonic() - t0 < 5
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert str(project / LOCK_NAME) in err and f"pid {pid}" in err


def test_ingestion_takes_the_project_lock_and_does_not_wait_for_a_run(held):
    project, pid = held
    t0 = time.monotonic()
    with pytest.raises(ProjectLocked, match=f"pid {pid}"):
        with exclusive(project / "data" / "ledger" / ".lock"):
            pass
    assert time.monotonic() - t0 < 2


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path):
    with project_lock(tmp_path):
        with project_lock(tmp_path):  # `unlearn run` holds it and the pipeline flow takes it again
            assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
        ctx = multiprocessing.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_try, args=(tmp_path, q))
        p.start()
        p.join(10)
        assert "pid" in q.get(timeout=5)  # still held after the inner release
    p = ctx.Process(target=_try, args=(tmp_path, q))
    p.start()
    p.join(10)
    assert q.get(timeout=5) == "acquired"


def _try(project, q):
    try:
        with project_lock(project):
            q.put("acquired")
    except ProjectLocked as exc:
        q.put(str(exc))


def test_a_lock_left_by_a_dead_process_is_free(tmp_path):
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_die_holding, args=(tmp_path,))
    p.start()
    p.join(10)
    with project_lock(tmp_path):  # flock dies with its holder: no stale lock to delete by hand
        pass


def _die_holding(project):
    with project_lock(project):
        os._exit(9)
