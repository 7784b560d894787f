"""Tests for the SVC-based MIA-efficacy of Unlearn-Sparse / SalUn."""

import numpy as np
import pytest

from unlearn.mia.svc_efficacy import (
    confidence_features,
    fit_membership_svc,
    mia_efficacy,
)


def make_logits(n: int, scale: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    z = rng.normal(size=(n, 10))
    z[np.arange(n), y] += scale
    return z, y


def test_confidence_features_is_true_class_probability():
    z, y = make_logits(20, 3.0, 0)
    f = confidence_features(z, y)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert f.shape == (20, 1) and f.dtype == np.float64
    np.testing.assert_allclose(f[:, 0], p[np.arange(20), y])


def test_mia_efficacy_far_below_test_confidence_counts_as_nonmember():
    """Forgotten samples that are confidently misclassified (retrain on a forgotten class) are non-members."""
    retain = make_logits(600, 10.0, 1)
    test = make_logits(600, 3.0, 2)
    forgotten = make_logits(200, -20.0, 3)
    assert mia_efficacy(*retain, *test, *forgotten) > 0.9


def test_mia_efficacy_extremes():
    retain = make_logits(600, 10.0, 1)
    test = make_logits(600, 1.0, 2)
    like_test = mia_efficacy(*retain, *test, *make_logits(200, 1.0, 3))
    like_retain = mia_efficacy(*retain, *test, *make_logits(200, 10.0, 4))
    assert like_test > 0.9
    assert like_retain < 0.1


def test_fit_membership_svc_balances_and_is_seeded():
    rng = np.random.default_rng(0)
    xm, xn = rng.normal(2, 1, (300, 3)), rng.normal(0, 1, (50, 3))
    svc = fit_membership_svc(xm, xn, seed=0, max_per_class=40)
    assert svc[-1].n_support_.sum() <= 80
    q = rng.normal(1, 1, (100, 3))
    again = fit_membership_svc(xm, xn, seed=0, max_per_class=40)
    np.testing.assert_array_equal(svc.predict(q), again.predict(q))


def test_bad_input_raises():
    with pytest.raises(ValueError):
        fit_membership_svc(np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError):
        fit_membership_svc(np.zeros((0, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        confidence_features(np.zeros((4, 3)), np.zeros(5, dtype=int))
