"""The request ledger: an append-only, crash-safe record of what happened to every deletion request.

One sqlite file (stdlib ``sqlite3``, default ``data/ledger/ledger.sqlite``: outside ``data/requests/`` so that
writing it never makes the DVC ``forget`` stage stale). Three insert-only tables; triggers refuse UPDATE and
DELETE, so history cannot be rewritten through this module or by accident:

- ``events``: one row per state change ``(seq, request_id, state, at, detail, model_version,
  certificate_sha256, source, file_sha256)``. A request's current state is its last event.
- ``requests``: the content of each accepted request (its sample ids), written with its ``received`` event.
- ``forget_sets``: ``sha256 -> (sample ids, request ids)`` of every cumulative forget list, so that a registry
  tag ``unlearn.forget_sha256`` can be mapped back to ids (``unlearn audit``) without ids leaving ``data/``.

States: ``received -> processing -> done | failed``; ``failed -> processing`` (the next run retries);
``processing -> processing`` (a run resumed after a crash); a rejection is ``rejected`` (a rejected request id
may be submitted again, fixed). ``done`` is terminal and must name the model version and the certificate
sha256 (a CHECK constraint, not just this code). Every write is one ``BEGIN IMMEDIATE`` transaction in WAL mode
with ``synchronous=FULL``: a crash leaves the ledger as it was before or after the write, never between.

>>> import tempfile, os
>>> led = Ledger(os.path.join(tempfile.mkdtemp(), "ledger.sqlite"))
>>> led.append("r1", "received", detail="2 ids")
>>> led.append("r1", "processing")
>>> led.append("r1", "done", model_version="3", certificate_sha256="ab" * 32)
>>> led.state("r1")
'done'
"""

from __future__ import annotations

import errno
import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

from unlearn.requests.inbox import Rejection, Request

