"""EncoderMI-V (Liu et al. 2021, CCS, "EncoderMI: Membership Inference against Pre-trained Encoders in
Contrastive Learning", §4.2): a classifier on the *sorted vector* of pairwise cosine similarities between the
V augmented views of a sample, instead of only its mean (EncoderMI-T, :func:`unlearn.mia.mean_pairwise_cosine`).

The paper trains the classifier on a shadow encoder's members and non-members. A verifier knows the target's own
members (retain) and non-members (test), so here the classifier is trained on those and **cross-fitted**: the
samples are split into K folds by their position in the prepared data, and every sample of every set is scored by
the model of the fold that never saw it (the ``test`` and ``nonmember`` sets are the same images under random
forgetting, so folds must follow the image, not the set).

Features (:func:`vector_features`): the sorted similarity vector plus its mean and standard deviation; the
classifier is gradient boosting (``"boosting"``, default: the similarity distribution's shape is not linearly
separable in general) or a standardised logistic regression (``"logistic"``). Scores are log-odds of "member".

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> vec = lambda n, lvl: np.sort(rng.normal(lvl, 0.05, (n, 6)), axis=1)[:, ::-1]
>>> feats = {"retain": vector_features(vec(200, 0.9)), "test": vector_features(vec(200, 0.8))}
>>> pos = {"retain": np.arange(200), "test": np.arange(200, 400)}
>>> s = cross_fitted_scores(feats, pos, model="logistic")
>>> bool(s["retain"].mean() > s["test"].mean())
True
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from unlearn.mia.validation import check_features

MODELS = ("boosting", "logistic")


def vector_features(vectors: np.ndarray) -> np.ndarray:
    """EncoderMI-V features: [sorted similarities, their mean, their standard deviation].

    Args:
        vectors: :func:`unlearn.mia.pairwise_cosine_vectors` output, sorted descending. Shape: (N, P).

    Returns:
        float64 features. Shape: (N, P + 2).
    """
    v = check_features(vectors, "vectors")
    return np.column_stack([v, v.mean(axis=1), v.std(axis=1)])


def _make_model(model: str, seed: int):
    if model == "boosting":  # small trees, early stopping off: deterministic given the seed
        return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                              min_samples_leaf=20, l2_regularization=1.0, random_state=seed)
    if model == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    raise ValueError(f"model must be one of {MODELS}, got {model!r}")


def position_folds(positions: dict[str, np.ndarray], n_folds: int, seed: int) -> dict[str, np.ndarray]:
    """Fold index per row of every set, a function of the row's *position* (the same image in two sets gets the
    same fold). Shape: each (n,) int -> (n,) in [0, n_folds)."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    allpos = np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in positions.values()]))
    fold_of = np.random.default_rng(seed).permutation(len(allpos)) % n_folds
    return {k: fold_of[np.searchsorted(allpos, np.asarray(p, dtype=np.int64))] for k, p in positions.items()}


def cross_fitted_scores(features: dict[str, np.ndarray], positions: dict[str, np.ndarray], *,
                        member: str = "retain", nonmember: str = "test", n_folds: int = 5, model: str = "boosting",
                        seed: int = 0) -> dict[str, np.ndarray]:
    """Train member-vs-non-member classifiers K-fold and score every set out of fold.

    For each fold k, a classifier is fitted on ``features[member]`` (label 1) and ``features[nonmember]``
    (label 0) whose rows are *not* in fold k, and scores every row of every set that *is* in fold k.

    Args:
        features: Per set name, one feature row per sample (e.g. :func:`vector_features`). Shape: (n, F).
        positions: Per set name, each row's position in the prepared data (identical images share one).
            Shape: (n,).
        member, nonmember: The sets with known membership the classifiers are trained on.
        n_folds: K >= 2.
        model: ``"boosting"`` or ``"logistic"``.
        seed: Seeds the folds and the classifiers.

    Returns:
        Out-of-fold log-odds of "member" per set. Shape: each (n,).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    feats = {k: check_features(v, f"features[{k!r}]") for k, v in features.items()}
    for name in (member, nonmember):
        if name not in feats:
            raise ValueError(f"cross_fitted_scores needs the {name!r} set")
    if set(positions) != set(feats) or any(len(positions[k]) != len(feats[k]) for k in feats):
        raise ValueError("positions must give one position per row of every feature set")
    if len({v.shape[1] for v in feats.values()}) != 1:
        raise ValueError("every set must have the same number of features")
    folds = position_folds(positions, n_folds, seed)
    out = {k: np.zeros(len(v)) for k, v in feats.items()}
    with threadpool_limits(limits=1):  # OpenMP in boosting: one thread is faster than an oversubscribed CPU
        for k in range(n_folds):
            _fit_fold(k, feats, folds, member, nonmember, model, seed, out)
    return out


def _fit_fold(k: int, feats: dict, folds: dict, member: str, nonmember: str, model: str, seed: int,
              out: dict) -> None:
    """Fit fold ``k``'s classifier on the other folds and write its scores into ``out`` (in place)."""
    xm, xn = feats[member][folds[member] != k], feats[nonmember][folds[nonmember] != k]
    if len(xm) < 2 or len(xn) < 2:
        raise ValueError(f"fold {k}: too few training samples ({len(xm)} members, {len(xn)} non-members)")
    clf = _make_model(model, seed).fit(np.vstack([xm, xn]), np.r_[np.ones(len(xm)), np.zeros(len(xn))])
    for name, x in feats.items():
        rows = folds[name] == k
        if rows.any():
            out[name][rows] = clf.decision_function(x[rows])
