"""Tests for unlearn.mia.threshold score functions."""

import numpy as np
import pytest

from unlearn.mia.threshold import (
    THRESHOLD_ATTACKS,
    confidence,
    logit_margin,
    negative_entropy,
    negative_loss,
    negative_modified_entropy,
)


@pytest.fixture
def small() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 4)), rng.integers(0, 4, size=7)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_margin_matches_direct_formula(small):
    z, y = small
    p = softmax(z)[np.arange(7), y]
    np.testing.assert_allclose(logit_margin(z, y), np.log(p / (1 - p)), rtol=1e-10)


def test_margin_ranks_where_float32_cross_entropy_underflows():
    z = np.array([[50.0, 0.0, 0.0], [60.0, 0.0, 0.0]], dtype=np.float32)
    y = np.array([0, 0])
    lse = z.max(axis=1) + np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1))
    ce32 = lse - z[:, 0]
    assert ce32.dtype == np.float32 and np.all(ce32 == 0)  # ties in float32
    margin = logit_margin(z, y)
    np.testing.assert_allclose(margin, [50 - np.log(2), 60 - np.log(2)])
    assert margin[1] > margin[0]
    assert negative_loss(z, y)[1] > negative_loss(z, y)[0]


def test_loss_confidence_entropy_match_direct(small):
    z, y = small
    p = softmax(z)
    np.testing.assert_allclose(negative_loss(z, y), np.log(p[np.arange(7), y]))
    np.testing.assert_allclose(confidence(z, y), p[np.arange(7), y])
    np.testing.assert_allclose(negative_entropy(z), np.sum(p * np.log(p), axis=1))


def naive_mentr(p: np.ndarray, y: int) -> float:
    out = -(1 - p[y]) * np.log(p[y])
    out -= sum(p[k] * np.log(1 - p[k]) for k in range(len(p)) if k != y)
    return out


def test_modified_entropy_matches_song_mittal(small):
    z, y = small
    p = softmax(z)
    expected = [-naive_mentr(p[i], y[i]) for i in range(7)]
    np.testing.assert_allclose(negative_modified_entropy(z, y), expected, rtol=1e-10)


def test_modified_entropy_stable_for_confident_predictions():
    z = np.array([[80.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 80.0, 0.0]])
    y = np.array([0, 0, 0])
    with np.errstate(all="raise"):
        scores = negative_modified_entropy(z, y)
    assert np.all(np.isfinite(scores))
    assert scores[1] > scores[0] > scores[2]  # confident-correct > confident-wrong


def test_registry_shapes(small):
    z, y = small
    assert set(THRESHOLD_ATTACKS) == {
        "margin", "loss", "confidence", "entropy", "modified_entropy",
    }
    for fn in THRESHOLD_ATTACKS.values():
        assert fn(z, y).shape == (7,)


@pytest.mark.parametrize(
    ("z", "y"),
    [
        (np.zeros((0, 3)), np.zeros(0, dtype=int)),
        (np.zeros(3), np.zeros(3, dtype=int)),
        (np.zeros((3, 1)), np.zeros(3, dtype=int)),
        (np.zeros((3, 3)), np.zeros(2, dtype=int)),
        (np.zeros((3, 3)), np.zeros(3)),
        (np.zeros((3, 3)), np.array([0, 1, 3])),
        (np.array([[np.nan, 0.0], [0.0, 0.0]]), np.array([0, 1])),
    ],
)
def test_bad_input_raises(z, y):
    for fn in THRESHOLD_ATTACKS.values():
        with pytest.raises(ValueError):
            fn(z, y)
