"""Per-sample membership scores from classifier logits (higher = member).

All functions take logits of shape (N, K) and (where needed) integer labels
of shape (N,), compute in float64 and return scores of shape (N,).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import log_softmax, logsumexp


def _check_logits(logits: np.ndarray) -> np.ndarray:
    """Validate finite logits with N >= 1 and K >= 2. Shape: (N, K)."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be 2-D (N, K), got shape {z.shape}")
    if z.shape[0] == 0:
        raise ValueError("logits must not be empty")
    if z.shape[1] < 2:
        raise ValueError(f"logits need K >= 2 classes, got {z.shape[1]}")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or inf")
    return z


def _check_inputs(
    logits: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Validate logits (N, K) and integer labels (N,) in [0, K)."""
    z = _check_logits(logits)
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != z.shape[0]:
        raise ValueError(
            f"labels must have shape ({z.shape[0]},), got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must lie in [0, {z.shape[1]})")
    return z, y.astype(np.int64)


def _true_class(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pick z[i, y[i]]. Shapes: (N, K), (N,) -> (N,)."""
    return z[np.arange(z.shape[0]), y]


def logit_margin(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA logit scaling z_y - logsumexp_{j != y} z_j (Carlini et al. 2022).

    Equals log(p_y / (1 - p_y)) but stays finite and strictly ordered for
    overfit samples where float32 cross-entropy underflows to exactly 0.

    Args:
        logits: Shape: (N, K).
        labels: Integer true classes. Shape: (N,).

    Returns:
        Margins. Shape: (N,).
    """
    z, y = _check_inputs(logits, labels)
    others = z.copy()
    others[np.arange(z.shape[0]), y] = -np.inf
    return _true_class(z, y) - logsumexp(others, axis=1)


def negative_loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Negative cross-entropy log p_y (Yeom et al. 2018).

    Computed as -softplus(-margin) = -log1p(exp(-logit_margin)), which keeps
    tiny losses (~1e-22) distinct where even float64 log-softmax rounds
    1 + exp(-50) to 1 and returns exactly 0.

    Args:
        logits: Shape: (N, K).
        labels: Shape: (N,).

    Returns:
        -CE per sample, <= 0. Shape: (N,).
    """
    return -np.logaddexp(0.0, -logit_margin(logits, labels))


def confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Softmax probability of the true class.

    Args:
        logits: Shape: (N, K).
        labels: Shape: (N,).

    Returns:
        p_y in [0, 1]. Shape: (N,).
    """
    return np.exp(negative_loss(logits, labels))


def negative_entropy(logits: np.ndarray) -> np.ndarray:
    """Negative Shannon entropy of the softmax, sum_k p_k log p_k (label-free).

    Args:
        logits: Shape: (N, K).

    Returns:
        -H(softmax(z)), in [-log K, 0]. Shape: (N,).
    """
    logp = log_softmax(_check_logits(logits), axis=1)
    return np.sum(np.exp(logp) * logp, axis=1)


def _log1m_softmax(z: np.ndarray) -> np.ndarray:
    """Stable log(1 - p_k) for every class. Shapes: (N, K) -> (N, K).

    Uses log1p(-p) except for the arg-max class (the only one that can have
    p > 1/2), where log(1 - p_k) = logsumexp_{j != k} z_j - logsumexp z.
    """
    logp = log_softmax(z, axis=1)
    with np.errstate(divide="ignore"):  # p == 1 only at the arg-max, fixed below
        out = np.log1p(-np.exp(logp))
    top = np.argmax(z, axis=1)
    others = z.copy()
    others[np.arange(z.shape[0]), top] = -np.inf
    out[np.arange(z.shape[0]), top] = logsumexp(others, axis=1) - logsumexp(
        z, axis=1
    )
    return out


def negative_modified_entropy(
    logits: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """Negative modified entropy -Mentr (Song & Mittal 2021, USENIX Security).

    Mentr = -(1 - p_y) log p_y - sum_{k != y} p_k log(1 - p_k), evaluated
    in log-space so that confident predictions give finite values.

    Args:
        logits: Shape: (N, K).
        labels: Shape: (N,).

    Returns:
        -Mentr per sample. Shape: (N,).
    """
    z, y = _check_inputs(logits, labels)
    logp = log_softmax(z, axis=1)
    log1m = _log1m_softmax(z)
    rows = np.arange(z.shape[0])
    true_term = -np.exp(log1m[rows, y]) * logp[rows, y]
    cross = np.exp(logp) * log1m
    cross[rows, y] = 0.0
    return -(true_term - np.sum(cross, axis=1))


def _entropy_attack(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``negative_entropy`` with the common (logits, labels) signature."""
    _check_inputs(logits, labels)
    return negative_entropy(logits)


THRESHOLD_ATTACKS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "margin": logit_margin,
    "loss": negative_loss,
    "confidence": confidence,
    "entropy": _entropy_attack,
    "modified_entropy": negative_modified_entropy,
}
