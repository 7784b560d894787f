"""Measure one model for the certificate: utility (UA, RA, TA), MIA-efficacy and every attack's AUC.

Split into :func:`collect_outputs` (runs the model) and :func:`score_outputs` (pure statistics), so the
statistics are testable without a trained model.

Sets (DESIGN.md §4): ``retain`` = members kept; ``forget`` = members to forget; ``test`` = held-out samples of
the classes still in the retain set (TA, and the SVC's non-member side); ``nonmember`` = held-out samples of the
forget set's classes: the population the forget set must become indistinguishable from.

The shadow-model attack and offline LiRA need shadow models (:mod:`unlearn.shadow_models`); they are trained once
per verify run, summarised by :func:`shadow_reference` and passed to :func:`collect_outputs` for every model.

Encoder attacks (:data:`ENCODER_ATTACKS`): ``encodermi`` (EncoderMI-T, mean pairwise view cosine),
``encodermi_classifier`` (logistic regression on the sorted similarity vector), ``encodermi_v`` (EncoderMI-V:
gradient boosting on the sorted vector and its mean/std, :mod:`unlearn.mia.encoder_mi_vector`), both classifiers
trained on retain vs test and cross-fitted by image position; ``encoder_lira`` (offline LiRA on the alignment
score against the shadow encoders, :mod:`unlearn.mia.encoder_lira`; needs shadow models). The class-score attacks
run on a linear probe's log-probabilities (the probe-confidence attack, as MUC's CMIA).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from unlearn.data.manifest import PreparedData
from unlearn.forget import member_partition
from unlearn.evaluation import accuracy, extract_features, fit_linear_probe, predict_logits, probe_logits
from unlearn.learners.base import Learner
from unlearn.mia import THRESHOLD_ATTACKS, attack_metrics, logit_margin, mia_efficacy
from unlearn.mia.encoder_lira import encoder_lira_scores
from unlearn.mia.encoder_mi_vector import cross_fitted_scores, vector_features
from unlearn.mia.lira import lira_offline_scores
from unlearn.mia.shadow import ShadowAttack, fit_shadow_attack, shadow_features, shadow_scores
from unlearn.shadow_models import ShadowModelOutputs, train_shadows, view_similarity_vectors
from unlearn.training import to_tensor

SET_NAMES = ("retain", "forget", "test", "nonmember")
# every attack score_outputs can report, in order (``unlearn list``); encoders add ENCODER_ATTACKS, shadow models
# add "shadow" and "lira" (and "encoder_lira" for encoders)
CLASS_SCORE_ATTACKS = tuple(THRESHOLD_ATTACKS)
ENCODER_ATTACKS = ("encodermi", "encodermi_classifier", "encodermi_v", "encoder_lira")
ATTACK_NAMES = (*CLASS_SCORE_ATTACKS, "svc_mia_efficacy", "shadow", "lira", *ENCODER_ATTACKS)


@dataclass(frozen=True)
class EvaluationSets:
    """Images (n, C, H, W) float in [0, 1], labels (n,) and positions in the prepared data (n,) per set name.

    Under random forgetting ``test`` and ``nonmember`` hold the same images: ``positions`` lets cross-fitted
    attacks keep an image out of the classifier that scores it."""

    x: dict[str, Tensor]
    y: dict[str, np.ndarray]
    num_classes: int
    positions: dict[str, np.ndarray] | None = None

    def size(self, name: str) -> int:
        return len(self.y[name])


def build_evaluation_sets(data: PreparedData, forget_ids: list[str], device: torch.device) -> EvaluationSets:
    """Derive retain/forget/test/nonmember from the prepared data and the forget id list."""
    retain, forget = member_partition(data.indices("train"), data.positions_of(forget_ids), data.ids)
    test = data.indices("test")
    retained_classes = np.unique(data.labels[retain])
    forget_classes = np.unique(data.labels[forget])
    positions = {"retain": retain, "forget": forget,
                 "test": test[np.isin(data.labels[test], retained_classes)],
                 "nonmember": test[np.isin(data.labels[test], forget_classes)]}
    for name, pos in positions.items():
        if len(pos) < 2:
            raise ValueError(f"evaluation set {name!r} has {len(pos)} samples; the splits are too small")
    return EvaluationSets({k: to_tensor(data.images[v], device) for k, v in positions.items()},
                          {k: data.labels[v] for k, v in positions.items()}, len(data.classes),
                          {k: np.asarray(v, dtype=np.int64) for k, v in positions.items()})


@dataclass(frozen=True)
class ShadowReference:
    """What the shadow models contribute, shared by every model verified in one run.

    ``attack``: the shadow-model attack fitted on the shadows' in/out outputs.
    ``out_margins``: (S, n) logit margins of each evaluation set under the S shadows (all OUT models), for LiRA.
    ``out_similarity``: (S, n, P) sorted view similarities of each set under the S shadow encoders (encoders
    only, else None), for the calibrated encoder attack; ``encoder_views`` = V of those vectors.
    """

    attack: ShadowAttack
    out_margins: dict[str, np.ndarray]
    n_models: int
    out_similarity: dict[str, np.ndarray] | None = None
    encoder_views: int | None = None


def shadow_reference(shadows: list[ShadowModelOutputs], labels: dict[str, np.ndarray], *,
                     seed: int = 0) -> ShadowReference:
    """Fit the shadow attack on all shadows' in/out outputs and stack their margins on the evaluation sets."""
    if not shadows:
        raise ValueError("shadow_reference needs at least one shadow model")
    attack = fit_shadow_attack(np.vstack([shadow_features(s.in_logits, s.in_labels) for s in shadows]),
                               np.vstack([shadow_features(s.out_logits, s.out_labels) for s in shadows]), seed=seed)
    margins = {k: np.stack([logit_margin(s.eval_logits[k], y) for s in shadows]) for k, y in labels.items()}
    if all(s.eval_similarity is not None for s in shadows):
        similarity = {k: np.stack([s.eval_similarity[k] for s in shadows]) for k in labels}
        p = next(iter(similarity.values())).shape[-1]
        views = int(round((1 + np.sqrt(1 + 8 * p)) / 2))  # P = V(V-1)/2
        return ShadowReference(attack, margins, len(shadows), similarity, views)
    return ShadowReference(attack, margins, len(shadows))


