"""MIA-efficacy of Unlearn-Sparse (Jia et al. 2023) and SalUn (Fan et al. 2024).

An RBF-SVC is trained to separate retain (member) from test (non-member)
samples on confidence features and then applied to the forget set; the
share of forget samples it calls "non-member" is the MIA-efficacy.
"""

from __future__ import annotations

import numpy as np
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from unlearn.mia.threshold import confidence
from unlearn.mia.validation import check_features

def confidence_features(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample attack feature: the true-class confidence, as Unlearn-Sparse/SalUn's reported MIA-efficacy.

    A bounded feature matters: a forgotten sample far outside the range of the SVC's training data (a hugely
    negative logit margin, say) lands where the RBF kernel vanishes and gets the intercept's class; on [0, 1]
    the misclassified test samples span the low-confidence region and teach it "non-member".

    Args:
        logits: Shape: (N, K).
        labels: Integer true classes. Shape: (N,).

    Returns:
        float64 features. Shape: (N, 1).
    """
    return confidence(logits, labels)[:, None]


def fit_membership_svc(
    member_features: np.ndarray,
    nonmember_features: np.ndarray,
    *,
    seed: int = 0,
    max_per_class: int = 2000,
) -> Pipeline:
    """Fit StandardScaler + SVC(C=3, gamma="auto", rbf) on a balanced subsample.

    Both classes are subsampled without replacement to
    min(N_m, N_n, max_per_class) rows with ``np.random.default_rng(seed)``.

    Args:
        member_features: Features of members (label 1). Shape: (N_m, F).
        nonmember_features: Features of non-members (label 0). Shape: (N_n, F).
        seed: Subsampling seed.
        max_per_class: Upper bound on rows per class, >= 1.

    Returns:
        The fitted sklearn Pipeline; ``predict`` returns 1 for "member".
    """
    xm = check_features(member_features, "member_features")
    xn = check_features(nonmember_features, "nonmember_features")
    if xm.shape[1] != xn.shape[1]:
        raise ValueError(f"feature widths differ: {xm.shape[1]} vs {xn.shape[1]}")
    if max_per_class < 1:
        raise ValueError(f"max_per_class must be >= 1, got {max_per_class}")
    rng = np.random.default_rng(seed)
    n = min(xm.shape[0], xn.shape[0], max_per_class)
    xm = xm[rng.choice(xm.shape[0], size=n, replace=False)]
    xn = xn[rng.choice(xn.shape[0], size=n, replace=False)]
    model = make_pipeline(StandardScaler(), SVC(C=3, gamma="auto", kernel="rbf"))
    return model.fit(np.vstack([xm, xn]), np.r_[np.ones(n), np.zeros(n)])


def mia_efficacy(
    retain_logits: np.ndarray,
    retain_labels: np.ndarray,
    test_logits: np.ndarray,
    test_labels: np.ndarray,
    forget_logits: np.ndarray,
    forget_labels: np.ndarray,
    *,
    seed: int = 0,
) -> float:
    """Share of forget samples an SVC-based MIA predicts as non-members.

    Jia et al. 2023 ("Model Sparsity Can Simplify Machine Unlearning") and
    Fan et al. 2024 (SalUn) report this number in percent; here it is a
    fraction. Higher means the forget set looks more like unseen data
    (retraining from scratch is the reference value, not 1.0).

    Args:
        retain_logits: Logits on retained training data. Shape: (N_r, K).
        retain_labels: Shape: (N_r,).
        test_logits: Logits on held-out data. Shape: (N_t, K).
        test_labels: Shape: (N_t,).
        forget_logits: Logits on the forget set. Shape: (N_f, K).
        forget_labels: Shape: (N_f,).
        seed: Seed of the balanced subsample used to fit the SVC.

    Returns:
        MIA-efficacy in [0, 1].
    """
    svc = fit_membership_svc(
        confidence_features(retain_logits, retain_labels),
        confidence_features(test_logits, test_labels),
        seed=seed,
    )
    pred = svc.predict(confidence_features(forget_logits, forget_labels))
    return float(np.mean(pred == 0))
