"""Lineage names the retrain reference a certificate used, fresh or stale (``unlearn.reference_*`` tags)."""

from unlearn.requests.lineage import Version, lineage_lines, reference_for

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
