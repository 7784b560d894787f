"""Tests for unlearn.mia.stats against naive reference implementations."""

import json
import time

import numpy as np
import pytest

from unlearn.mia.stats import (
    attack_metrics,
    balanced_accuracy_best_threshold,
    bootstrap_auc,
    hanley_mcneil_se,
    min_detectable_auc_shift,
    roc_auc,
    tpr_at_fpr,
)


def naive_auc(m: np.ndarray, n: np.ndarray) -> float:
    wins = sum(float(a > b) + 0.5 * float(a == b) for a in m for b in n)
    return wins / (len(m) * len(n))


def naive_roc_points(m: np.ndarray, n: np.ndarray) -> list[tuple[float, float]]:
    thresholds = np.r_[np.inf, np.unique(np.r_[m, n])]
    return [(np.mean(n >= t), np.mean(m >= t)) for t in thresholds]


@pytest.fixture
def tied_scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return np.round(rng.normal(0.5, 1, 60), 1), np.round(rng.normal(0, 1, 80), 1)


def test_roc_auc_matches_pair_count_with_ties(tied_scores):
    m, n = tied_scores
    assert roc_auc(m, n) == pytest.approx(naive_auc(m, n), abs=1e-12)


def test_tpr_at_fpr_matches_naive(tied_scores):
    m, n = tied_scores
    points = naive_roc_points(m, n)
    for target in (0.0, 0.01, 0.1, 0.37, 1.0):
        expected = max(tpr for fpr, tpr in points if fpr <= target)
        assert tpr_at_fpr(m, n, target) == pytest.approx(expected)


def test_balanced_accuracy_matches_naive(tied_scores):
    m, n = tied_scores
    expected = max((tpr + 1 - fpr) / 2 for fpr, tpr in naive_roc_points(m, n))
    assert balanced_accuracy_best_threshold(m, n) == pytest.approx(expected)


def test_hanley_mcneil_formula():
    a, n1, n0 = 0.8, 40, 60
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0)
    assert hanley_mcneil_se(a, n1, n0) == pytest.approx(np.sqrt(var))
    assert hanley_mcneil_se(1.0, n1, n0) == 0.0


@pytest.mark.parametrize(
    ("n_pos", "expected"), [(250, 0.04), (90, 0.06), (50, 0.08)]
)
def test_min_detectable_auc_shift(n_pos, expected):
    assert min_detectable_auc_shift(n_pos, 2500) == pytest.approx(expected, abs=0.005)


def test_bootstrap_rows_are_resample_aucs(tied_scores):
    m, n = tied_scores
    boot = bootstrap_auc(m, n, n_bootstrap=5, seed=3)
    rng = np.random.default_rng(3)
    m_idx = rng.integers(0, m.size, size=(5, m.size))
    n_idx = rng.integers(0, n.size, size=(5, n.size))
    for b in range(5):
        assert boot[b] == pytest.approx(roc_auc(m[m_idx[b]], n[n_idx[b]]), abs=1e-12)


def test_ci_contains_half_for_same_distribution():
    rng = np.random.default_rng(0)
    out = attack_metrics(rng.normal(size=300), rng.normal(size=300), seed=0)
    assert out["auc_ci"][0] <= 0.5 <= out["auc_ci"][1]
    assert out["auc_ci_hm"][0] <= 0.5 <= out["auc_ci_hm"][1]


def test_separated_distributions_give_high_auc():
    rng = np.random.default_rng(0)
    out = attack_metrics(rng.normal(3, 1, 300), rng.normal(0, 1, 300))
    assert out["auc"] > 0.9 and out["auc_ci"][0] > 0.9
    assert out["auc_ci"][0] <= out["auc"] <= out["auc_ci"][1]
    assert out["balanced_accuracy"] > 0.85


def test_attack_metrics_deterministic_json_and_fast():
    rng = np.random.default_rng(0)
    m, n = rng.normal(0.3, 1, 1000), rng.normal(0, 1, 2500)
    start = time.perf_counter()
    first = attack_metrics(m, n, n_bootstrap=200, seed=7)
    assert time.perf_counter() - start < 1.0
    assert json.dumps(first) == json.dumps(attack_metrics(m, n, n_bootstrap=200, seed=7))
    assert set(first) == {
        "auc", "auc_se", "auc_ci", "auc_ci_hm", "tpr_at_1pct_fpr",
        "tpr_at_0.1pct_fpr", "balanced_accuracy", "n_members", "n_nonmembers",
    }
    assert (first["n_members"], first["n_nonmembers"]) == (1000, 2500)


@pytest.mark.parametrize(
    ("m", "n"),
    [
        (np.array([]), np.array([1.0])),
        (np.array([1.0]), np.array([])),
        (np.ones((2, 2)), np.array([1.0])),
        (np.array([np.nan, 1.0]), np.array([1.0])),
    ],
)
def test_bad_scores_raise(m, n):
    with pytest.raises(ValueError):
        roc_auc(m, n)
    with pytest.raises(ValueError):
        attack_metrics(m, n)


def test_bad_parameters_raise():
    with pytest.raises(ValueError):
        hanley_mcneil_se(1.5, 10, 10)
    with pytest.raises(ValueError):
        min_detectable_auc_shift(0, 10)
    with pytest.raises(ValueError):
        tpr_at_fpr(np.ones(3), np.zeros(3), 2.0)
    with pytest.raises(ValueError):
        attack_metrics(np.ones(3), np.zeros(3), confidence=1.0)
