"""The calibrated encoder attack: offline LiRA on atanh(mean view cosine) against reference encoders."""

import numpy as np
import pytest

from unlearn.mia import attack_metrics
from unlearn.mia.encoder_lira import alignment_logit, encoder_lira_scores


def population(rng, n: int, s: int = 2, p: int = 6, gap: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-image difficulty (alignment level) varies widely; the target adds ``gap`` for its members.

    Returns target vectors (n, p) and reference vectors (s, n, p)."""
    level = rng.uniform(0.3, 0.9, n)
    target = level[:, None] + gap + 0.01 * rng.standard_normal((n, p))
    refs = level[None, :, None] + 0.01 * rng.standard_normal((s, n, p))
    return np.clip(target, -1, 1), np.clip(refs, -1, 1)


def test_alignment_logit_is_fisher_z_of_the_mean_and_finite_at_one():
    np.testing.assert_allclose(alignment_logit(np.array([[0.2, 0.4]])), [np.arctanh(0.3)])
    assert np.isfinite(alignment_logit(np.ones((2, 3)))).all()


def test_calibration_finds_members_the_global_threshold_misses():
    rng = np.random.default_rng(0)
    t_m, r_m = population(rng, 300, gap=0.03)
    t_n, r_n = population(rng, 300)
    z = encoder_lira_scores({"forget": t_m, "nonmember": t_n}, {"forget": r_m, "nonmember": r_n})
    lira = attack_metrics(z["forget"], z["nonmember"], n_bootstrap=100)
    threshold = attack_metrics(t_m.mean(1), t_n.mean(1), n_bootstrap=100)
    assert lira["auc_ci"][0] > 0.9 and threshold["auc"] < 0.65
    assert lira["tpr_at_1pct_fpr"] > 0.5


def test_no_signal_ci_covers_half():
    rng = np.random.default_rng(1)
    t_m, r_m = population(rng, 200)
    t_n, r_n = population(rng, 400)
    z = encoder_lira_scores({"forget": t_m, "nonmember": t_n}, {"forget": r_m, "nonmember": r_n})
    lo, hi = attack_metrics(z["forget"], z["nonmember"], n_bootstrap=200)["auc_ci"]
    assert lo < 0.5 < hi


def test_mismatched_views_or_sets_are_errors():
    t = {"forget": np.zeros((3, 6))}
    with pytest.raises(ValueError, match="do not match"):
        encoder_lira_scores(t, {"forget": np.zeros((2, 3, 3))})
    with pytest.raises(ValueError, match="not scored on set"):
        encoder_lira_scores(t, {})
