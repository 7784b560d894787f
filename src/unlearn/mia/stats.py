"""Membership-inference attack statistics.

Convention throughout: a *higher* score means "more likely a member".
Members are the positive class (label 1), non-members the negative class (0).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve


def _check_scores(scores: np.ndarray, name: str) -> np.ndarray:
    """Validate a 1-D, non-empty, finite score array and return it as float64.

    Shape: (N,).
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _check_pair(
    member_scores: np.ndarray, nonmember_scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Validate both score arrays. Shapes: (N_m,), (N_n,)."""
    return (
        _check_scores(member_scores, "member_scores"),
        _check_scores(nonmember_scores, "nonmember_scores"),
    )


def _labels_and_scores(
    members: np.ndarray, nonmembers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Stack into sklearn's (y_true, y_score). Shapes: (N_m + N_n,) each."""
    y = np.concatenate([np.ones(members.size), np.zeros(nonmembers.size)])
    return y, np.concatenate([members, nonmembers])


def _z(confidence: float) -> float:
    """Two-sided standard-normal quantile for a confidence level in (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2.0))


def roc_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """Area under the ROC curve of the attack (ties count one half).

    Args:
        member_scores: Scores of known members. Shape: (N_m,).
        nonmember_scores: Scores of known non-members. Shape: (N_n,).

    Returns:
        P(score_member > score_nonmember) + 0.5 * P(tie), in [0, 1].
    """
    m, n = _check_pair(member_scores, nonmember_scores)
    return float(roc_auc_score(*_labels_and_scores(m, n)))


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC estimate (Hanley & McNeil 1982, Radiology 143).

    Args:
        auc: The AUC, in [0, 1].
        n_pos: Number of positives (members), >= 1.
        n_neg: Number of negatives (non-members), >= 1.

    Returns:
        SE = sqrt((A(1-A) + (n_pos-1)(Q1-A^2) + (n_neg-1)(Q2-A^2)) / (n_pos n_neg))
        with Q1 = A / (2 - A) and Q2 = 2A^2 / (1 + A).
    """
    if not 0.0 <= auc <= 1.0:  # also rejects NaN
        raise ValueError(f"auc must be in [0, 1], got {auc}")
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"n_pos and n_neg must be >= 1, got {n_pos}, {n_neg}")
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc**2 / (1.0 + auc)
    var = (
        auc * (1.0 - auc)
        + (n_pos - 1) * (q1 - auc**2)
        + (n_neg - 1) * (q2 - auc**2)
    ) / (n_pos * n_neg)
    return float(np.sqrt(max(var, 0.0)))


def min_detectable_auc_shift(
    n_pos: int, n_neg: int, confidence: float = 0.95
) -> float:
    """Smallest AUC deviation from 0.5 distinguishable from chance.

    Computed as z * SE(0.5) with the Hanley & McNeil (1982) standard error
    and a two-sided normal quantile z (1.96 at 95%). E.g. 250 vs 2500
    samples give ~0.04, 50 vs 2500 give ~0.08.

    Args:
        n_pos: Number of members (e.g. forget-set size), >= 1.
        n_neg: Number of non-members, >= 1.
        confidence: Two-sided confidence level in (0, 1).

    Returns:
        The half-width of the chance-level AUC interval.
    """
    return _z(confidence) * hanley_mcneil_se(0.5, n_pos, n_neg)


