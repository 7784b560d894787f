"""Ingestion: inbox -> ledger -> ``data/requests/accepted.json``, the cumulative forget list the DVC ``forget``
stage reads (``forget.kind: requests``).

``accepted.json`` is a pure function of the ledger (every accepted request so far, sorted ids, their sha256)
and is rewritten atomically on every ingestion, so a crash between the ledger write and the file write heals on
the next run; identical content keeps DVC's hash, so nothing downstream goes stale without a new request.

>>> record = accepted_record({"r1": ["b", "a"], "r2": ["c"]}, "f" * 64)
>>> record["sample_ids"], record["requests"][0]["request_id"], record["n"]
(['a', 'b', 'c'], 'r1', 3)
"""

from __future__ import annotations

import fcntl
import logging
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from unlearn.io import read_json, sha256_ids, write_json
from unlearn.lock import find_project, project_lock
from unlearn.requests.inbox import Rejection, Request, read_inbox, validate
from unlearn.requests.ledger import Ledger

logger = logging.getLogger(__name__)

FORMAT = "unlearn-accepted-requests/1"
ACCEPTED_NAME = "accepted.json"


@dataclass(frozen=True)
class IngestResult:
    """What one ingestion did. ``skipped``: files already in the ledger (same name and content)."""

    accepted: list[Request]
    rejected: list[Rejection]
    skipped: list[str]
    record: dict[str, Any] = field(repr=False)


def accepted_record(requests: dict[str, list[str]], fingerprint: str) -> dict[str, Any]:
    """The content of ``accepted.json``: each request's ids, the sorted union and its sha256 (the same hash the
    forget stage writes into ``forget.json`` and the certificates, see :func:`unlearn.io.sha256_ids`)."""
    ids = sorted(sid for group in requests.values() for sid in group)
    return {"format": FORMAT, "dataset_fingerprint": fingerprint,
            "requests": [{"request_id": rid, "sample_ids": sorted(group)} for rid, group in requests.items()],
            "n": len(ids), "sample_ids": ids, "sha256": sha256_ids(ids)}


def read_accepted(path: str | Path) -> dict[str, Any]:
    """Read ``accepted.json`` and check its format and hash; errors name the file."""
    record = read_json(path)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path}: not an {FORMAT} file; it is written by `unlearn ingest`")
    try:
        ids = sorted(sid for r in record["requests"] for sid in r["sample_ids"])
        listed, sha = record["sample_ids"], record["sha256"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed ({type(exc).__name__}: {exc}); it is written by `unlearn ingest`") from None
    if ids != listed or sha256_ids(ids) != sha:
        raise ValueError(f"{path}: the id list does not match its requests or its sha256; the file was altered")
    return record


def ingest(inbox: str | Path, ledger: Ledger, accepted_path: str | Path, *, ids: list[str], splits: list[str],
           fingerprint: str) -> IngestResult:
    """Validate the new inbox files, record them in the ledger, rewrite ``accepted.json``.

    Args:
        inbox: the inbox folder (``data/requests/inbox``).
        ledger: where requests are recorded; files already recorded (same name and sha256) are skipped.
        accepted_path: ``data/requests/accepted.json``.
        ids, splits: the prepared dataset's sample ids and the split of each (from the manifest).
        fingerprint: the prepared dataset's fingerprint, written into ``accepted.json``.
    """
    files = read_inbox(inbox)
    new = [f for f in files if not ledger.seen(f.name, f.sha256)]
    members = {sid for sid, split in zip(ids, splits) if split == "train"}
    accepted, rejected = validate(new, members=members, known=set(ids), live=ledger.accepted(),
                                  forgotten=ledger.forgotten())
    ledger.record_ingest(accepted, rejected)
    record = accepted_record(ledger.accepted(), fingerprint)
    if record["n"]:
        ledger.record_forget_set(record["sha256"], record["sample_ids"],
                                 [r["request_id"] for r in record["requests"]])
    write_json(accepted_path, record)
    for r in accepted:
        logger.info("accepted %s (%s): %d sample id(s)", r.request_id, r.source, len(r.sample_ids))
    for x in rejected:
        logger.warning("rejected %s (%s): %s", x.key, x.source, x.reason)
    return IngestResult(accepted, rejected, [f.name for f in files if f not in new], record)


@contextmanager
def exclusive(lock_path: str | Path, project: str | Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if missing), then the project lock
    (:func:`unlearn.lock.project_lock`): one ingestion or deletion run at a time, so that ``accepted.json`` cannot
    change under a running pipeline.

    Waits for the ledger lock (a scheduled deletion run waits for the one in progress), but not for the project
    lock: while ``unlearn run`` holds it, this raises :class:`unlearn.lock.ProjectLocked` at once, naming the lock
    file and the holder's pid. ``project`` defaults to the nearest folder above ``lock_path`` that holds
    ``params.yaml``; with none, only the ledger lock is taken."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    project = Path(project) if project is not None else find_project(lock_path.parent)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            with project_lock(project) if project is not None else nullcontext():
                yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
