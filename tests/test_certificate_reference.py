"""Certificate rules with a stale retrain reference (``requests.retrain_every`` > 1): the reference rules judge
only the samples it excluded, the newer samples are judged by the attack rule alone, and a fresh reference gives
exactly the rules of before. Evidence comes from real statistics over synthetic model outputs."""

import numpy as np
import pytest

from unlearn.certificate import build_certificate, control_results, decide, validate_certificate
from unlearn.config import Thresholds
from unlearn.stages.verify_reference import part_evidence, part_masks, parts_for
from unlearn.verification import ModelOutputs, forget_part, score_outputs

TH = Thresholds()
N_OLD, N_NEW = 300, 20  # forget set: requests the stale reference excluded, then newer ones it trained on
SIZES = {"retain": 800, "forget": N_OLD + N_NEW, "test": 600, "nonmember": 600}
MASKS = {"excluded": np.r_[np.ones(N_OLD, bool), np.zeros(N_NEW, bool)]}
MASKS["newer"] = ~MASKS["excluded"]
MEMBER, NONMEMBER = 8.0, 3.0  # logit margin of the true class on seen / unseen samples


def model_outputs(rng, y: dict, old: float, new: float) -> ModelOutputs:
    """Logits on every set; the forget set's excluded part has margin ``old``, its newer part ``new``."""
    margin = {"retain": MEMBER, "test": NONMEMBER, "nonmember": NONMEMBER,
              "forget": np.r_[np.full(N_OLD, old), np.full(N_NEW, new)]}
    out = {}
    for k, labels in y.items():
        z = rng.normal(0, 1.0, (len(labels), 10))
        z[np.arange(len(labels)), labels] += margin[k] + rng.normal(0, 1.0, len(labels))
        out[k] = z
    return ModelOutputs(out, None)


@pytest.fixture(scope="module")
def stale():
    """Original remembers everything; the stale reference forgot the old part but trained on the newer one;
    ``remembers_newer`` is an unlearner that looks exactly like the stale reference; ``good`` forgot it all."""
    rng = np.random.default_rng(0)
    y = {k: rng.integers(0, 10, n) for k, n in SIZES.items()}
    outputs = {"original": model_outputs(rng, y, MEMBER, MEMBER), "retrain": model_outputs(rng, y, NONMEMBER, MEMBER),
               "remembers_newer": model_outputs(rng, y, NONMEMBER, MEMBER),
               "good": model_outputs(rng, y, NONMEMBER, NONMEMBER)}
    whole = {k: score_outputs(o, y, n_bootstrap=100) for k, o in outputs.items()}
    return whole, part_evidence(outputs, y, MASKS, n_bootstrap=100, seed=0)


def test_forget_part_cuts_the_forget_set_and_its_nonmembers_to_the_part():
    y = {"retain": np.array([0, 1]), "forget": np.array([3, 3, 5, 5, 5]), "test": np.array([0, 1]),
         "nonmember": np.array([3, 5, 3, 5])}
    logits = {k: np.arange(len(v) * 2, dtype=float).reshape(-1, 2) for k, v in y.items()}
    out, labels = forget_part(ModelOutputs(logits, None), y, np.array([True, True, False, False, True]))
    assert labels["forget"].tolist() == [3, 3, 5] and labels["nonmember"].tolist() == [3, 5, 3, 5]
    assert out.logits["forget"][:, 0].tolist() == [0.0, 2.0, 8.0]
    out, labels = forget_part(ModelOutputs(logits, None), y, np.array([True, True, False, False, False]))
    assert labels["nonmember"].tolist() == [3, 3] and out.logits["nonmember"][:, 0].tolist() == [0.0, 4.0]
    assert out.logits["retain"] is logits["retain"]


def test_part_masks_follow_the_evaluation_sets_forget_order():
    class Data:
        ids = ["s-0", "s-1", "s-2", "s-3", "s-4", "s-5"]

        def positions_of(self, wanted):
            return np.array([self.ids.index(s) for s in wanted])

    masks = part_masks(Data(), ["s-4", "s-1", "s-2"], ["s-4", "s-1"])  # forget rows are sorted positions: 1, 2, 4
    assert masks["excluded"].tolist() == [True, False, True] and masks["newer"].tolist() == [False, True, False]


def test_the_newer_samples_cannot_pass_on_the_reference_rules_alone(stale):
    whole, by_part = stale
    # the rule of a fresh reference, misapplied to a stale one, certifies a model that remembers the newer samples
    assert decide(whole["remembers_newer"], whole["original"], whole["retrain"], TH)[0] == "pass"
    verdict, reasons = decide(whole["remembers_newer"], whole["original"], whole["retrain"], TH,
                              parts_for("remembers_newer", by_part))
    assert verdict == "fail" and all(r.startswith("the newer samples") for r in reasons)
    assert not any("forget accuracy" in r or "MIA-efficacy" in r for r in reasons)


def test_a_model_that_forgot_every_part_passes_against_a_stale_reference(stale):
    whole, by_part = stale
    verdict, reasons = decide(whole["good"], whole["original"], whole["retrain"], TH, parts_for("good", by_part))
    assert verdict == "pass", reasons


