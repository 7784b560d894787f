"""Verdict rules on evidence from real statistics (score_outputs) over synthetic model outputs."""

import numpy as np
import pytest

from unlearn.certificate import build_certificate, decide, validate_certificate
from unlearn.config import Thresholds
from unlearn.verification import ModelOutputs, score_outputs

TH = Thresholds()
RNG = np.random.default_rng(0)
N = {"retain": 800, "forget": 300, "test": 600, "nonmember": 600}


def logits(n, margin, spread=1.0, k=10):
    """Logits whose true class (label 0..k-1) leads by ~``margin``."""
    y = RNG.integers(0, k, n)
    z = RNG.normal(0, spread, (n, k))
    z[np.arange(n), y] += margin + RNG.normal(0, 1.0, n)
    return z, y


def evidence(forget_margin: float, test_margin: float = 3.0) -> dict:
    sets = {"retain": logits(N["retain"], 8.0), "forget": logits(N["forget"], forget_margin),
            "test": logits(N["test"], test_margin), "nonmember": logits(N["nonmember"], test_margin)}
    out = ModelOutputs({k: v[0] for k, v in sets.items()}, None)
    return score_outputs(out, {k: v[1] for k, v in sets.items()}, n_bootstrap=100)


@pytest.fixture(scope="module")
def leaky():
    """Original remembers the forget set (members' margins); retrain sees it like test data."""
    return {"original": evidence(8.0), "retrain": evidence(3.0), "noop": evidence(8.0), "over": evidence(-4.0)}


def test_noop_unlearner_fails_and_retrain_passes_with_strong_leakage(leaky):
    verdict, reasons = decide(leaky["noop"], leaky["original"], leaky["retrain"], TH)
    assert verdict == "fail" and any("still looks like members" in r for r in reasons)
    assert decide(leaky["retrain"], leaky["original"], leaky["retrain"], TH)[0] == "pass"


def test_over_forgetting_is_detected(leaky):
    verdict, reasons = decide(leaky["over"], leaky["original"], leaky["retrain"], TH)
    assert verdict == "fail" and any("over-forgetting" in r for r in reasons)


def test_non_leaking_original_gives_inconclusive():
    original, retrain = evidence(3.0), evidence(3.0)
    verdict, reasons = decide(evidence(3.0), original, retrain, TH)
    assert verdict == "inconclusive" and "negative control" in reasons[0]


def test_utility_loss_fails(leaky):
    damaged = dict(leaky["retrain"], TA=leaky["original"]["TA"] - 20)
    verdict, reasons = decide(damaged, leaky["original"], leaky["retrain"], TH)
    assert verdict == "fail" and any("test accuracy" in r for r in reasons)


def test_certificate_validates_and_never_holds_sample_ids(leaky):
    art = {"path": "m.pt", "sha256": "a" * 64}
    cert = build_certificate(
        method="gp", method_params={"epochs": 5}, model=art, parent=art, retrain_ref=art,
        dataset_fingerprint="b" * 64, forget={"sha256": "c" * 64, "n": 300, "kind": "random", "request_ids": []},
        thresholds=TH, metrics={"unlearned": leaky["noop"], "original": leaky["original"],
                                "retrain": leaky["retrain"]}, seconds=1.0, git_commit=None)
    assert cert["verdict"] == "fail" and cert["controls"]["negative"]["verdict"] == "fail"
    assert 0.03 < cert["power"]["min_detectable_auc_shift"] < 0.07
    with pytest.raises(ValueError, match="forget"):
        validate_certificate({**cert, "forget": {**cert["forget"], "sample_ids": ["x"]}})
    with pytest.raises(ValueError, match="verdict"):
        validate_certificate({**cert, "verdict": "probably"})
