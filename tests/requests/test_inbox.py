import json
import os

import pytest

from unlearn.requests.inbox import (MAX_BYTES, MAX_DEPTH, Rejection, inbox_file, parse_request, read_inbox, safe_name,
                                    validate)

MEMBERS = {f"s-{i:03d}" for i in range(20)}
KNOWN = MEMBERS | {f"t-{i:03d}" for i in range(10)}
AT = "2025-11-25T14:00:00Z"


def req(rid="r1", ids=("s-001", "s-002"), at=AT, **extra) -> bytes:
    return json.dumps({"request_id": rid, "sample_ids": list(ids), "requested_at": at, **extra}).encode()


def check(data: bytes, name: str = "r.json", **kw):
    accepted, rejected = validate([inbox_file(name, data)], members=MEMBERS, known=KNOWN, **kw)
    return accepted, rejected


def reason_of(data: bytes, name: str = "r.json", **kw) -> str:
    accepted, rejected = check(data, name, **kw)
    assert not accepted and len(rejected) == 1
    return rejected[0].reason


def test_a_valid_request_is_accepted_with_its_fields():
    accepted, rejected = check(req(reason="GDPR art. 17"))
    assert rejected == [] and len(accepted) == 1
    r = accepted[0]
    assert (r.request_id, r.sample_ids, r.requested_at, r.reason, r.source) == (
        "r1", ("s-001", "s-002"), AT, "GDPR art. 17", "r.json")
    assert len(r.sha256) == 64


