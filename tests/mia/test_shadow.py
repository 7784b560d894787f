"""Tests for the shadow-model attack statistics (Shokri et al. 2017)."""

import numpy as np
import pytest
from scipy.special import logit

from unlearn.mia.shadow import FEATURE_CLIP, fit_shadow_attack, shadow_features, shadow_scores
from unlearn.mia.stats import attack_metrics

K = 5


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def outputs(n: int, margin: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose true class leads by about ``margin`` (members: large, non-members: small)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    z = rng.normal(size=(n, K))
    z[np.arange(n), y] += margin + rng.normal(size=n)
    return z, y


def test_features_match_naive_reference():
    z, y = outputs(9, 2.0, 0)
    p = softmax(z)
    naive = [[np.log(p[i, y[i]] / (1 - p[i, y[i]])), *sorted(np.log(p[i]), reverse=True)] for i in range(9)]
    np.testing.assert_allclose(shadow_features(z, y), naive, rtol=1e-9)
    np.testing.assert_allclose(shadow_features(z, y, top_k=2), np.asarray(naive)[:, :3], rtol=1e-9)


def test_features_stay_finite_and_clipped_for_saturated_and_probe_filler_logits():
    z = np.array([[80.0, 0.0, 0.0], [-1e9, 0.0, 1.0]])  # overfit member; probe log-prob of an absent class
    f = shadow_features(z, np.array([0, 0]))
    assert np.all(np.isfinite(f)) and np.all(np.abs(f) <= FEATURE_CLIP)
    assert f[0, 0] > 70 and f[1, 0] == -FEATURE_CLIP


def test_scores_are_the_attack_log_odds():
    (zi, yi), (zo, yo) = outputs(300, 4.0, 1), outputs(300, 1.0, 2)
    attack = fit_shadow_attack(shadow_features(zi, yi), shadow_features(zo, yo), seed=0)
    x = shadow_features(*outputs(50, 2.5, 3))
    p = attack.global_model.predict_proba(x)[:, list(attack.global_model.classes_).index(1)]
    ok = (p > 1e-9) & (p < 1 - 1e-9)
    np.testing.assert_allclose(shadow_scores(attack, x)[ok], logit(p[ok]), atol=1e-6)


def test_attack_transfers_from_shadows_to_a_leaky_target():
    """Shadows and target overfit alike: an attack fitted on shadow in/out separates target members."""
    (zi, yi), (zo, yo) = outputs(400, 5.0, 4), outputs(400, 1.0, 5)
    attack = fit_shadow_attack(shadow_features(zi, yi), shadow_features(zo, yo), seed=0)
    (zm, ym), (zn, yn) = outputs(200, 5.0, 6), outputs(200, 1.0, 7)
    m = attack_metrics(shadow_scores(attack, shadow_features(zm, ym)), shadow_scores(attack, shadow_features(zn, yn)),
                       n_bootstrap=100)
    assert m["auc"] > 0.9 and m["auc_ci"][0] > 0.85


def test_ci_contains_half_when_target_members_and_nonmembers_share_a_distribution():
    (zi, yi), (zo, yo) = outputs(400, 5.0, 8), outputs(400, 1.0, 9)
    attack = fit_shadow_attack(shadow_features(zi, yi), shadow_features(zo, yo), seed=0)
    (zm, ym), (zn, yn) = outputs(300, 2.0, 10), outputs(300, 2.0, 11)
    m = attack_metrics(shadow_scores(attack, shadow_features(zm, ym)), shadow_scores(attack, shadow_features(zn, yn)),
                       n_bootstrap=200)
    assert m["auc_ci"][0] < 0.5 < m["auc_ci"][1]


def test_per_class_models_score_their_class_and_fall_back_to_global():
    (zi, yi), (zo, yo) = outputs(300, 4.0, 12), outputs(300, 1.0, 13)
    yi[yi == 4], yo[yo == 4] = 3, 3  # no samples of class 4: it falls back to the global model
    attack = fit_shadow_attack(shadow_features(zi, yi), shadow_features(zo, yo), yi, yo, per_class=True,
                               min_class_samples=20, seed=0)
    assert set(attack.per_class) == {0, 1, 2, 3}
    z, y = outputs(40, 2.0, 14)
    x = shadow_features(z, y)
    scores = shadow_scores(attack, x, y)
    glob = shadow_scores(fit_shadow_attack(shadow_features(zi, yi), shadow_features(zo, yo), seed=0), x)
    np.testing.assert_allclose(scores[y == 4], glob[y == 4])
    rows = y == 0
    expected = shadow_scores(type(attack)(attack.per_class[0]), x[rows])
    np.testing.assert_allclose(scores[rows], expected)


def test_bad_input_raises():
    f = shadow_features(*outputs(10, 2.0, 15))
    with pytest.raises(ValueError, match="widths"):
        fit_shadow_attack(f, f[:, :3])
    with pytest.raises(ValueError, match="in_labels"):
        fit_shadow_attack(f, f, per_class=True)
    with pytest.raises(ValueError, match="NaN"):
        fit_shadow_attack(f, np.full_like(f, np.nan))
    with pytest.raises(ValueError, match="top_k"):
        shadow_features(*outputs(3, 1.0, 16), top_k=0)
