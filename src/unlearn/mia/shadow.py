"""Shadow-model attack (Shokri et al. 2017, "Membership Inference Attacks Against Machine Learning Models").

Shadow models are trained like the target on data whose membership is known (``in`` = trained on, ``out`` =
held out); an attack classifier learns to tell their ``in`` outputs from their ``out`` outputs and is then applied
to the target's outputs. This file holds only the statistics (features, fit, score); training the shadow models
lives in :mod:`unlearn.shadow_models`.

Features (one global attack model by default, as Salem et al. 2019 "ML-Leaks" showed suffices): the softmax
vector sorted in descending order, in log space, plus the true-class confidence in logit scale (the stable margin
``z_y - logsumexp_{j!=y} z_j`` of :func:`unlearn.mia.threshold.logit_margin`). Both are monotone maps of Shokri's
probabilities; the log/logit scale keeps overfit samples apart where float probabilities round to exactly 1.
``per_class=True`` adds Shokri's one attack model per true class (falling back to the global model for classes
with too few shadow samples).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 3, 200)
>>> member, nonmember = np.eye(3)[y] * 6 + rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
>>> attack = fit_shadow_attack(shadow_features(member, y), shadow_features(nonmember, y))
>>> s = shadow_scores(attack, shadow_features(np.r_[member, nonmember], np.r_[y, y]))
>>> bool(s[:200].mean() > s[200:].mean())
True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from unlearn.mia.threshold import _check_inputs, logit_margin
from unlearn.mia.validation import check_features

# Features are clipped to [-100, 100] (logit scale): beyond that p = 1 - e^-100 carries no extra signal, and the
# -1e9 fillers of a probe's absent classes would put a sample far outside the range the attack was fitted on.
FEATURE_CLIP = 100.0


def shadow_features(logits: np.ndarray, labels: np.ndarray, top_k: int | None = None) -> np.ndarray:
    """Attack features: [logit margin of the true class, sorted log-softmax (descending)], clipped to ±100.

    Args:
        logits: Class scores (logits or log-probabilities). Shape: (N, K).
        labels: Integer true classes. Shape: (N,).
        top_k: Keep only the k largest log-probabilities (default: all K).

    Returns:
        float64 features. Shape: (N, 1 + min(K, top_k)).
    """
    z, y = _check_inputs(logits, labels)
    k = z.shape[1] if top_k is None else top_k
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    sorted_logp = -np.sort(-log_softmax(z, axis=1), axis=1)[:, :k]
    return np.clip(np.column_stack([logit_margin(z, y), sorted_logp]), -FEATURE_CLIP, FEATURE_CLIP)


@dataclass(frozen=True)
class ShadowAttack:
    """A fitted attack: the global model and, optionally, one model per true class."""

    global_model: Pipeline
    per_class: dict[int, Pipeline] = field(default_factory=dict)


def _check_labels(labels: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if labels is None:
        raise ValueError(f"{name} are required when per_class=True")
    y = np.asarray(labels)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be integers of shape ({n},), got {y.dtype} {y.shape}")
    return y


def _fit_one(x: np.ndarray, y: np.ndarray, seed: int) -> Pipeline:
    """StandardScaler + a one-hidden-layer MLP (Shokri et al. used small fully-connected attack networks)."""
    model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), alpha=1e-3, max_iter=300,
                                                          random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def fit_shadow_attack(in_features: np.ndarray, out_features: np.ndarray, in_labels: np.ndarray | None = None,
                      out_labels: np.ndarray | None = None, *, per_class: bool = False,
                      min_class_samples: int = 20, seed: int = 0) -> ShadowAttack:
    """Fit the attack on the shadow models' outputs (``in`` = member, label 1).

    Args:
        in_features: :func:`shadow_features` of samples the shadows were trained on. Shape: (N_in, F).
        out_features: Same for samples the shadows did not see. Shape: (N_out, F).
        in_labels: True classes of the ``in`` samples (needed with ``per_class``). Shape: (N_in,).
        out_labels: True classes of the ``out`` samples. Shape: (N_out,).
        per_class: Also fit one model per class with at least ``min_class_samples`` samples on each side.
        min_class_samples: Smallest per-side count for a per-class model.
        seed: ``random_state`` of the attack models.

    Returns:
        The fitted :class:`ShadowAttack`.
    """
    xi, xo = check_features(in_features, "in_features"), check_features(out_features, "out_features")
    if xi.shape[1] != xo.shape[1]:
        raise ValueError(f"feature widths differ: {xi.shape[1]} vs {xo.shape[1]}")
    x, target = np.vstack([xi, xo]), np.r_[np.ones(len(xi)), np.zeros(len(xo))]
    models: dict[int, Pipeline] = {}
    if per_class:
        yi = _check_labels(in_labels, len(xi), "in_labels")
        yo = _check_labels(out_labels, len(xo), "out_labels")
        y = np.r_[yi, yo]
        for c in np.intersect1d(yi, yo):
            if min((yi == c).sum(), (yo == c).sum()) >= min_class_samples:
                models[int(c)] = _fit_one(x[y == c], target[y == c], seed)
    return ShadowAttack(_fit_one(x, target, seed), models)


def shadow_scores(attack: ShadowAttack, features: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Membership scores of the target's samples: the attack's log-odds of "member" (higher = member).

    Log-odds rather than probabilities, so confident members stay ranked instead of tying at 1.0.

    Args:
        attack: From :func:`fit_shadow_attack`.
        features: :func:`shadow_features` of the target model's outputs. Shape: (N, F).
        labels: True classes (used only by per-class models). Shape: (N,).

    Returns:
        Scores. Shape: (N,).
    """
    x = check_features(features, "features")
    scores = _log_odds(attack.global_model, x)
    if attack.per_class:
        y = _check_labels(labels, len(x), "labels")
        for c, model in attack.per_class.items():
            rows = y == c
            if rows.any():
                scores[rows] = _log_odds(model, x[rows])
    return scores


def _log_odds(model: Pipeline, x: np.ndarray) -> np.ndarray:
    """The MLP's output pre-activation: log P(member) - log P(non-member). Shape: (N, F) -> (N,).

    Computed from the fitted weights (``coefs_``, ``intercepts_``) because ``predict_proba`` rounds confident
    outputs to exactly 0 or 1, where the log-odds would be infinite.
    """
    *scalers, mlp = model.named_steps.values()
    a = x
    for step in scalers:
        a = step.transform(a)
    for w, b in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1]):
        a = np.maximum(a @ w + b, 0.0)  # relu, MLPClassifier's default activation
    logit = (a @ mlp.coefs_[-1] + mlp.intercepts_[-1])[:, 0]
    return logit if mlp.classes_[1] == 1 else -logit