@pytest.mark.parametrize("data, expected", [
    (b"{broken", "malformed JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"\xff\xfe{}", "not UTF-8"),
    (json.dumps({"sample_ids": ["s-001"], "requested_at": AT}).encode(), "request_id missing or invalid"),
    (req(rid="../etc"), "request_id missing or invalid"),
    (req(rid=7), "request_id missing or invalid"),
    (json.dumps({"request_id": "r1", "sample_ids": ["s-001"]}).encode(), "missing key(s): requested_at"),
    (req(email="x@y"), "unknown key(s): email"),
    (req(ids=[]), "sample_ids is empty"),
    (json.dumps({"request_id": "r1", "sample_ids": "s-001", "requested_at": AT}).encode(), "list of strings"),
    (req(ids=["s-001", 3]), "list of strings"),
    (req(ids=["s-001", "s-002", "s-001"]), "duplicate sample id(s) within the request: s-001"),
    (req(at="yesterday"), "ISO 8601"),
    (req(at=1732543200), "ISO 8601"),
    (req(reason=["x"]), "reason must be a string"),
    (req(ids=["s-001", "nope"]), "unknown sample id(s): nope"),
    (req(ids=["s-001", "t-003"]), "not in the train split"),
])
def test_bad_requests_are_rejected_whole_with_a_reason(data, expected):
    assert expected in reason_of(data)


def test_rejection_keys_file_malformed_requests_by_file_and_the_rest_by_request_id():
    _, [bad] = check(b"{broken", "x.json")
    assert bad.key.startswith("file:x.json#") and bad.request_id is None
    _, [unknown] = check(req(ids=["nope"]))
    assert unknown.key == "r1" == unknown.request_id


def test_already_forgotten_ids_and_overlaps_within_a_batch():
    assert "already forgotten by request(s) r0: s-002" in reason_of(req(), forgotten={"s-002": "r0"})
    early = inbox_file("b.json", req("early", ["s-005", "s-006"], at="2025-01-01T00:00:00+00:00"))
    late = inbox_file("a.json", req("late", ["s-006", "s-007"], at="2025-02-01T00:00:00"))
    other = inbox_file("c.json", req("other", ["s-010"]))
    accepted, rejected = validate([late, early, other], members=MEMBERS, known=KNOWN)
    assert [r.request_id for r in accepted] == ["early", "other"]
    assert [(x.request_id, x.source) for x in rejected] == [("late", "a.json")]
    assert "already forgotten by request(s) early: s-006" in rejected[0].reason


def test_duplicate_request_ids_are_rejected_without_touching_the_existing_request():
    one, two = inbox_file("a.json", req("dup", ["s-001"])), inbox_file("b.json", req("dup", ["s-002"]))
    ok = inbox_file("c.json", req("fine", ["s-003"]))
    accepted, rejected = validate([one, two, ok], members=MEMBERS, known=KNOWN)
    assert [r.request_id for r in accepted] == ["fine"]
    assert len(rejected) == 2 and all("duplicate request_id 'dup'" in x.reason for x in rejected)
    assert all(x.key.startswith("file:") for x in rejected)  # not filed under "dup"
    _, [again] = validate([inbox_file("d.json", req("r0"))], members=MEMBERS, known=KNOWN, live=["r0"])
    assert "already in the ledger" in again.reason and again.key.startswith("file:d.json#")


@pytest.mark.parametrize("name", ["../x.json", "a/b.json", "..json", "x..json", "a b.json", "r.JSON.txt"])
def test_names_that_leave_the_folder_or_are_odd_are_refused(name):
    assert safe_name(name) is not None
    assert isinstance(parse_request(inbox_file(name, req())), Rejection)


def test_read_inbox_reads_files_and_refuses_symlinks_and_folders(tmp_path):
    inbox, outside = tmp_path / "inbox", tmp_path / "secret.json"
    inbox.mkdir()
    outside.write_bytes(req("stolen"))
    (inbox / "r1.json").write_bytes(req())
    (inbox / "notes.txt").write_text("ignored")
    (inbox / ".r9.json.tmp").write_text("ignored: hidden, still being written")
    (inbox / ".hidden.json").write_text("ignored")
    os.symlink(outside, inbox / "evil.json")
    os.symlink("../secret.json", inbox / "evil2.json")
    (inbox / "dir.json").mkdir()
    (inbox / "big.json").write_bytes(b" " * (1 << 20) + b"{}")
    files = {f.name: f for f in read_inbox(inbox)}
    assert sorted(files) == ["big.json", "dir.json", "evil.json", "evil2.json", "r1.json"]
    assert files["r1.json"].data == req() and files["r1.json"].error is None
    assert "outside the inbox" in files["evil.json"].error and files["evil.json"].data is None
    assert "outside the inbox" in files["evil2.json"].error
    assert "not a regular file" in files["dir.json"].error
    assert "byte limit" in files["big.json"].error
    accepted, rejected = validate(files.values(), members=MEMBERS, known=KNOWN)
    assert [r.request_id for r in accepted] == ["r1"] and len(rejected) == 4
    assert read_inbox(tmp_path / "missing") == []
    assert read_inbox(inbox)[2].sha256 == files["evil.json"].sha256  # a refused entry is recognised again


# ---------------------------------------------------------------- issue 12: crafted files (defects 3 and 11)

def test_a_deeply_nested_array_is_rejected_with_a_reason_not_a_recursion_error():
    deep = b"[" * 200_000 + b"]" * 200_000  # 400 KB: under the byte limit, crashed json.loads before
    assert len(deep) < MAX_BYTES
    reason = reason_of(deep, "deep.json")
    assert "nested deeper than" in reason and str(MAX_DEPTH) in reason
    inside = req(reason="[" * 100)  # brackets inside strings do not count
    assert check(inside)[0]


def test_nesting_within_the_limit_still_parses_and_is_judged_on_its_content():
    shallow = json.dumps({"request_id": "r1", "sample_ids": [[["s-001"]]], "requested_at": AT}).encode()
    assert "list of strings" in reason_of(shallow)


def test_a_huge_integer_is_rejected_naming_the_problem():
    huge = b'{"request_id": "r1", "sample_ids": ["s-001"], "requested_at": ' + b"9" * 5000 + b"}"
    reason = reason_of(huge, "huge.json")
    assert "malformed JSON" in reason and "digits" in reason


def test_long_ids_in_a_reason_are_cut(tmp_path):
    reason = reason_of(req(ids=["x" * 100_000]))
    assert reason.startswith("unknown sample id(s): xxx") and len(reason) < 300


def test_a_refused_symlink_names_only_the_inbox_entry_never_its_target(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.symlink("/etc/passwd", inbox / "evil.json")
    os.symlink("r1.json", inbox / "loop.json")
    (inbox / "r1.json").write_bytes(req())
    files = {f.name: f for f in read_inbox(inbox)}
    assert "/etc/passwd" not in files["evil.json"].error and "passwd" not in files["evil.json"].error
    assert "a symlink (outside the inbox)" in files["evil.json"].error
    assert "a symlink (inside the inbox)" in files["loop.json"].error and "r1.json" not in files["loop.json"].error
    _, rejected = validate(files.values(), members=MEMBERS, known=KNOWN)
    assert not any("passwd" in x.reason or "passwd" in x.key for x in rejected)


def test_an_unreadable_file_is_refused_and_the_others_are_read(tmp_path, monkeypatch):
    import errno

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.json").write_bytes(req())
    (inbox / "b.json").write_bytes(req("r2"))
    real_open = os.open

    def open_(path, flags, *args):  # as a permission error would (tests run as root, who may read anything)
        if str(path).endswith("b.json"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", open_)
    files = {f.name: f for f in read_inbox(inbox)}
    assert files["a.json"].data == req() and files["b.json"].error == "cannot be read (Permission denied)"
