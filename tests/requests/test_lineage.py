"""Lineage names the retrain reference a certificate used, fresh or stale (``unlearn.reference_*`` tags)."""

from unlearn.requests.lineage import Version, audit_sample, evaluations, lineage_lines, reference_for

FP = "f" * 64


def _versions() -> list[Version]:
    common = {"unlearn.dataset_fingerprint": FP, "unlearn.parent_version": "1"}
    return [
        Version("1", (), {"unlearn.role": "original", "unlearn.method": "pretrain", "unlearn.model_sha256": "0" * 64,
                          "unlearn.dataset_fingerprint": FP}),
        Version("2", (), {**common, "unlearn.role": "retrain_reference", "unlearn.method": "retrain",
                          "unlearn.model_sha256": "2" * 64, "unlearn.forget_sha256": "a" * 64}),
        Version("3", ("production",), {**common, "unlearn.role": "unlearned", "unlearn.method": "gp",
                                       "unlearn.model_sha256": "3" * 64, "unlearn.forget_sha256": "b" * 64,
                                       "unlearn.reference_sha256": "2" * 64, "unlearn.reference_status": "stale",
                                       "unlearn.reference_runs_old": "2",
                                       "unlearn.reference_forget_sha256": "a" * 64}),
        Version("4", (), {**common, "unlearn.role": "unlearned", "unlearn.method": "gp",  # before the tags existed
                          "unlearn.model_sha256": "4" * 64, "unlearn.forget_sha256": "a" * 64}),
    ]


def test_the_reference_is_found_by_its_sha256_even_for_another_forget_set():
    versions = _versions()
    assert reference_for(versions, versions[2]).version == "2"  # stale: it excluded forget set a, not b
    assert reference_for(versions, versions[3]).version == "2"  # no tag: matched by forget set, as before


def test_lineage_says_the_reference_was_stale():
    lines = lineage_lines("m", _versions(), _versions()[2])
    assert any("retrain reference: v2 (stale: 2 run(s) old, excluded forget set aaaaaaaaaaaa" in line
               for line in lines)


def test_a_later_evaluation_is_shown_beside_the_registered_verdict_never_instead_of_it():
    """Issue 12, defect 2: a version's own verdict is immutable; a re-evaluation lives under unlearn.eval.<id>."""
    versions = _versions()
    v3 = versions[2]
    tags = {**v3.tags, "unlearn.verdict": "pass", "unlearn.eval.20261202T101010Z.verdict": "fail",
            "unlearn.eval.20261202T101010Z.certificate_sha256": "c" * 64, "unlearn.eval.20261202T101010Z.run_id": "r1"}
    versions[2] = Version("3", v3.aliases, tags)
    assert evaluations(tags) == {"20261202T101010Z": {"verdict": "fail", "certificate_sha256": "c" * 64,
                                                      "run_id": "r1"}}
    lines = lineage_lines("m", versions, versions[2])
    assert any("verdict=pass" in line for line in lines)
    assert any("re-evaluated 20261202T101010Z: verdict=fail  certificate sha256 cccccccccccc" in line
               for line in lines)
    rows = {r["version"]: r for r in audit_sample("s-1", versions, split="train", fingerprint=FP,
                                                   forget_ids=lambda sha: {"s-1"})}
    assert rows["3"]["certified_removal"] is True  # what it was registered (and promoted) with
    assert rows["3"]["status"] == "removed (certificate pass); re-evaluated 20261202T101010Z: verdict fail"
