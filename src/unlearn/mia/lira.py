"""Offline LiRA (Carlini et al. 2022, "Membership Inference Attacks From First Principles", §VI-C).

For each target example, reference models that were *not* trained on it (OUT models) give a Gaussian
N(μ_out, σ_out²) of its logit-scaled confidence φ = log(p_y / (1 - p_y)) (the stable
:func:`unlearn.mia.threshold.logit_margin`). The offline attack is the one-sided test
Λ = Pr[Z < φ_target] = Φ((φ_target - μ_out) / σ_out): a member sits in the upper tail of what unseen data gets.

With few OUT models the per-example variance is noisy; the paper then uses one global variance. Here
``variance="global"`` pools the within-example variances (mean over examples of the unbiased per-example
variance; with a single OUT model, the variance of its margins over all examples), ``"per_example"`` uses each
example's own, and ``"auto"`` (default) picks per-example from 64 OUT models on, as the paper recommends.

>>> import numpy as np
>>> out = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])  # 2 OUT models, 3 examples
>>> lira_offline_scores(np.array([5.0, 1.5, 0.0]), out).round(3)
array([ 6.364,  0.   , -3.536])
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

PER_EXAMPLE_FROM = 64  # OUT models needed before per-example variances beat a global one (Carlini et al. 2022)


def lira_offline_scores(target_margins: np.ndarray, out_margins: np.ndarray, *, variance: str = "auto",
                        min_std: float = 1e-6) -> np.ndarray:
    """Offline LiRA test statistic per example (higher = more likely member).

    Returns the standardised z = (φ_target - μ_out) / σ_out. The paper's score Λ = Φ(z) (see
    :func:`lira_offline_likelihood`) is a strictly increasing function of z, so both rank examples identically
    (same AUC and TPR at any FPR); z stays finite and untied where Φ rounds to exactly 1 for overfit members.

    Args:
        target_margins: The target model's logit margins. Shape: (N,).
        out_margins: Margins of the same examples under S OUT (reference) models. Shape: (S, N).
        variance: ``"global"``, ``"per_example"`` or ``"auto"`` (per-example iff S >= 64).
        min_std: Floor of σ_out (identical OUT margins would divide by zero).

    Returns:
        z scores, float64. Shape: (N,).
    """
    t = np.asarray(target_margins, dtype=np.float64)
    out = np.asarray(out_margins, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"target_margins must be non-empty 1-D, got shape {t.shape}")
    if out.ndim != 2 or out.shape[0] == 0 or out.shape[1] != t.size:
        raise ValueError(f"out_margins must have shape (S >= 1, {t.size}), got {out.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(out))):
        raise ValueError("margins contain NaN or inf")
    if variance not in ("auto", "global", "per_example"):
        raise ValueError(f"variance must be 'auto', 'global' or 'per_example', got {variance!r}")
    if min_std <= 0:
        raise ValueError(f"min_std must be > 0, got {min_std}")
    n_models = out.shape[0]
    per_example = variance == "per_example" or (variance == "auto" and n_models >= PER_EXAMPLE_FROM)
    if per_example and n_models < 2:
        raise ValueError("per-example variances need S >= 2 OUT models")
    mu = out.mean(axis=0)
    if per_example:
        std = out.std(axis=0, ddof=1)
    elif n_models >= 2:
        std = np.full(t.size, np.sqrt(out.var(axis=0, ddof=1).mean()))
    else:
        std = np.full(t.size, out.std())
    return (t - mu) / np.maximum(std, min_std)


def lira_offline_likelihood(z: np.ndarray) -> np.ndarray:
    """The paper's Λ = Φ(z) = 1 - Pr[Z > φ_target], in [0, 1]. Shape: (N,) -> (N,)."""
    return norm.cdf(np.asarray(z, dtype=np.float64))
