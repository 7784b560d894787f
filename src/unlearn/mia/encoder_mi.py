"""EncoderMI (Liu et al. 2021, CCS): membership inference against encoders.

Members of a contrastive encoder's training set yield more similar features
across augmented views. Scores are cosine similarities between the V views.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def pairwise_cosine_vectors(view_features: np.ndarray) -> np.ndarray:
    """Cosine similarities of all view pairs, sorted descending per sample.

    Zero vectors are treated as having cosine 0 with everything (norms are
    clamped at 1e-12, as in ``torch.nn.functional.normalize``).

    Args:
        view_features: Features of V >= 2 augmented views. Shape: (N, V, D).

    Returns:
        Sorted similarity vectors, P = V * (V - 1) / 2. Shape: (N, P).
    """
    x = np.asarray(view_features, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] == 0 or x.shape[2] == 0:
        raise ValueError(f"view_features must be non-empty (N, V, D), got {x.shape}")
    if x.shape[1] < 2:
        raise ValueError(f"need V >= 2 views per sample, got {x.shape[1]}")
    if not np.all(np.isfinite(x)):
        raise ValueError("view_features contain NaN or inf")
    x = x / np.maximum(np.linalg.norm(x, axis=2, keepdims=True), 1e-12)
    gram = np.einsum("nvd,nwd->nvw", x, x)
    iu, ju = np.triu_indices(x.shape[1], k=1)
    return -np.sort(-gram[:, iu, ju], axis=1)


def mean_pairwise_cosine(view_features: np.ndarray) -> np.ndarray:
    """EncoderMI-T score: mean cosine similarity over all V(V-1)/2 view pairs.

    Args:
        view_features: Shape: (N, V, D), V >= 2.

    Returns:
        Scores in [-1, 1], higher = more likely member. Shape: (N,).
    """
    return pairwise_cosine_vectors(view_features).mean(axis=1)


def fit_encodermi_classifier(
    member_vectors: np.ndarray, nonmember_vectors: np.ndarray, *, seed: int = 0
) -> Pipeline:
    """EncoderMI-V: classifier on sorted similarity vectors (e.g. of a shadow encoder).

    Args:
        member_vectors: ``pairwise_cosine_vectors`` of members. Shape: (N_m, P).
        nonmember_vectors: Same for non-members. Shape: (N_n, P).
        seed: ``random_state`` of the logistic regression.

    Returns:
        Fitted StandardScaler + LogisticRegression pipeline (class 1 = member).
    """
    xm = np.asarray(member_vectors, dtype=np.float64)
    xn = np.asarray(nonmember_vectors, dtype=np.float64)
    for name, x in (("member_vectors", xm), ("nonmember_vectors", xn)):
        if x.ndim != 2 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
            raise ValueError(f"{name} must be a non-empty finite 2-D array")
    if xm.shape[1] != xn.shape[1]:
        raise ValueError(f"vector lengths differ: {xm.shape[1]} vs {xn.shape[1]}")
    model = make_pipeline(StandardScaler(), LogisticRegression(random_state=seed))
    y = np.r_[np.ones(xm.shape[0]), np.zeros(xn.shape[0])]
    return model.fit(np.vstack([xm, xn]), y)
