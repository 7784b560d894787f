"""A per-example calibrated attack on encoders: offline LiRA (Carlini et al. 2022, §VI-C) on the alignment score.

EncoderMI's threshold attack compares every sample's alignment a(x) (mean pairwise cosine similarity of its V
augmented views) with one global threshold, so an image that is easy to align (a plain background, a centred
object) looks like a member whatever the model saw. A calibrated attack asks instead whether the target aligns
*this* image better than encoders that never saw it do. Reference encoders trained with the target's recipe on
halves of the reference split (:mod:`unlearn.shadow_models`) are OUT models for every evaluated image; with
their scores φ_s(x) the offline LiRA statistic is

    φ(x) = atanh(a(x))                      (Fisher's z of the mean cosine: a near 1 is stretched, as LiRA's
                                             logit scaling stretches confidences near 1)
    z(x) = (φ_target(x) − mean_s φ_s(x)) / σ_out

with one global σ_out pooled over all examples (:func:`unlearn.mia.lira.lira_offline_scores`; per-example
variances need ~64 reference models). A member sits in the upper tail of what unseen-by-the-model images get.
The target and the reference encoders are scored on the *same* augmented views of each image (same seed), so the
augmentation noise of a(x) cancels in the difference as far as the encoders agree.

>>> import numpy as np
>>> target = {"a": np.full((2, 3), 0.9), "b": np.full((1, 3), 0.5)}
>>> refs = {"a": np.full((2, 2, 3), 0.5), "b": np.full((2, 1, 3), 0.5)}
>>> z = encoder_lira_scores(target, refs)
>>> bool(z["a"][0] > z["b"][0])
True
"""

from __future__ import annotations

import numpy as np

from unlearn.mia.lira import lira_offline_scores

MAX_COS = 1.0 - 1e-6  # atanh(±1) is infinite; identical views of a collapsed encoder give exactly 1


def alignment_logit(vectors: np.ndarray) -> np.ndarray:
    """φ = atanh(mean pairwise cosine), clipped to |a| <= 1 − 1e-6. Shape: (..., P) -> (...)."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim < 1 or v.shape[-1] == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"similarity vectors must be finite with P >= 1 pairs, got shape {v.shape}")
    return np.arctanh(np.clip(v.mean(axis=-1), -MAX_COS, MAX_COS))


def encoder_lira_scores(target_vectors: dict[str, np.ndarray], reference_vectors: dict[str, np.ndarray], *,
                        variance: str = "auto") -> dict[str, np.ndarray]:
    """Offline LiRA z-scores of every set (higher = member), all sets standardised by one global σ_out.

    Args:
        target_vectors: Per set name, the target's sorted pairwise view similarities. Shape: (n, P).
        reference_vectors: Per set name, the same for S reference (OUT) encoders on the same views.
            Shape: (S, n, P).
        variance: See :func:`unlearn.mia.lira.lira_offline_scores` (``"auto"``: global below 64 models).

    Returns:
        z per set. Shape: each (n,).
    """
    names = list(target_vectors)
    missing = [k for k in names if k not in reference_vectors]
    if missing:
        raise ValueError(f"reference encoders were not scored on set(s) {missing}")
    for k in names:
        t, r = np.shape(target_vectors[k]), np.shape(reference_vectors[k])
        if len(t) != 2 or len(r) != 3 or r[1:] != t:
            raise ValueError(f"set {k!r}: target vectors {t} and reference vectors {r} do not match "
                             "(expected (n, P) and (S, n, P): the same images and number of views)")
    target = np.concatenate([alignment_logit(target_vectors[k]) for k in names])
    refs = np.concatenate([alignment_logit(reference_vectors[k]) for k in names], axis=1)
    z = lira_offline_scores(target, refs, variance=variance)
    return dict(zip(names, np.split(z, np.cumsum([len(target_vectors[k]) for k in names])[:-1])))
