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


def _encoder_outputs(rng, gap: float):
    """Synthetic encoder outputs with a shadow reference: per-image difficulty, members aligned ``gap`` better.
    ``test`` and ``nonmember`` are the same images (random forgetting), as their positions say."""
    from unlearn.mia.shadow import fit_shadow_attack
    from unlearn.verification import ShadowReference

    n = {"retain": 300, "forget": 100, "test": 300}
    level = {k: rng.uniform(0.3, 0.9, m) for k, m in n.items()}
    level["nonmember"] = level["test"]
    member = {"retain": gap, "forget": gap, "test": 0.0, "nonmember": 0.0}
    target = {k: np.clip(v[:, None] + member[k] + 0.01 * rng.standard_normal((len(v), 6)), -1, 1)
              for k, v in level.items()}
    refs = {k: np.clip(v[None, :, None] + 0.01 * rng.standard_normal((2, len(v), 6)), -1, 1)
            for k, v in level.items()}
    positions = {"retain": np.arange(300), "forget": np.arange(300, 400), "test": np.arange(400, 700),
                 "nonmember": np.arange(400, 700)}
    labels = {k: np.arange(len(v)) % 3 for k, v in level.items()}
    logits = {k: rng.normal(0, 1, (len(v), 3)) for k, v in level.items()}
    feats = rng.normal(size=(20, 4))  # shadow_features of 3 classes: margin + 3 sorted log-probabilities
    attack = fit_shadow_attack(feats[:10], feats[10:])
    shadow = ShadowReference(attack, {k: rng.normal(size=(2, len(v))) for k, v in level.items()}, 2, refs, 4)
    return ModelOutputs(logits, target, shadow, positions), labels


def test_encoder_attacks_in_the_evidence_calibrated_attack_has_power():
    out, labels = _encoder_outputs(np.random.default_rng(3), gap=0.03)
    ev = score_outputs(out, labels, n_bootstrap=50)
    assert {"encodermi_v", "encoder_lira", "encodermi", "encodermi_classifier"} <= set(ev["attacks"])
    assert ev["attacks"]["encoder_lira"]["auc_ci"][0] > 0.9
    assert ev["strongest_attack"] == "encoder_lira"
    for name in ("encoder_lira", "encodermi_v"):
        assert {"tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr", "auc_ci"} <= set(ev["train_vs_test"][name])


def test_encoder_attacks_without_signal_cover_half_and_cut_with_the_forget_part():
    from unlearn.verification import forget_part

    out, labels = _encoder_outputs(np.random.default_rng(4), gap=0.0)
    ev = score_outputs(out, labels, n_bootstrap=100)
    for name in ("encodermi_v", "encoder_lira", "encodermi_classifier"):
        lo, hi = ev["attacks"][name]["auc_ci"]
        assert lo < 0.5 < hi, name
    mask = np.arange(100) < 40
    part, part_labels = forget_part(out, labels, mask)
    assert part.shadow.out_similarity["forget"].shape == (2, 40, 6)
    assert part.positions["forget"].shape == (40,)
    assert "encoder_lira" in score_outputs(part, part_labels, n_bootstrap=20)["attacks"]


def test_view_mismatch_with_shadow_encoders_is_an_error():
    import pytest
    import torch

    from unlearn.config import PretrainParams
    from unlearn.learners import build_learner
    from unlearn.pretraining import learner_config
    from unlearn.verification import EvaluationSets, collect_outputs

    out, _ = _encoder_outputs(np.random.default_rng(5), gap=0.0)
    cfg = learner_config(PretrainParams(method="simclr", backbone={"name": "small_cnn", "width": 4},
                                        projection_dim=8), in_channels=1, num_classes=3)
    sets = EvaluationSets({"retain": torch.rand(6, 1, 8, 8)}, {"retain": np.arange(6) % 3}, 3)
    with pytest.raises(ValueError, match="4 views per image, this model on 8"):
        collect_outputs(build_learner(cfg), sets, encoder_views=8, shadow=out.shadow)