def test_the_controls_are_judged_on_the_samples_the_reference_excluded(stale):
    whole, by_part = stale
    assert [by_part[p]["retrain"]["n"]["forget"] for p in ("excluded", "newer")] == [N_OLD, N_NEW]
    controls = control_results(whole["original"], whole["retrain"], TH, parts_for("original", by_part))
    assert controls["positive"]["verdict"] == "pass"  # the reference on what it never saw
    assert controls["negative"]["verdict"] == "fail"  # the original is caught, also against the reference
    assert any("forget accuracy" in r for r in controls["negative"]["reasons"])
    # the positive control on a stale reference's newer samples would flag it: those it trained on
    newer = by_part["newer"]
    assert control_results(newer["original"], newer["retrain"], TH)["positive"]["verdict"] == "fail"


def test_newer_samples_on_which_the_attacks_have_no_power_certify_nothing(stale):
    """The attack rule alone judges the newer samples: when it cannot catch the original there, it proves nothing."""
    whole, by_part = stale
    parts = parts_for("good", by_part)
    parts["newer"] = {**parts["newer"], "original": by_part["newer"]["good"]}  # an original that leaks nothing there
    controls = control_results(whole["original"], whole["retrain"], TH, parts)
    assert controls["negative"]["verdict"] == "fail" and controls["negative_newer"]["verdict"] == "pass"
    verdict, reasons = decide(whole["good"], whole["original"], whole["retrain"], TH, parts)
    assert verdict == "inconclusive" and "negative control on the newer samples passed" in reasons[0]
    assert control_results(whole["original"], whole["retrain"], TH, parts_for("good", by_part))[
        "negative_newer"]["verdict"] == "fail"  # the fixture's original remembers the newer samples: caught


def test_a_reference_that_excluded_none_of_the_forget_set_certifies_nothing(stale):
    whole, by_part = stale
    parts = {"excluded": None, "newer": {"unlearned": whole["good"], "original": whole["original"],
                                         "retrain": whole["retrain"]}}
    verdict, reasons = decide(whole["good"], whole["original"], whole["retrain"], TH, parts)
    assert verdict == "inconclusive" and "excluded too few samples" in reasons[0]


def _cert(whole, by_part, model_sha: str, reference=None, method="gp"):
    art = {"path": "m.pt", "sha256": model_sha}
    ref_art = {"path": "models/unlearned/retrain.pt", "sha256": "b" * 64}
    return build_certificate(
        method=method, method_params={}, model=art, parent=art, retrain_ref=ref_art, dataset_fingerprint="c" * 64,
        forget={"sha256": "d" * 64, "n": N_OLD + N_NEW, "kind": "requests", "request_ids": ["r-1", "r-2"]},
        thresholds=TH, metrics={"unlearned": whole["good"], "original": whole["original"],
                                "retrain": whole["retrain"]}, seconds=1.0, git_commit=None,
        reference=reference, parts=parts_for("good", by_part) if reference else None)


STALE = {"sha256": "b" * 64, "status": "stale", "source": "pinned", "runs_old": 2, "requests_old": 1,
         "excluded_forget_sha256": "e" * 64, "excluded_request_ids": ["r-1"], "newer_request_ids": ["r-2"]}


def test_the_certificate_states_the_reference_and_the_counts_of_each_rule(stale):
    whole, by_part = stale
    cert = _cert(whole, by_part, "a" * 64, STALE)
    assert cert["schema"] == "unlearn-certificate/2" and cert["verdict"] == "pass"
    assert cert["reference"] == {**STALE, "judged": {"attack_rule": N_OLD + N_NEW, "reference_rules": N_OLD,
                                                     "attack_rule_only": N_NEW}}
    assert cert["parts"]["newer"]["n"] == N_NEW and cert["parts"]["excluded"]["power"]["n_forget"] == N_OLD
    # the stale reference cannot certify samples it trained on, even when its statistics would pass
    own = _cert(whole, by_part, "b" * 64, STALE, method="retrain")
    assert own["verdict"] == "fail" and "stale retrain reference" in own["reasons"][0]


def test_a_fresh_reference_gives_the_rules_of_before(stale):
    whole, by_part = stale
    for m in ("good", "remembers_newer", "original"):
        assert decide(whole[m], whole["original"], whole["retrain"], TH) == \
            decide(whole[m], whole["original"], whole["retrain"], TH, None)
    cert = _cert(whole, by_part, "a" * 64)
    assert cert["parts"] is None and cert["reference"]["status"] == "fresh"
    assert cert["reference"]["excluded_forget_sha256"] == cert["forget"]["sha256"]
    assert cert["reference"]["judged"] == {"attack_rule": N_OLD + N_NEW, "reference_rules": N_OLD + N_NEW,
                                           "attack_rule_only": 0}
    assert (cert["verdict"], cert["reasons"]) == decide(whole["good"], whole["original"], whole["retrain"], TH)
    with pytest.raises(ValueError, match="needs the evidence split"):
        _cert(whole, None, "a" * 64, STALE)


def test_v1_certificates_still_validate_and_v2_needs_the_reference(stale):
    whole, by_part = stale
    cert = _cert(whole, by_part, "a" * 64)
    v1 = {k: v for k, v in cert.items() if k not in ("reference", "parts")} | {"schema": "unlearn-certificate/1"}
    validate_certificate(v1)
    with pytest.raises(ValueError, match="unlearn-certificate/2 at <root>: 'reference' is a required"):
        validate_certificate({k: v for k, v in cert.items() if k != "reference"})
    with pytest.raises(ValueError, match="unknown schema"):
        validate_certificate({**cert, "schema": "unlearn-certificate/9"})
