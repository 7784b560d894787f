import json
import multiprocessing
import sqlite3

import pytest

from unlearn.io import read_json, sha256_ids
from unlearn.requests.inbox import inbox_file
from unlearn.requests.ingest import accepted_record, exclusive, ingest, read_accepted
from unlearn.requests.ledger import Ledger, LedgerError

IDS = [f"s-{i:03d}" for i in range(30)]
SPLITS = ["train"] * 20 + ["test"] * 10
SHA = "c" * 64


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "ledger" / "ledger.sqlite")


def test_states_follow_the_lifecycle_and_done_needs_version_and_certificate(ledger):
    ledger.append("r1", "received")
    with pytest.raises(LedgerError, match="from received to done"):
        ledger.append("r1", "done", model_version="1", certificate_sha256=SHA)
    ledger.append("r1", "processing")
    with pytest.raises(LedgerError, match="certificate sha256"):
        ledger.append("r1", "done", model_version="1")
    ledger.append("r1", "failed", detail="no certificate passed")
    ledger.append("r1", "processing")
    ledger.append("r1", "done", model_version="4", certificate_sha256=SHA)
    with pytest.raises(LedgerError, match="from done to processing"):
        ledger.append("r1", "processing")
    with pytest.raises(LedgerError, match="unknown state"):
        ledger.append("r2", "approved")
    assert [e.state for e in ledger.events("r1")] == ["received", "processing", "failed", "processing", "done"]
    last = ledger.events("r1")[-1]
    assert (last.model_version, last.certificate_sha256) == ("4", SHA)
    assert ledger.states() == {"r1": "done"} and ledger.state("nope") is None


def test_the_ledger_is_append_only_even_through_sql(ledger):
    ledger.append("r1", "received")
    con = sqlite3.connect(ledger.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE events SET state = 'done'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM events")
    with pytest.raises(sqlite3.IntegrityError):  # the CHECK holds even for raw SQL
        con.execute("INSERT INTO events (request_id, state, at) VALUES ('r1', 'done', 'now')")
    con.close()
    assert len(ledger.events()) == 1


def test_a_failed_write_leaves_nothing_behind(ledger):
    ledger.append("r1", "received")
    with pytest.raises(LedgerError):
        ledger.append_many(["r1", "r2"], "processing")  # r2 has no history: the whole batch is refused
    assert ledger.states() == {"r1": "received"}


def _write(inbox, name, rid, ids, at="2025-11-25T14:00:00Z"):
    (inbox / name).write_text(json.dumps({"request_id": rid, "sample_ids": ids, "requested_at": at}))


def _ingest(tmp_path, ledger):
    return ingest(tmp_path / "inbox", ledger, tmp_path / "accepted.json", ids=IDS, splits=SPLITS,
                  fingerprint="f" * 64)


def test_ingest_records_states_writes_the_cumulative_list_and_is_idempotent(tmp_path, ledger):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _write(inbox, "a.json", "r1", ["s-003", "s-001"])
    _write(inbox, "b.json", "r2", ["s-025"])  # a test-split id: rejected, r1 still accepted
    (inbox / "c.json").write_text("{not json")
    first = _ingest(tmp_path, ledger)
    assert [r.request_id for r in first.accepted] == ["r1"]
    assert sorted(x.key.split("#")[0] for x in first.rejected) == ["file:c.json", "r2"]
    file_key = next(x.key for x in first.rejected if x.source == "c.json")
    assert ledger.states() == {"r1": "received", "r2": "rejected", file_key: "rejected"}
    acc = read_accepted(tmp_path / "accepted.json")
    assert acc["sample_ids"] == ["s-001", "s-003"] and acc["sha256"] == sha256_ids(["s-001", "s-003"])
    assert ledger.forget_set(acc["sha256"]) == {"sample_ids": ["s-001", "s-003"], "request_ids": ["r1"]}
    n_events, text = len(ledger.events()), (tmp_path / "accepted.json").read_text()

    again = _ingest(tmp_path, ledger)  # nothing new: no event, same file content
    assert again.accepted == [] and again.rejected == [] and sorted(again.skipped) == ["a.json", "b.json", "c.json"]
    assert len(ledger.events()) == n_events and (tmp_path / "accepted.json").read_text() == text

    _write(inbox, "b.json", "r2", ["s-002"])  # fixed and resubmitted under the same id
    _write(inbox, "d.json", "r3", ["s-001", "s-004"])  # s-001 already forgotten by r1
    _write(inbox, "e.json", "r1", ["s-010"])  # r1 is taken
    third = _ingest(tmp_path, ledger)
    assert [r.request_id for r in third.accepted] == ["r2"]
    reasons = {x.source: x.reason for x in third.rejected}
    assert "already forgotten by request(s) r1" in reasons["d.json"]
    assert "already in the ledger" in reasons["e.json"]
    assert ledger.state("r1") == "received"  # the duplicate did not touch r1's history
    assert [e.state for e in ledger.events("r2")] == ["rejected", "received"]
    assert ledger.pending() == ["r1", "r2"]
    assert read_accepted(tmp_path / "accepted.json")["sample_ids"] == ["s-001", "s-002", "s-003"]
    assert [r["request_id"] for r in read_json(tmp_path / "accepted.json")["requests"]] == ["r1", "r2"]


def test_read_accepted_refuses_altered_files(tmp_path):
    from unlearn.io import write_json

    rec = accepted_record({"r1": ["s-001"]}, "f" * 64)
    write_json(tmp_path / "a.json", {**rec, "sample_ids": ["s-002"]})
    with pytest.raises(ValueError, match="altered"):
        read_accepted(tmp_path / "a.json")
    write_json(tmp_path / "a.json", {"request_id": "r1"})
    with pytest.raises(ValueError, match="unlearn ingest"):
        read_accepted(tmp_path / "a.json")


def _hold(lock, started, release):
    with exclusive(lock):
        started.set()
        release.wait(10)


def test_exclusive_lock_serialises_runs(tmp_path):
    ctx = multiprocessing.get_context("fork")
    started, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(tmp_path / "lock", started, release))
    p.start()
    assert started.wait(10)
    import fcntl

    with open(tmp_path / "lock", "a") as fh:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    release.set()
    p.join(10)
    with exclusive(tmp_path / "lock"):
        pass


