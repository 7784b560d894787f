"""The retrain reference between refreshes (``requests.retrain_every``): the cadence decision, the record of a
stored reference, and the split of the forget set into the part a reference excluded and the newer part.

A retrain reference is trained from scratch on the retain set of one forget list; it *excluded* that list.
Deletion requests only add samples, so a reference kept for later runs excluded part of the current forget set
(the samples it never saw) and trained on the rest (the newer requests' samples). Certificates then apply the
reference-based rules only to the excluded part (:mod:`unlearn.certificate`).

Cadence: a reference serves at most ``every`` deletion-request runs, the run that trained it included; so with
no other trigger, run ``k`` (counted from a refresh) retrains iff ``k % every == 0``. It is always refreshed when
there is none, when it cannot be used (another dataset, checkpoint missing, it excluded samples that are no longer
in the forget set, or fewer than :data:`MIN_EXCLUDED`), and it is always reused while it excluded exactly the
current forget set (it is then a fresh reference, whatever its age).

>>> rec = reference_record("a" * 64, "f" * 64, ["s-1", "s-2"], ["r-1"])
>>> cadence(rec, ["s-1", "s-2", "s-3"], "f" * 64, every=3, stored=True)
(False, 'reusing the reference: run 2 of at most 3 (requests.retrain_every)')
>>> cadence({**rec, "runs": 3}, ["s-1", "s-2", "s-3"], "f" * 64, every=3, stored=True)[0]
True
>>> split_forget(["s-1", "s-2", "s-3"], ["s-2", "s-1"])
(['s-1', 's-2'], ['s-3'])
"""

from __future__ import annotations

from typing import Any

from unlearn.io import sha256_ids

MIN_EXCLUDED = 2  # forget samples a reference must have excluded for its rules to be applied (and for reuse)


def reference_record(model_sha256: str, fingerprint: str, excluded_ids: list[str], request_ids: list[str],
                     runs: int = 1) -> dict[str, Any]:
    """What is known about a stored reference: its weights' sha256, its dataset, the forget list it excluded
    (ids sorted, hashed like ``forget.json``) and how many runs have used it (the one that trained it: 1)."""
    ids = sorted(excluded_ids)
    return {"model_sha256": model_sha256, "dataset_fingerprint": fingerprint, "runs": runs,
            "excluded": {"sha256": sha256_ids(ids), "n": len(ids), "request_ids": sorted(request_ids),
                         "sample_ids": ids}}


def cadence(record: dict | None, forget_ids: list[str], fingerprint: str, *, every: int,
            stored: bool) -> tuple[bool, str]:
    """Whether this run retrains the reference (``True``) or reuses ``record``'s, and why.

    Args:
        record: The current reference (:func:`reference_record`), or None when there is none.
        forget_ids: This run's cumulative forget list.
        fingerprint: This run's dataset fingerprint.
        every: ``requests.retrain_every`` (>= 1).
        stored: Whether the record's checkpoint is in the local store with the right sha256.
    """
    if every < 1:
        raise ValueError(f"requests.retrain_every must be >= 1, got {every}")
    if every == 1:
        return True, "requests.retrain_every is 1: every run retrains the reference"
    if record is None:
        return True, "no retrain reference recorded yet"
    excluded, forget = set(record["excluded"]["sample_ids"]), set(forget_ids)
    if record["dataset_fingerprint"] != fingerprint:
        return True, "the recorded reference was trained on another dataset"
    if not stored:
        return True, f"the reference's checkpoint {record['model_sha256'][:12]} is not in the store"
    if not excluded <= forget:
        return True, f"the reference excluded {len(excluded - forget)} sample(s) that are no longer in the forget set"
    if excluded == forget:
        return False, "the reference excluded exactly this forget set (fresh)"
    if len(excluded) < MIN_EXCLUDED:
        return True, f"the reference excluded fewer than {MIN_EXCLUDED} samples: too few to compare against"
    if record["runs"] >= every:
        return True, f"the reference has served {record['runs']} run(s) (requests.retrain_every: {every})"
    return False, f"reusing the reference: run {record['runs'] + 1} of at most {every} (requests.retrain_every)"


def split_forget(forget_ids: list[str], excluded_ids: list[str]) -> tuple[list[str], list[str]]:
    """(excluded part, newer part) of ``forget_ids``, each in ``forget_ids`` order: the samples the reference
    never trained on, and those it did. An excluded id outside the forget list raises ``ValueError``."""
    excluded = set(excluded_ids)
    outside = sorted(excluded - set(forget_ids))
    if outside:
        raise ValueError(f"the reference excluded {len(outside)} sample id(s) that are not in the forget set "
                         f"(e.g. {outside[0]!r}); it cannot serve as this forget set's reference")
    return [s for s in forget_ids if s in excluded], [s for s in forget_ids if s not in excluded]


def resolve_pin(pin: dict | None, forget: dict) -> dict[str, Any]:
    """Which reference the run's forget set is judged against, from the pin the flow wrote (None: retrain it).

    ``forget`` is the forget stage's record (``sample_ids``, ``sha256``, ``why``, ``dataset_fingerprint``).
    Returns ``{"source": "retrain"}``, or the pinned reference with ``status`` (``fresh`` when it excluded exactly
    this forget set, else ``stale``), ``runs_old``, ``excluded`` (sha256, n, request ids, sample ids) and
    ``newer`` (n and request ids of the samples it trained on).
    """
    if pin is None:
        return {"source": "retrain"}
    excluded = pin["excluded"]
    if pin["dataset_fingerprint"] != forget["dataset_fingerprint"]:
        raise ValueError(f"the pinned reference {pin['model_sha256'][:12]} was trained on dataset "
                         f"{pin['dataset_fingerprint'][:12]}, not {forget['dataset_fingerprint'][:12]}")
    if sha256_ids(sorted(excluded["sample_ids"])) != excluded["sha256"]:
        raise ValueError(f"the pinned reference's excluded id list does not match its sha256 "
                         f"{excluded['sha256'][:12]}: the pin was altered")
    _, newer = split_forget(forget["sample_ids"], excluded["sample_ids"])
    why = forget.get("why", {})
    newer_requests = sorted({why[s].split(" ", 1)[1] for s in newer if why.get(s, "").startswith("request ")})
    return {"source": "pinned", "model_sha256": pin["model_sha256"],
            "status": "fresh" if excluded["sha256"] == forget["sha256"] else "stale",
            "runs_old": int(pin["runs_old"]), "excluded": excluded,
            "newer": {"n": len(newer), "request_ids": newer_requests}}
