"""EncoderMI-V (sorted similarity vector classifier), cross-fitted by image position."""

import numpy as np
import pytest

from unlearn.mia import attack_metrics
from unlearn.mia.encoder_mi_vector import cross_fitted_scores, position_folds, vector_features


def sorted_vectors(rng, n: int, mean: float, spread: float, p: int = 28) -> np.ndarray:
    """Similarity vectors whose per-sample spread carries the signal; the mean is the same for both groups."""
    v = mean + spread * rng.standard_normal((n, p))
    return -np.sort(-np.clip(v, -1, 1), axis=1)


def test_features_shape_and_errors():
    v = sorted_vectors(np.random.default_rng(0), 5, 0.8, 0.05)
    f = vector_features(v)
    assert f.shape == (5, 30)
    np.testing.assert_allclose(f[:, -2], v.mean(axis=1))
    with pytest.raises(ValueError, match="non-empty 2-D"):
        vector_features(np.zeros((0, 3)))


def test_folds_follow_the_image_not_the_set():
    folds = position_folds({"test": np.arange(10), "nonmember": np.arange(10)[::-1], "retain": np.arange(10, 30)},
                           n_folds=5, seed=0)
    np.testing.assert_array_equal(folds["test"], folds["nonmember"][::-1])
    assert set(np.concatenate(list(folds.values()))) == set(range(5))


@pytest.mark.parametrize("model", ["boosting", "logistic"])
def test_power_where_the_spread_differs_and_the_mean_does_not(model):
    rng = np.random.default_rng(1)
    vec = {"retain": sorted_vectors(rng, 400, 0.8, 0.02), "test": sorted_vectors(rng, 400, 0.8, 0.06),
           "forget": sorted_vectors(rng, 150, 0.8, 0.02)}
    vec["nonmember"] = vec["test"][:150]
    pos = {"retain": np.arange(400), "test": np.arange(400, 800), "forget": np.arange(800, 950),
           "nonmember": np.arange(400, 550)}
    s = cross_fitted_scores({k: vector_features(v) for k, v in vec.items()}, pos, model=model)
    m = attack_metrics(s["forget"], s["nonmember"], n_bootstrap=100)
    assert m["auc_ci"][0] > 0.8 and attack_metrics(s["retain"], s["test"], n_bootstrap=50)["auc"] > 0.8
    # the mean alone (EncoderMI-T) has no power here
    assert abs(attack_metrics(vec["forget"].mean(1), vec["nonmember"].mean(1), n_bootstrap=50)["auc"] - 0.5) < 0.1


def test_no_signal_ci_covers_half_even_when_nonmember_repeats_test():
    """Under random forgetting nonmember == test: the boosting model must not score images it trained on."""
    rng = np.random.default_rng(2)
    vec = {k: sorted_vectors(rng, n, 0.8, 0.04) for k, n in (("retain", 400), ("test", 400), ("forget", 200))}
    vec["nonmember"] = vec["test"]
    pos = {"retain": np.arange(400), "test": np.arange(400, 800), "forget": np.arange(800, 1000),
           "nonmember": np.arange(400, 800)}
    s = cross_fitted_scores({k: vector_features(v) for k, v in vec.items()}, pos, model="boosting")
    lo, hi = attack_metrics(s["forget"], s["nonmember"], n_bootstrap=200)["auc_ci"]
    assert lo < 0.5 < hi
    np.testing.assert_array_equal(s["test"], s["nonmember"])  # the same images get the same out-of-fold scores


def test_errors():
    f = {"retain": np.ones((4, 3)), "test": np.ones((4, 3))}
    with pytest.raises(ValueError, match="'test' set"):
        cross_fitted_scores({"retain": f["retain"]}, {"retain": np.arange(4)})
    with pytest.raises(ValueError, match="one position per row"):
        cross_fitted_scores(f, {"retain": np.arange(4), "test": np.arange(3)})
    with pytest.raises(ValueError, match="model must be"):
        cross_fitted_scores(f, {"retain": np.arange(4), "test": np.arange(4, 8)}, n_folds=2, model="svm")
    with pytest.raises(ValueError, match="n_folds"):
        position_folds({"a": np.arange(3)}, n_folds=1, seed=0)
