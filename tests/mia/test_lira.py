"""Tests for offline LiRA (Carlini et al. 2022)."""

import numpy as np
import pytest
from scipy.stats import norm

from unlearn.mia.lira import lira_offline_likelihood, lira_offline_scores
from unlearn.mia.stats import attack_metrics


def naive_global(target: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Λ_i = Pr[Z < φ_i], Z ~ N(mean of example i's OUT margins, pooled within-example variance), by loops."""
    s, n = out.shape
    var = sum(sum((out[j, i] - out[:, i].mean()) ** 2 for j in range(s)) / (s - 1) for i in range(n)) / n
    return np.array([norm(out[:, i].mean(), np.sqrt(var)).cdf(target[i]) for i in range(n)])


def test_global_variance_matches_naive_reference():
    rng = np.random.default_rng(0)
    out = rng.normal(2.0, 1.5, size=(4, 30))
    target = rng.normal(2.5, 2.0, size=30)
    z = lira_offline_scores(target, out)
    np.testing.assert_allclose(lira_offline_likelihood(z), naive_global(target, out), rtol=1e-10)


def test_per_example_variance_matches_naive_and_auto_switches_at_64_models():
    rng = np.random.default_rng(1)
    out = rng.normal(0.0, rng.uniform(0.5, 3.0, size=10), size=(64, 10))
    target = rng.normal(size=10)
    expected = [norm(out[:, i].mean(), out[:, i].std(ddof=1)).cdf(target[i]) for i in range(10)]
    np.testing.assert_allclose(lira_offline_likelihood(lira_offline_scores(target, out)), expected, rtol=1e-10)
    few = lira_offline_scores(target, out[:8])
    pooled = np.sqrt(out[:8].var(axis=0, ddof=1).mean())
    np.testing.assert_allclose(few, (target - out[:8].mean(axis=0)) / pooled)


def test_single_out_model_uses_the_spread_over_examples():
    out = np.array([[0.0, 2.0, 4.0]])
    np.testing.assert_allclose(lira_offline_scores(np.array([4.0, 2.0, 0.0]), out), [4 / out.std(), 0, -4 / out.std()])


def test_score_is_monotone_in_the_margin_for_a_fixed_out_gaussian():
    margins = np.linspace(-30, 60, 200)
    out = np.tile(np.random.default_rng(2).normal(3.0, 2.0, size=(3, 1)), (1, 200))  # same Gaussian for all
    z = lira_offline_scores(margins, out)
    assert np.all(np.diff(z) > 0)
    assert np.all(np.isfinite(z)) and z[-1] > 8  # no saturation where Φ(z) rounds to 1


def test_auc_ci_contains_half_for_same_distribution_and_is_high_when_separated():
    rng = np.random.default_rng(3)
    difficulty = rng.normal(0.0, 3.0, size=600)  # per-example offset shared by target and OUT models
    out = difficulty + rng.normal(0.0, 1.0, size=(4, 600))
    unseen = difficulty + rng.normal(0.0, 1.0, size=600)
    z = lira_offline_scores(unseen, out)
    same = attack_metrics(z[:300], z[300:], n_bootstrap=200)
    assert same["auc_ci"][0] < 0.5 < same["auc_ci"][1]
    member = unseen + np.r_[np.full(300, 2.0), np.zeros(300)]  # first half trained on: margins rise
    z = lira_offline_scores(member, out)
    leak = attack_metrics(z[:300], z[300:], n_bootstrap=200)
    assert leak["auc"] > 0.85 and leak["auc_ci"][0] > 0.8
    # calibrating per example beats the raw margin when example difficulty varies
    assert leak["auc"] > attack_metrics(member[:300], member[300:], n_bootstrap=10)["auc"] + 0.1


@pytest.mark.parametrize("target, out, kwargs", [
    (np.zeros(3), np.zeros((2, 4)), {}),
    (np.zeros((3, 1)), np.zeros((2, 3)), {}),
    (np.zeros(3), np.zeros((0, 3)), {}),
    (np.array([0.0, np.nan, 1.0]), np.zeros((2, 3)), {}),
    (np.zeros(3), np.zeros((1, 3)), {"variance": "per_example"}),
    (np.zeros(3), np.zeros((2, 3)), {"variance": "median"}),
    (np.zeros(3), np.zeros((2, 3)), {"min_std": 0.0}),
])
def test_bad_input_raises(target, out, kwargs):
    with pytest.raises(ValueError):
        lira_offline_scores(target, out, **kwargs)