def train_shadow_reference(config: dict, data: PreparedData, sets: EvaluationSets, *, n_shadow: int, seed: int = 0,
                           encoder_views: int = 8, map_fn=map) -> ShadowReference | None:
    """Train ``n_shadow`` shadows with the original's ``config`` on reference halves (None when ``n_shadow`` is 0).

    ``seed`` must be the one :func:`collect_outputs` gets and ``encoder_views`` its ``encoder_views``: encoder
    shadows are scored on the same augmented views as the target (the calibrated encoder attack).
    ``map_fn`` runs the independent shadow tasks (see :func:`unlearn.shadow_models.train_shadows`).
    """
    if n_shadow == 0:
        return None
    ref = data.indices("reference")
    device = next(iter(sets.x.values())).device
    shadows = train_shadows(config, to_tensor(data.images[ref], device), data.labels[ref], sets.x, sets.num_classes,
                            n_shadow=n_shadow, seed=seed, original_size=len(data.indices("train")),
                            encoder_views=encoder_views, view_seed=seed, map_fn=map_fn)
    return shadow_reference(shadows, sets.y, seed=seed)


@dataclass(frozen=True)
class ModelOutputs:
    """What the attacks see of one model, per set name.

    ``logits``: (n, K) float64 class scores (a linear probe's log-probabilities for encoders, fitted on retain).
    ``view_similarity``: (n, P) sorted pairwise cosine similarities of augmented views, P = V(V-1)/2
    (encoders only): EncoderMI's threshold variant uses their mean, its classifier variant the whole vector.
    ``shadow``: the run's shadow models (shadow attack and LiRA), or None when disabled.
    ``positions``: (n,) position of each row in the prepared data (cross-fitted attacks fold by image); None
    treats the sets as disjoint.
    """

    logits: dict[str, np.ndarray]
    view_similarity: dict[str, np.ndarray] | None
    shadow: ShadowReference | None = None
    positions: dict[str, np.ndarray] | None = None


