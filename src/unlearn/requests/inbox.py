"""The deletion-request inbox: read ``data/requests/inbox/*.json`` safely and validate every request.

A request is one UTF-8 JSON file::

    {"request_id": "r-0017", "sample_ids": ["digits-00042", "digits-00077"],
     "requested_at": "2025-11-25T14:00:00Z", "reason": "GDPR art. 17"}

``reason`` is optional; no other key is allowed. A bad request is rejected *whole* with one clear reason and
the other requests are still processed. Reading (:func:`read_inbox`) is the only I/O; parsing and validation
(:func:`parse_request`, :func:`validate`) are pure functions over bytes and id sets.

>>> f = inbox_file("r1.json", b'{"request_id": "r1", "sample_ids": ["a"], "requested_at": "2025-01-01T00:00:00Z"}')
>>> accepted, rejected = validate([f], members={"a", "b"}, known={"a", "b", "t"})
>>> [r.request_id for r in accepted], rejected
(['r1'], [])
>>> f = inbox_file("r2.json", b'{"request_id": "r2", "sample_ids": ["t"], "requested_at": "2025-01-01T00:00:00Z"}')
>>> validate([f], members={"a", "b"}, known={"a", "b", "t"})[1][0].reason
'sample id(s) not in the train split (never trained on, nothing to forget): t'
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

from unlearn.io import sha256_bytes

MAX_BYTES = 1 << 20  # a request naming ~50k ids fits; anything larger is refused unread
MAX_DEPTH = 32  # a request nests 2 deep; deeper files are refused before json.loads (which recurses per level)
MAX_ID_CHARS = 80  # how much of one id a rejection reason quotes
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.json$")
KEYS_REQUIRED = ("request_id", "sample_ids", "requested_at")
KEYS_ALLOWED = (*KEYS_REQUIRED, "reason")


@dataclass(frozen=True)
class InboxFile:
    """One inbox entry as read from disk.

    Attributes:
        name: the file name inside the inbox (never a path).
        sha256: of the bytes; when the bytes were refused unread, of the refusal (so a re-read is recognised).
        data: the bytes, or None when refused.
        error: why the entry was refused unread (symlink, not a regular file, too large, unsafe name).
    """

    name: str
    sha256: str
    data: bytes | None = None
    error: str | None = None


@dataclass(frozen=True)
class Request:
    """A well-formed, accepted deletion request (``sample_ids`` in the order given)."""

    request_id: str
    sample_ids: tuple[str, ...]
    requested_at: str
    reason: str | None
    source: str
    sha256: str


@dataclass(frozen=True)
class Rejection:
    """A refused inbox entry.

    ``key`` is the ledger key: the request id when the file owns it, else ``file:<name>#<sha12>`` (malformed
    files, and files whose request id is ambiguous or already taken, must not touch that request's history).
    """

    key: str
    request_id: str | None
    source: str
    sha256: str
    reason: str


def inbox_file(name: str, data: bytes) -> InboxFile:
    """An in-memory inbox entry (tests, and files read by :func:`read_inbox`)."""
    return InboxFile(name=name, sha256=sha256_bytes(data), data=data)


def _refused(name: str, error: str) -> InboxFile:
    return InboxFile(name=name, sha256=sha256_bytes(f"refused:{name}:{error}".encode("utf-8", "replace")),
                     error=error)


def file_key(name: str, sha256: str) -> str:
    """Ledger key of a rejection that cannot be filed under a request id."""
    return f"file:{ascii(name)[1:-1][:80]}#{sha256[:12]}"


def safe_name(name: str) -> str | None:
    """None when ``name`` is a plain request file name, else why not (separators, ``..``, odd characters)."""
    if "/" in name or "\\" in name or "\x00" in name:
        return "the name contains a path separator: it tries to leave the inbox"
    if name in (".", "..") or ".." in name:
        return "the name contains '..': it tries to leave the inbox"
    if not FILE_NAME.match(name):
        return "the name must be letters, digits, '.', '_' or '-' and end in .json"
    return None


def read_inbox(inbox: str | Path) -> list[InboxFile]:
    """Every ``*.json`` entry of ``inbox``, sorted by name; hidden files and other suffixes are ignored.

    Nothing outside the folder is ever opened: symlinks, sub-folders, devices, unsafe names and files over
    :data:`MAX_BYTES` come back refused (``error`` set, ``data`` None) so that they are rejected with a reason.
    A missing inbox is an empty one.
    """
    inbox = Path(inbox)
    if not inbox.is_dir():
        return []
    out = []
    root = inbox.resolve()
    for entry in sorted(os.scandir(inbox), key=lambda e: e.name):
        name = entry.name
        if name.startswith(".") or not name.lower().endswith(".json"):
            continue
        if entry.is_symlink():  # the reason names the entry only: its target is not ours to record
            inside = Path(entry.path).resolve().is_relative_to(root)
            where = "inside the inbox" if inside else "outside the inbox"
            out.append(_refused(name, f"a symlink ({where}); requests must be regular files"))
            continue
        problem = safe_name(name)
        if problem:
            out.append(_refused(name, problem))
            continue
        st = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            out.append(_refused(name, "not a regular file"))
            continue
        if st.st_size > MAX_BYTES:
            out.append(_refused(name, f"{st.st_size} bytes, over the {MAX_BYTES}-byte limit"))
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except FileNotFoundError:  # removed since the listing: nothing to ingest
            continue
        except OSError as exc:  # unreadable (permissions, a symlink swapped in: ELOOP): refused, the others go on
            out.append(_refused(name, f"cannot be read ({exc.strerror or type(exc).__name__})"))
            continue
        if len(data) > MAX_BYTES:
            out.append(_refused(name, f"over the {MAX_BYTES}-byte limit"))
            continue
        out.append(inbox_file(name, data))
    return out


def parse_request(f: InboxFile) -> Request | Rejection:
    """Check one entry's form: UTF-8, a JSON object, exactly the allowed keys with the right types, a valid
    request id and timestamp, a non-empty list of distinct string ids."""

    def reject(reason: str, rid: str | None = None) -> Rejection:
        return Rejection(rid or file_key(f.name, f.sha256), rid, f.name, f.sha256, reason)

    if f.error:
        return reject(f.error)
    problem = safe_name(f.name)
    if problem:
        return reject(problem)
    try:
        text = f.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return reject(f"not UTF-8 ({exc.reason} at byte {exc.start})")
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        return reject(f"malformed JSON (nested deeper than {MAX_DEPTH} levels: {depth})")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return reject(f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})")
    except (ValueError, RecursionError) as exc:  # e.g. an integer over Python's int-digit limit
        return reject(f"malformed JSON ({str(exc).split(';')[0][:160]})")
    if not isinstance(obj, dict):
        return reject(f"the top level must be a JSON object, got {type(obj).__name__}")
    rid = obj.get("request_id")
    if not isinstance(rid, str) or not REQUEST_ID.match(rid):
        return reject("request_id missing or invalid: a string of letters, digits, '.', '_' or '-' "
                      f"(at most 128), got {json.dumps(rid)[:60]}")
    missing = [k for k in KEYS_REQUIRED if k not in obj]
    if missing:
        return reject(f"missing key(s): {', '.join(missing)}", rid)
    unknown = sorted(set(obj) - set(KEYS_ALLOWED))
    if unknown:
        return reject(f"unknown key(s): {', '.join(unknown)} (allowed: {', '.join(KEYS_ALLOWED)})", rid)
    ids, at, reason = obj["sample_ids"], obj["requested_at"], obj.get("reason")
    if not isinstance(ids, list) or not all(isinstance(s, str) for s in ids):
        return reject("sample_ids must be a list of strings", rid)
    if not ids:
        return reject("sample_ids is empty: nothing to forget", rid)
    dups = sorted(s for s, n in Counter(ids).items() if n > 1)
    if dups:
        return reject(f"duplicate sample id(s) within the request: {_few(dups)}", rid)
    if not isinstance(at, str) or _timestamp(at) is None:
        return reject(f"requested_at must be an ISO 8601 timestamp, got {json.dumps(at)[:60]}", rid)
    if reason is not None and not isinstance(reason, str):
        return reject("reason must be a string when given", rid)
    return Request(rid, tuple(ids), at, reason, f.name, f.sha256)


def nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, brackets inside strings not counted (a cheap scan that
    never recurses, so a crafted file cannot exhaust the stack before it is refused).

    >>> nesting_depth('{"a": [[1], "]]]"]}'), nesting_depth("[" * 5 + "]" * 5), nesting_depth("7")
    (3, 5, 0)
    """
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub('""', text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def validate(files: Iterable[InboxFile], *, members: set[str], known: set[str],
             live: Iterable[str] = (), forgotten: Mapping[str, str] | None = None
             ) -> tuple[list[Request], list[Rejection]]:
    """Accept or reject each entry against the dataset and the requests already accepted.

    Args:
        files: new inbox entries (already-ingested files are filtered out by the caller).
        members: ids of the train split (what a model was trained on).
        known: every id of the dataset (train, reference, test).
        live: request ids already accepted (received, processing, done or failed).
        forgotten: ``{sample_id: request_id}`` of ids in those accepted requests.

    Returns:
        ``(accepted, rejected)``; accepted in the order of ``requested_at`` then file name, so an id named by two
        new requests goes to the earlier one and the later request is rejected whole.
    """
    forgotten = dict(forgotten or {})
    live = set(live)
    parsed = [parse_request(f) for f in files]
    rejected = [p for p in parsed if isinstance(p, Rejection)]
    requests = [p for p in parsed if isinstance(p, Request)]
    by_id: dict[str, list[Request]] = {}
    for r in requests:
        by_id.setdefault(r.request_id, []).append(r)
    accepted: list[Request] = []
    for r in sorted(requests, key=lambda r: (_timestamp(r.requested_at), r.source)):
        clash = by_id[r.request_id]
        if len(clash) > 1:
            rejected.append(Rejection(file_key(r.source, r.sha256), r.request_id, r.source, r.sha256,
                                      f"duplicate request_id {r.request_id!r}: also in "
                                      + ", ".join(c.source for c in clash if c is not r)))
            continue
        if r.request_id in live:
            rejected.append(Rejection(file_key(r.source, r.sha256), r.request_id, r.source, r.sha256,
                                      f"duplicate request_id {r.request_id!r}: already in the ledger"))
            continue
        reason = _id_problem(r.sample_ids, members, known, forgotten)
        if reason:
            rejected.append(Rejection(r.request_id, r.request_id, r.source, r.sha256, reason))
            continue
        accepted.append(r)
        forgotten.update({sid: r.request_id for sid in r.sample_ids})
    return accepted, sorted(rejected, key=lambda x: x.source)


def _id_problem(ids: tuple[str, ...], members: set[str], known: set[str], forgotten: Mapping[str, str]) -> str | None:
    unknown = [s for s in ids if s not in known]
    if unknown:
        return f"unknown sample id(s): {_few(unknown)}"
    outside = [s for s in ids if s not in members]
    if outside:
        return f"sample id(s) not in the train split (never trained on, nothing to forget): {_few(outside)}"
    again = [s for s in ids if s in forgotten]
    if again:
        owners = sorted({forgotten[s] for s in again})
        return f"sample id(s) already forgotten by request(s) {', '.join(owners)}: {_few(again)}"
    return None


def _few(ids: list[str], n: int = 5) -> str:
    """At most ``n`` ids for a reason, each cut to :data:`MAX_ID_CHARS` and with control characters escaped."""
    more = f" (+{len(ids) - n} more)" if len(ids) > n else ""
    return ", ".join(_quote(s) for s in ids[:n]) + more


def _quote(sid: str) -> str:
    text = ascii(sid)[1:-1] if not sid.isprintable() else sid
    return text if len(text) <= MAX_ID_CHARS else text[:MAX_ID_CHARS] + "..."


def _timestamp(text: str) -> datetime | None:
    """Parse ISO 8601 (``Z`` allowed); naive times are taken as UTC so that all compare."""
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t
