import json

import numpy as np
import pytest

from unlearn.forget import (forget_record, load_forget_record, member_partition, read_forget_json, read_requests,
                            select_classes, select_random)
from unlearn.io import sha256_ids, write_json

IDS = [f"s-{i:03d}" for i in range(200)]


def test_random_forget_set_is_deterministic_for_a_seed():
    a, b, c = select_random(IDS, 0.1, 0), select_random(IDS, 0.1, 0), select_random(IDS, 0.1, 1)
    assert a == b != c and len(a) == 20 and a == sorted(a)
    assert forget_record({i: "random" for i in a}, "random", "f" * 64)["sha256"] == sha256_ids(a)


def test_class_forget_set_and_absent_class():
    labels = np.arange(200) % 10
    ids = select_classes(IDS, labels, [3])
    assert len(ids) == 20 and all(int(i[2:]) % 10 == 3 for i in ids)
    with pytest.raises(ValueError, match=r"\[11\]"):
        select_classes(IDS, labels, [11])


def test_requests_come_from_the_accepted_list(tmp_path):
    from unlearn.requests.ingest import accepted_record

    with pytest.raises(ValueError, match="unlearn ingest"):
        read_requests(tmp_path, IDS)
    (tmp_path / "r1.json").write_text(json.dumps({"request_id": "r1", "sample_ids": ["s-001"]}))
    with pytest.raises(ValueError, match="r1.json found: move them to data/requests/inbox"):
        read_requests(tmp_path, IDS)
    write_json(tmp_path / "accepted.json", accepted_record({"r1": ["s-002", "s-001"], "r2": ["s-009"]}, "f" * 64))
    assert read_requests(tmp_path, IDS) == {"r1": ["s-001", "s-002"], "r2": ["s-009"]}
    write_json(tmp_path / "accepted.json", accepted_record({"r2": ["nope-7"]}, "f" * 64))
    with pytest.raises(ValueError, match="accepted.json.*nope-7"):
        read_requests(tmp_path, IDS)
    (tmp_path / "accepted.json").write_text("{broken")
    with pytest.raises(ValueError, match="accepted.json"):
        read_requests(tmp_path, IDS)


def test_member_partition_rejects_non_members():
    train = np.arange(10)
    retain, forget = member_partition(train, np.array([3, 1]), IDS)
    assert forget.tolist() == [1, 3] and len(retain) == 8
    with pytest.raises(ValueError, match="s-012"):
        member_partition(train, np.array([12]), IDS)


def test_forget_record_checks_dataset_and_tampering(tmp_path):
    rec = forget_record({"s-001": "random"}, "random", "a" * 64)
    write_json(tmp_path / "f.json", rec)
    assert load_forget_record(tmp_path / "f.json", "a" * 64)["n"] == 1
    with pytest.raises(ValueError, match="re-run the forget stage"):
        load_forget_record(tmp_path / "f.json", "b" * 64)
    write_json(tmp_path / "f.json", {**rec, "sample_ids": ["s-002"]})
    with pytest.raises(ValueError, match="altered"):
        load_forget_record(tmp_path / "f.json", "a" * 64)


@pytest.mark.parametrize("content, words", [
    ([1, 2, 3], "not a JSON object"),
    ({"n": 1, "sha256": "x"}, "missing key 'sample_ids'"),
    ({"sample_ids": "s-001", "sha256": "x", "dataset_fingerprint": "a"}, "'sample_ids' must be a list of strings"),
    ({"sample_ids": ["s-001", 2], "sha256": "x", "dataset_fingerprint": "a"}, "'sample_ids' must be a list of strings"),
    ({"sample_ids": ["s-001"], "dataset_fingerprint": "a"}, "missing key 'sha256'"),
])
def test_a_malformed_forget_json_is_one_error_naming_the_file_and_key(tmp_path, content, words):
    """Issue 12 defect 7: a forget.json that is not an object or lacks sample_ids crashed with a traceback."""
    path = tmp_path / "forget.json"
    write_json(path, content)
    for load in (lambda: read_forget_json(path), lambda: load_forget_record(path, "a" * 64)):
        with pytest.raises(ValueError) as err:
            load()
        assert str(path) in str(err.value) and words in str(err.value)


def test_a_forget_json_that_is_not_json_is_named(tmp_path):
    path = tmp_path / "forget.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="forget.json"):
        read_forget_json(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_forget_json(tmp_path / "missing.json")
