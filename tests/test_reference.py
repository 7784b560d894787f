"""The retrain reference's cadence (``requests.retrain_every``), the split of the forget set, and the pin."""

import pytest

from unlearn.io import sha256_ids
from unlearn.reference import MIN_EXCLUDED, cadence, reference_record, resolve_pin, split_forget

FP = "f" * 64


def ids(n: int) -> list[str]:
    return [f"s-{i:03d}" for i in range(n)]


@pytest.mark.parametrize("every", [1, 2, 3, 5])
def test_run_k_retrains_iff_k_mod_every_is_zero(every):
    """Each run adds a request; a run that retrains records a new reference that has served one run."""
    record, refreshed = None, []
    for k in range(12):
        forget = ids(4 * (k + 1))
        refresh, why = cadence(record, forget, FP, every=every, stored=record is not None)
        refreshed.append(refresh)
        record = reference_record("a" * 64, FP, forget, [f"r-{k}"]) if refresh else {**record,
                                                                                   "runs": record["runs"] + 1}
    assert refreshed == [k % every == 0 for k in range(12)]


def test_every_one_always_retrains_even_for_the_same_forget_set():
    record = reference_record("a" * 64, FP, ids(8), ["r-1"])
    assert cadence(record, ids(8), FP, every=1, stored=True) == (
        True, "requests.retrain_every is 1: every run retrains the reference")


def test_a_reference_that_excluded_exactly_this_forget_set_is_reused_whatever_its_age():
    record = {**reference_record("a" * 64, FP, ids(8), ["r-1"]), "runs": 50}
    refresh, why = cadence(record, list(reversed(ids(8))), FP, every=3, stored=True)
    assert not refresh and "fresh" in why


@pytest.mark.parametrize("change, reason", [
    (dict(fingerprint="e" * 64), "another dataset"),
    (dict(stored=False), "not in the store"),
    (dict(forget=ids(4)), "no longer in the forget set"),
    (dict(excluded=ids(MIN_EXCLUDED - 1)), "fewer than"),
])
def test_an_unusable_reference_is_retrained(change, reason):
    record = reference_record("a" * 64, FP, change.get("excluded", ids(8)), ["r-1"])
    refresh, why = cadence(record, change.get("forget", ids(12)), change.get("fingerprint", FP), every=5,
                           stored=change.get("stored", True))
    assert refresh and reason in why
    assert cadence(None, ids(12), FP, every=5, stored=False) == (True, "no retrain reference recorded yet")
    with pytest.raises(ValueError, match="retrain_every"):
        cadence(None, ids(12), FP, every=0, stored=False)


def test_split_keeps_forget_order_and_refuses_foreign_ids():
    forget = ["b", "d", "a", "c"]
    assert split_forget(forget, ["a", "b"]) == (["b", "a"], ["d", "c"])
    assert split_forget(forget, forget) == (forget, [])
    with pytest.raises(ValueError, match="not in the forget set"):
        split_forget(forget, ["a", "z"])


def _forget(requests: dict[str, list[str]]) -> dict:
    why = {s: f"request {rid}" for rid, sids in requests.items() for s in sids}
    ids_ = sorted(why)
    return {"sample_ids": ids_, "sha256": sha256_ids(ids_), "why": why, "dataset_fingerprint": FP}


def test_the_pin_resolves_to_a_stale_or_fresh_reference():
    assert resolve_pin(None, _forget({"r-1": ["a"]})) == {"source": "retrain"}
    rec = reference_record("a" * 64, FP, ["a", "b"], ["r-1"])
    pin = {**{k: rec[k] for k in ("model_sha256", "dataset_fingerprint", "excluded")}, "runs_old": 2}
    stale = resolve_pin(pin, _forget({"r-1": ["a", "b"], "r-2": ["c"], "r-3": ["d", "e"]}))
    assert (stale["status"], stale["runs_old"], stale["excluded"]["n"]) == ("stale", 2, 2)
    assert stale["newer"] == {"n": 3, "request_ids": ["r-2", "r-3"]}
    fresh = resolve_pin(pin, _forget({"r-1": ["b", "a"]}))
    assert fresh["status"] == "fresh" and fresh["newer"]["n"] == 0
    with pytest.raises(ValueError, match="another dataset|trained on dataset"):
        resolve_pin({**pin, "dataset_fingerprint": "e" * 64}, _forget({"r-1": ["a", "b"]}))
    altered = {**pin, "excluded": {**pin["excluded"], "sample_ids": ["a"]}}
    with pytest.raises(ValueError, match="altered"):
        resolve_pin(altered, _forget({"r-1": ["a", "b"]}))
    with pytest.raises(ValueError, match="not in the forget set"):
        resolve_pin(pin, _forget({"r-1": ["a"]}))