def collect_outputs(learner: Learner, sets: EvaluationSets, *, encoder_views: int = 8,
                    seed: int = 0, shadow: ShadowReference | None = None) -> ModelOutputs:
    """Run the model once over every set (eval mode, no gradients); ``shadow`` rides along for the attacks."""
    if learner.family == "supervised":
        return ModelOutputs({k: predict_logits(learner, x) for k, x in sets.x.items()}, None, shadow, sets.positions)
    if shadow is not None and shadow.out_similarity is not None and shadow.encoder_views != encoder_views:
        raise ValueError(f"the shadow encoders were scored on {shadow.encoder_views} views per image, this model on "
                         f"{encoder_views}: pass the same encoder_views to train_shadow_reference")
    feats = {k: extract_features(learner, x) for k, x in sets.x.items()}
    probe = fit_linear_probe(feats["retain"], sets.y["retain"], seed=seed)
    logits = {k: probe_logits(probe, f, sets.num_classes) for k, f in feats.items()}
    sims = view_similarity_vectors(learner, sets.x, encoder_views, seed)
    learner.eval()
    return ModelOutputs(logits, sims, shadow, sets.positions)


def attack_scores(outputs: ModelOutputs, labels: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Per-sample membership scores (higher = member) of every attack, per set name."""
    scores = {name: {k: fn(lg, labels[k]) for k, lg in outputs.logits.items()}
              for name, fn in THRESHOLD_ATTACKS.items()}
    if outputs.view_similarity is not None:
        sims, positions = outputs.view_similarity, _positions(outputs)
        scores["encodermi"] = {k: v.mean(axis=1) for k, v in sims.items()}
        scores["encodermi_classifier"] = encodermi_classifier_scores(sims, positions=positions)
        scores["encodermi_v"] = cross_fitted_scores({k: vector_features(v) for k, v in sims.items()}, positions,
                                                    model="boosting")
    if outputs.shadow is not None:
        sh = outputs.shadow
        scores["shadow"] = {k: shadow_scores(sh.attack, shadow_features(lg, labels[k]), labels[k])
                            for k, lg in outputs.logits.items()}
        scores["lira"] = _lira_scores(outputs.logits, labels, sh.out_margins)
        if outputs.view_similarity is not None and sh.out_similarity is not None:
            scores["encoder_lira"] = encoder_lira_scores(outputs.view_similarity, sh.out_similarity)
    return scores


def _positions(outputs: ModelOutputs) -> dict[str, np.ndarray]:
    """Each row's image position; without recorded positions the sets are taken as disjoint images."""
    if outputs.positions is not None:
        return outputs.positions
    sizes = {k: len(v) for k, v in outputs.logits.items()}
    ends = np.cumsum(list(sizes.values()))
    return {k: np.arange(end - n, end) for (k, n), end in zip(sizes.items(), ends)}


def encodermi_classifier_scores(vectors: dict[str, np.ndarray], seed: int = 0,
                                positions: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """EncoderMI's classifier variant (Liu et al. 2021) as a logistic regression on the sorted similarity
    vector, trained on known members (retain) vs known non-members (test) and 2-fold cross-fitted by image
    position (:func:`unlearn.mia.encoder_mi_vector.cross_fitted_scores`): every row is scored by the model that
    did not train on its image. ``positions`` None: the sets are disjoint images.

    Shape: each set (n, P) -> (n,) log-odds.
    """
    if positions is None:
        ends = np.cumsum([len(v) for v in vectors.values()])
        positions = {k: np.arange(end - len(v), end) for (k, v), end in zip(vectors.items(), ends)}
    return cross_fitted_scores(vectors, positions, n_folds=2, model="logistic", seed=seed)


def _lira_scores(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray],
                 out_margins: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Offline LiRA over all sets at once, so the global OUT variance is one number for every compared sample
    (per-set variances would shift whole sets against each other)."""
    names = list(logits)
    target = np.concatenate([logit_margin(logits[k], labels[k]) for k in names])
    z = lira_offline_scores(target, np.concatenate([out_margins[k] for k in names], axis=1))
    return dict(zip(names, np.split(z, np.cumsum([len(labels[k]) for k in names])[:-1])))


def forget_part(outputs: ModelOutputs, labels: dict[str, np.ndarray],
                mask: np.ndarray) -> tuple[ModelOutputs, dict[str, np.ndarray]]:
    """Outputs and labels cut to one part of the forget set (``mask``, aligned with ``forget``), with
    ``nonmember`` cut to that part's classes, so that a part is compared with non-members of its own classes.

    Shape: forget (n,) mask -> forget (m,), nonmember (k,) -> (k',); other sets unchanged.
    """
    mask = np.asarray(mask, dtype=bool)
    keep = {"forget": mask, "nonmember": np.isin(labels["nonmember"], np.unique(labels["forget"][mask]))}
    for name, m in keep.items():
        if m.sum() < 1:
            raise ValueError(f"this part of the forget set leaves evaluation set {name!r} empty")

    def cut(sets: dict | None, axis: int = 0) -> dict | None:
        if sets is None:
            return None
        return {k: (np.compress(keep[k], v, axis=axis) if k in keep else v) for k, v in sets.items()}

    shadow = outputs.shadow and replace(outputs.shadow, out_margins=cut(outputs.shadow.out_margins, axis=1),
                                        out_similarity=cut(outputs.shadow.out_similarity, axis=1))
    return (ModelOutputs(cut(outputs.logits), cut(outputs.view_similarity), shadow, cut(outputs.positions)),
            cut(labels))


def score_outputs(outputs: ModelOutputs, labels: dict[str, np.ndarray], *, n_bootstrap: int = 200,
                  seed: int = 0) -> dict:
    """All metrics of one model as a JSON-able dict (see module docstring for the sets).

    Keys: UA, RA, TA (percent), mia_efficacy (share of forget predicted non-member), attacks (forget vs
    nonmember, per attack), train_vs_test (retain vs test, per attack), strongest_attack, attack_auc.
    """
    lg, y = outputs.logits, labels
    scores = attack_scores(outputs, labels)
    attacks = {name: attack_metrics(s["forget"], s["nonmember"], n_bootstrap=n_bootstrap, seed=seed)
               for name, s in scores.items()}
    train_vs_test = {name: attack_metrics(s["retain"], s["test"], n_bootstrap=n_bootstrap, seed=seed)
                     for name, s in scores.items()}
    strongest = max(attacks, key=lambda a: abs(attacks[a]["auc"] - 0.5))
    return {
        "UA": 100.0 - accuracy(lg["forget"], y["forget"]),
        "RA": accuracy(lg["retain"], y["retain"]),
        "TA": accuracy(lg["test"], y["test"]),
        "forget_accuracy": accuracy(lg["forget"], y["forget"]),
        "nonmember_accuracy": accuracy(lg["nonmember"], y["nonmember"]),
        "mia_efficacy": mia_efficacy(lg["retain"], y["retain"], lg["test"], y["test"], lg["forget"], y["forget"],
                                     seed=seed),
        "attacks": attacks,
        "train_vs_test": train_vs_test,
        "strongest_attack": strongest,
        "attack_auc": attacks[strongest]["auc"],
        "n": {k: int(len(v)) for k, v in labels.items()},
    }
