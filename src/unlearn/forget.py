"""Forget-set extraction: which member (train-split) samples to forget, why, and the sha256 of the id list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unlearn.io import sha256_ids


def select_random(train_ids: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded random ``fraction`` of the members (at least one), returned sorted."""
    n = max(1, int(round(fraction * len(train_ids))))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train_ids), size=n, replace=False)
    return sorted(train_ids[i] for i in pick)


def select_classes(train_ids: list[str], train_labels: np.ndarray, classes: list[int]) -> list[str]:
    """Every member whose label is in ``classes``; an absent class is an error naming it."""
    present = set(int(c) for c in np.unique(train_labels))
    missing = [c for c in classes if c not in present]
    if missing:
        raise ValueError(f"forget.classes: class(es) {missing} have no sample in the train split")
    wanted = set(classes)
    return sorted(sid for sid, y in zip(train_ids, train_labels) if int(y) in wanted)


def read_requests(requests_dir: str | Path, train_ids: list[str]) -> dict[str, list[str]]:
    """The accepted deletion requests: ``<requests_dir>/accepted.json``, written by ``unlearn ingest`` from the
    validated inbox (``data/requests/inbox/``; see :mod:`unlearn.requests`).

    Returns ``{request_id: sample_ids}`` in order of acceptance. A missing or altered file, or a sample id that
    is not a member, raises ``ValueError`` naming the file and the id.
    """
    from unlearn.requests.ingest import ACCEPTED_NAME, read_accepted

    path = Path(requests_dir)
    path = path / ACCEPTED_NAME if path.is_dir() else path
    if not path.is_file():
        loose = sorted(p.name for p in path.parent.glob("*.json"))
        hint = f" ({', '.join(loose[:3])} found: move them to data/requests/inbox/)" if loose else ""
        raise ValueError(f"{path}: no accepted deletion requests; put requests in data/requests/inbox/ and run "
                         f"`unlearn ingest`{hint}")
    record = read_accepted(path)
    members = set(train_ids)
    unknown = [s for s in record["sample_ids"] if s not in members]
    if unknown:
        raise ValueError(f"{path}: sample id(s) not in the train split: {', '.join(unknown[:5])}")
    return {r["request_id"]: list(r["sample_ids"]) for r in record["requests"]}


def forget_record(reasons: dict[str, str], kind: str, fingerprint: str) -> dict[str, Any]:
    """The content of ``forget.json``: sorted ids, why each is forgotten, and the id list's sha256."""
    ids = sorted(reasons)
    return {"kind": kind, "dataset_fingerprint": fingerprint, "n": len(ids), "sample_ids": ids,
            "why": {sid: reasons[sid] for sid in ids}, "sha256": sha256_ids(ids)}


def member_partition(train_positions: np.ndarray, forget_positions: np.ndarray,
                     ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(retain, forget) positions; a forget id outside the train split raises ``ValueError`` naming it.

    Shape: train (n,), forget (k,) -> retain (n - k,), forget (k,).
    """
    outside = np.setdiff1d(forget_positions, train_positions)
    if len(outside):
        raise ValueError(f"forget set contains sample id {ids[outside[0]]!r}, which is not in the train split")
    return np.setdiff1d(train_positions, forget_positions), np.sort(forget_positions)


def read_forget_json(path: str | Path) -> dict[str, Any]:
    """Read ``forget.json`` and check its form: a JSON object whose ``sample_ids`` is a list of strings and whose
    ``sha256`` (and ``dataset_fingerprint``, when present) are strings. Every problem is one ``ValueError`` naming
    the file and the key (a missing file: ``FileNotFoundError``); the content is not checked against the data."""
    from unlearn.io import read_json

    record = read_json(path)
    if not isinstance(record, dict):
        raise ValueError(f"{path}: not a JSON object (got {type(record).__name__}); it is written by the forget "
                         "stage: re-run it")
    for key in ("sample_ids", "sha256"):
        if key not in record:
            raise ValueError(f"{path}: missing key {key!r}; it is written by the forget stage: re-run it")
    ids = record["sample_ids"]
    if not isinstance(ids, list) or not all(isinstance(s, str) for s in ids):
        raise ValueError(f"{path}: 'sample_ids' must be a list of strings")
    for key in ("sha256", "dataset_fingerprint"):
        if key in record and not isinstance(record[key], str):
            raise ValueError(f"{path}: {key!r} must be a string")
    return record


def load_forget_record(path: str | Path, fingerprint: str) -> dict[str, Any]:
    """Read ``forget.json`` (:func:`read_forget_json`) and check it was made for this dataset (same fingerprint)
    and that its id list matches its sha256."""
    record = read_forget_json(path)
    if record.get("dataset_fingerprint") != fingerprint:
        raise ValueError(f"{path}: made for dataset {str(record.get('dataset_fingerprint'))[:12]}, but the "
                         f"prepared data is {fingerprint[:12]}; re-run the forget stage")
    if sha256_ids(record["sample_ids"]) != record["sha256"]:
        raise ValueError(f"{path}: the sha256 does not match its id list; the file was altered")
    return record