def tpr_at_fpr(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr: float
) -> float:
    """True-positive rate at a fixed low false-positive rate (Carlini et al. 2022).

    Not interpolated: returns the largest TPR among the empirical ROC points
    (sklearn ``roc_curve``, all thresholds kept) whose FPR is <= ``fpr``.
    This is conservative; with N_n non-members, FPRs below 1/N_n give the
    TPR at FPR = 0.

    Args:
        member_scores: Shape: (N_m,).
        nonmember_scores: Shape: (N_n,).
        fpr: Target false-positive rate in [0, 1].

    Returns:
        TPR in [0, 1].
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    m, n = _check_pair(member_scores, nonmember_scores)
    fprs, tprs, _ = roc_curve(*_labels_and_scores(m, n), drop_intermediate=False)
    return float(tprs[fprs <= fpr].max())


def balanced_accuracy_best_threshold(
    member_scores: np.ndarray, nonmember_scores: np.ndarray
) -> float:
    """Best balanced accuracy (TPR + TNR) / 2 over all score thresholds.

    Predicts "member" when score >= threshold; the trivial threshold gives
    0.5, so the result is in [0.5, 1].

    Args:
        member_scores: Shape: (N_m,).
        nonmember_scores: Shape: (N_n,).

    Returns:
        The maximal balanced accuracy.
    """
    m, n = _check_pair(member_scores, nonmember_scores)
    fprs, tprs, _ = roc_curve(*_labels_and_scores(m, n), drop_intermediate=False)
    return float(np.max((tprs + 1.0 - fprs) / 2.0))


def _auc_by_counts(
    member_codes: np.ndarray, nonmember_codes: np.ndarray, n_codes: int
) -> np.ndarray:
    """Row-wise AUC from integer-coded scores, ties counting one half.

    Codes are ranks of the distinct pooled score values, so AUC only needs
    per-row histograms: sum_c h_m[c] * (#nonmembers < c + 0.5 h_n[c]).

    Args:
        member_codes: Codes of resampled members. Shape: (B, N_m).
        nonmember_codes: Codes of resampled non-members. Shape: (B, N_n).
        n_codes: Number of distinct codes (codes are in [0, n_codes)).

    Returns:
        One AUC per row. Shape: (B,).
    """
    n_rows = member_codes.shape[0]
    offset = (np.arange(n_rows) * n_codes)[:, None]
    size = n_rows * n_codes

    def hist(codes: np.ndarray) -> np.ndarray:
        flat = np.bincount((codes + offset).ravel(), minlength=size)
        return flat.reshape(n_rows, n_codes).astype(np.float64)

    h_m, h_n = hist(member_codes), hist(nonmember_codes)
    below = np.cumsum(h_n, axis=1) - h_n
    wins = np.sum(h_m * (below + 0.5 * h_n), axis=1)
    return wins / (member_codes.shape[1] * nonmember_codes.shape[1])


def bootstrap_auc(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """AUCs of bootstrap resamples (members and non-members resampled separately).

    Args:
        member_scores: Shape: (N_m,).
        nonmember_scores: Shape: (N_n,).
        n_bootstrap: Number of resamples B, >= 1.
        seed: Seed for ``np.random.default_rng``.

    Returns:
        Bootstrap AUCs. Shape: (B,).
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    m, n = _check_pair(member_scores, nonmember_scores)
    uniq, codes = np.unique(np.concatenate([m, n]), return_inverse=True)
    m_codes, n_codes = codes[: m.size], codes[m.size :]
    rng = np.random.default_rng(seed)
    m_idx = rng.integers(0, m.size, size=(n_bootstrap, m.size))
    n_idx = rng.integers(0, n.size, size=(n_bootstrap, n.size))
    return _auc_by_counts(m_codes[m_idx], n_codes[n_idx], uniq.size)


def attack_metrics(
    member_scores: np.ndarray,
    nonmember_scores: np.ndarray,
    *,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float | int | list[float]]:
    """All summary statistics of one attack, JSON-serialisable and seeded.

    Args:
        member_scores: Shape: (N_m,).
        nonmember_scores: Shape: (N_n,).
        n_bootstrap: Number of bootstrap resamples for ``auc_ci``.
        confidence: Confidence level of both intervals, in (0, 1).
        seed: Bootstrap seed; equal seeds give identical output.

    Returns:
        Dict with ``auc``, ``auc_se`` (Hanley-McNeil), ``auc_ci`` (percentile
        bootstrap [lo, hi]), ``auc_ci_hm`` (auc +- z*se clipped to [0, 1]),
        ``tpr_at_1pct_fpr``, ``tpr_at_0.1pct_fpr``, ``balanced_accuracy``,
        ``n_members``, ``n_nonmembers``.
    """
    z = _z(confidence)
    m, n = _check_pair(member_scores, nonmember_scores)
    auc = roc_auc(m, n)
    se = hanley_mcneil_se(auc, m.size, n.size)
    boot = bootstrap_auc(m, n, n_bootstrap=n_bootstrap, seed=seed)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return {
        "auc": auc,
        "auc_se": se,
        "auc_ci": [float(lo), float(hi)],
        "auc_ci_hm": [max(0.0, auc - z * se), min(1.0, auc + z * se)],
        "tpr_at_1pct_fpr": tpr_at_fpr(m, n, 0.01),
        "tpr_at_0.1pct_fpr": tpr_at_fpr(m, n, 0.001),
        "balanced_accuracy": balanced_accuracy_best_threshold(m, n),
        "n_members": int(m.size),
        "n_nonmembers": int(n.size),
    }
