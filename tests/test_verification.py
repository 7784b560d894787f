"""EncoderMI through the verification path: threshold and cross-fitted classifier variants."""

import numpy as np

from unlearn.verification import ModelOutputs, attack_scores, encodermi_classifier_scores, score_outputs


def _vectors(rng, n, level):
    return np.sort(np.clip(rng.normal(level, 0.05, (n, 28)), -1, 1), axis=1)[:, ::-1]


def test_encodermi_classifier_separates_members_and_is_cross_fitted():
    rng = np.random.default_rng(0)
    vec = {"retain": _vectors(rng, 300, 0.9), "test": _vectors(rng, 300, 0.8),
           "forget": _vectors(rng, 100, 0.9), "nonmember": _vectors(rng, 100, 0.8)}
    scores = encodermi_classifier_scores(vec)
    assert {k: v.shape for k, v in scores.items()} == {k: (len(v),) for k, v in vec.items()}
    assert scores["forget"].mean() > scores["nonmember"].mean()


def test_encodermi_auc_near_half_when_forget_and_nonmember_match():
    rng = np.random.default_rng(1)
    vec = {k: _vectors(rng, n, 0.85) for k, n in (("retain", 300), ("test", 300), ("forget", 200),
                                                      ("nonmember", 200))}
    labels = {k: rng.integers(0, 3, len(v)) for k, v in vec.items()}
    logits = {k: rng.normal(0, 1, (len(v), 3)) for k, v in vec.items()}
    out = ModelOutputs(logits, vec)
    assert {"encodermi", "encodermi_classifier"} <= set(attack_scores(out, labels))
    ev = score_outputs(out, labels, n_bootstrap=50)
    for name in ("encodermi", "encodermi_classifier"):
        lo, hi = ev["attacks"][name]["auc_ci"]
        assert lo < 0.5 < hi