STATES = ("received", "processing", "done", "rejected", "failed")
LIVE = ("received", "processing", "done", "failed")  # an accepted request, whatever became of its run
PENDING = ("received", "processing", "failed")  # the next run must (re)process these
MAX_DETAIL = 4000  # characters of an event's detail; a longer one (a crafted file's reason) is cut
TRANSITIONS: dict[str | None, tuple[str, ...]] = {
    None: ("received", "rejected"),
    "rejected": ("received", "rejected"),
    "received": ("processing",),
    "processing": ("processing", "done", "failed"),
    "failed": ("processing",),
    "done": (),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('received', 'processing', 'done', 'rejected', 'failed')),
    at TEXT NOT NULL,
    detail TEXT,
    model_version TEXT,
    certificate_sha256 TEXT,
    source TEXT,
    file_sha256 TEXT,
    CHECK (state != 'done' OR (model_version IS NOT NULL AND length(certificate_sha256) = 64))
);
CREATE INDEX IF NOT EXISTS events_request ON events (request_id, seq);
CREATE INDEX IF NOT EXISTS events_file ON events (source, file_sha256);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    sample_ids TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    reason TEXT,
    source TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    accepted_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS forget_sets (
    sha256 TEXT PRIMARY KEY,
    sample_ids TEXT NOT NULL,
    request_ids TEXT NOT NULL,
    at TEXT NOT NULL
);
"""
_APPEND_ONLY = "".join(
    f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} "
    f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only: {op} on {t} refused'); END;\n"
    for t in ("events", "requests", "forget_sets") for op in ("UPDATE", "DELETE"))


class LedgerError(ValueError):
    """An illegal state change (e.g. ``done`` without a certificate, or after ``done``)."""


class LedgerUnavailable(OSError):
    """The ledger file cannot be read or written (a full disk, an I/O error, no permission, locked too long):
    nothing was recorded. An ``OSError`` naming the file, so every entry point reports it in one line."""


_STORAGE_FAILURES = ("disk is full", "disk i/o error", "unable to open", "readonly", "read-only", "locked",
                     "no such file")


def _storage_failure(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(m in str(exc).lower() for m in _STORAGE_FAILURES)


@dataclass(frozen=True)
class Event:
    seq: int
    request_id: str
    state: str
    at: str
    detail: str | None
    model_version: str | None
    certificate_sha256: str | None
    source: str | None
    file_sha256: str | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Ledger:
    """The ledger at ``path`` (created with its folder on first use). Safe to share between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(_SCHEMA + _APPEND_ONLY)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in WAL mode; a storage failure becomes :class:`LedgerUnavailable` naming the file."""
        try:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.OperationalError as exc:
            raise LedgerUnavailable(errno.EIO, f"ledger unavailable: {exc}", str(self.path)) from None
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            yield con
        except sqlite3.OperationalError as exc:
            if not _storage_failure(exc):
                raise
            code = errno.ENOSPC if "full" in str(exc).lower() else errno.EIO
            raise LedgerUnavailable(code, f"ledger unavailable, nothing recorded: {exc}", str(self.path)) from None
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # ---------------------------------------------------------------- writes

    def append(self, request_id: str, state: str, *, detail: str | None = None, model_version: str | None = None,
               certificate_sha256: str | None = None, source: str | None = None,
               file_sha256: str | None = None) -> None:
        """Append one event after checking the transition from the request's current state."""
        with self._transaction() as con:
            self._append(con, request_id, state, detail, model_version, certificate_sha256, source, file_sha256)

    def append_many(self, request_ids: Iterable[str], state: str, *, detail: str | None = None,
                    model_version: str | None = None, certificate_sha256: str | None = None) -> None:
        """The same event for several requests, all or none."""
        with self._transaction() as con:
            for rid in request_ids:
                self._append(con, rid, state, detail, model_version, certificate_sha256, None, None)

    def record_ingest(self, accepted: Iterable[Request], rejected: Iterable[Rejection]) -> None:
        """In one transaction: a ``received`` event and the content of each accepted request, and a
        ``rejected`` event (with its reason) for each rejection."""
        with self._transaction() as con:
            for r in accepted:
                seq = self._append(con, r.request_id, "received", f"{len(r.sample_ids)} sample id(s)",
                                   None, None, r.source, r.sha256)
                con.execute("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (r.request_id, json.dumps(list(r.sample_ids)), r.requested_at, r.reason, r.source,
                             r.sha256, seq))
            for x in rejected:
                self._append(con, x.key, "rejected", x.reason, None, None, x.source, x.sha256)

    def record_forget_set(self, sha256: str, sample_ids: list[str], request_ids: list[str]) -> None:
        """Remember which ids a forget-list sha256 stands for (no-op when already known)."""
        with self._transaction() as con:
            con.execute("INSERT OR IGNORE INTO forget_sets VALUES (?, ?, ?, ?)",
                        (sha256, json.dumps(sorted(sample_ids)), json.dumps(list(request_ids)), _now()))

    def _append(self, con: sqlite3.Connection, request_id: str, state: str, detail, model_version,
                certificate_sha256, source, file_sha256) -> int:
        if state not in STATES:
            raise LedgerError(f"unknown state {state!r}; expected one of {STATES}")
        if state == "done" and (not model_version or not certificate_sha256 or len(certificate_sha256) != 64):
            raise LedgerError(f"request {request_id!r}: 'done' needs the model version and the certificate sha256")
        row = con.execute("SELECT state FROM events WHERE request_id = ? ORDER BY seq DESC LIMIT 1",
                          (request_id,)).fetchone()
        current = row[0] if row else None
        if state not in TRANSITIONS[current]:
            raise LedgerError(f"request {request_id!r}: cannot go from {current or 'nothing'} to {state}")
        if detail is not None and len(detail) > MAX_DETAIL:
            detail = detail[:MAX_DETAIL - 6] + " (cut)"
        cur = con.execute("INSERT INTO events (request_id, state, at, detail, model_version, certificate_sha256, "
                          "source, file_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (request_id, state, _now(), detail, model_version, certificate_sha256, source,
                           file_sha256))
        return int(cur.lastrowid)

    # ---------------------------------------------------------------- reads

    def events(self, request_id: str | None = None) -> list[Event]:
        """Every event in order, or one request's history."""
        sql = "SELECT * FROM events" + (" WHERE request_id = ?" if request_id else "") + " ORDER BY seq"
        with self._connect() as con:
            return [Event(*row) for row in con.execute(sql, (request_id,) if request_id else ())]

    def states(self) -> dict[str, str]:
        """``{request_id: current state}`` (the last event of each)."""
        with self._connect() as con:
            rows = con.execute("SELECT request_id, state FROM events WHERE seq IN "
                               "(SELECT max(seq) FROM events GROUP BY request_id) ORDER BY seq")
            return dict(rows.fetchall())

    def state(self, request_id: str) -> str | None:
        return self.states().get(request_id)

    def pending(self) -> list[str]:
        """Accepted requests not yet ``done``, in order of acceptance."""
        states = self.states()
        return [rid for rid in self.accepted() if states.get(rid) in PENDING]

    def accepted(self) -> dict[str, list[str]]:
        """``{request_id: sample_ids}`` of every accepted request, in order of acceptance."""
        with self._connect() as con:
            rows = con.execute("SELECT request_id, sample_ids FROM requests ORDER BY accepted_seq").fetchall()
        return {rid: json.loads(ids) for rid, ids in rows}

    def forgotten(self) -> dict[str, str]:
        """``{sample_id: request_id}`` over every accepted request."""
        return {sid: rid for rid, ids in self.accepted().items() for sid in ids}

    def seen(self, source: str, file_sha256: str) -> bool:
        """Whether this exact file (name and content) was ingested before: ingestion is idempotent."""
        with self._connect() as con:
            row = con.execute("SELECT 1 FROM events WHERE source = ? AND file_sha256 = ? LIMIT 1",
                              (source, file_sha256)).fetchone()
        return row is not None

    def forget_set(self, sha256: str) -> dict | None:
        """``{"sample_ids", "request_ids"}`` for a known forget-list sha256, else None."""
        with self._connect() as con:
            row = con.execute("SELECT sample_ids, request_ids FROM forget_sets WHERE sha256 = ?",
                              (sha256,)).fetchone()
        return None if row is None else {"sample_ids": json.loads(row[0]), "request_ids": json.loads(row[1])}