def test_inbox_file_sha_is_the_ledger_idempotency_key(tmp_path, ledger):
    f = inbox_file("a.json", b"{}")
    assert not ledger.seen(f.name, f.sha256)
    ledger.append("file:a.json#x", "rejected", source=f.name, file_sha256=f.sha256)
    assert ledger.seen(f.name, f.sha256) and not ledger.seen("b.json", f.sha256)


def test_crafted_files_are_rejected_and_recorded_and_the_others_go_on(tmp_path, ledger):
    """Issue 12 defect 3: a 200,000-deep array and a 5,000-digit integer stopped every later ingestion."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a-deep.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)
    (inbox / "b-huge.json").write_bytes(b'{"request_id": "r9", "sample_ids": ["s-001"], "requested_at": '
                                        + b"9" * 5000 + b"}")
    _write(inbox, "c.json", "r1", ["s-003"])
    first = _ingest(tmp_path, ledger)
    assert [r.request_id for r in first.accepted] == ["r1"]
    reasons = {x.source: x.reason for x in first.rejected}
    assert "nested deeper than" in reasons["a-deep.json"] and "digits" in reasons["b-huge.json"]
    rejected = {e.source: e for e in ledger.events() if e.state == "rejected"}
    assert sorted(rejected) == ["a-deep.json", "b-huge.json"]
    assert all(e.request_id.startswith("file:") and e.detail for e in rejected.values())
    again = _ingest(tmp_path, ledger)  # recorded: the next run skips them instead of crashing again
    assert again.rejected == [] and sorted(again.skipped) == ["a-deep.json", "b-huge.json", "c.json"]


def test_a_rejected_symlink_is_recorded_under_its_name_without_its_target(tmp_path, ledger):
    import os

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.symlink("/etc/passwd", inbox / "evil.json")
    _ingest(tmp_path, ledger)
    [event] = ledger.events()
    assert event.state == "rejected" and event.source == "evil.json"
    assert "/etc/passwd" not in (event.detail or "") and "passwd" not in event.request_id


def test_an_overlong_detail_is_cut_before_it_reaches_the_ledger(ledger):
    ledger.append("r1", "rejected", detail="x" * 100_000)
    [event] = ledger.events("r1")
    assert len(event.detail) <= 4000 and event.detail.endswith("(cut)")


def test_a_full_disk_is_one_error_naming_the_ledger(tmp_path, monkeypatch):
    """SQLite's 'database or disk is full' becomes an OSError naming the ledger file; nothing is recorded."""
    import sqlite3

    import pytest

    from unlearn.requests.ledger import Ledger, LedgerUnavailable

    led = Ledger(tmp_path / "ledger.sqlite")
    led.append("r1", "received", detail="2 ids")
    real_connect = sqlite3.connect

    class FullConnection:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args):
            if sql.startswith("COMMIT"):
                raise sqlite3.OperationalError("database or disk is full")
            return self._con.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._con, name)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: FullConnection(real_connect(*a, **k)))
    with pytest.raises(LedgerUnavailable) as info:
        led.append("r1", "processing")
    assert str(tmp_path / "ledger.sqlite") in str(info.value) and "disk is full" in str(info.value)
    monkeypatch.setattr(sqlite3, "connect", real_connect)
    assert led.state("r1") == "received"
