"""Tests for EncoderMI scores (Liu et al. 2021)."""

import itertools

import numpy as np
import pytest

from unlearn.mia.encoder_mi import (
    fit_encodermi_classifier,
    mean_pairwise_cosine,
    pairwise_cosine_vectors,
)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_matches_loop():
    x = np.random.default_rng(0).normal(size=(5, 4, 8))
    expected = []
    for feats in x:
        sims = [cos(feats[i], feats[j]) for i, j in itertools.combinations(range(4), 2)]
        expected.append((np.mean(sims), sorted(sims, reverse=True)))
    np.testing.assert_allclose(mean_pairwise_cosine(x), [e[0] for e in expected])
    np.testing.assert_allclose(pairwise_cosine_vectors(x), [e[1] for e in expected])


def views(n: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1, 16))
    return base + noise * rng.normal(size=(n, 5, 16))


def test_classifier_separates_consistent_views():
    members, nonmembers = views(200, 0.3, 0), views(200, 1.5, 1)
    assert mean_pairwise_cosine(members).mean() > mean_pairwise_cosine(nonmembers).mean()
    clf = fit_encodermi_classifier(
        pairwise_cosine_vectors(members), pairwise_cosine_vectors(nonmembers), seed=0
    )
    assert clf.predict(pairwise_cosine_vectors(views(100, 0.3, 2))).mean() > 0.9
    assert clf.predict(pairwise_cosine_vectors(views(100, 1.5, 3))).mean() < 0.1


@pytest.mark.parametrize(
    "x", [np.zeros((3, 1, 4)), np.zeros((0, 2, 4)), np.zeros((3, 4)), np.full((2, 2, 2), np.nan)]
)
def test_bad_input_raises(x):
    with pytest.raises(ValueError):
        mean_pairwise_cosine(x)


def test_classifier_width_mismatch_raises():
    with pytest.raises(ValueError):
        fit_encodermi_classifier(np.zeros((3, 6)), np.zeros((3, 3)))
