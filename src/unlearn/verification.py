"""Measure one model for the certificate: utility (UA, RA, TA), MIA-efficacy and every attack's AUC.

Split into :func:`collect_outputs` (runs the model) and :func:`score_outputs` (pure statistics), so the
statistics are testable without a trained model.

Sets (DESIGN.md §4): ``retain`` = members kept; ``forget`` = members to forget; ``test`` = held-out samples of
the classes still in the retain set (TA, and the SVC's non-member side); ``nonmember`` = held-out samples of the
forget set's classes: the population the forget set must become indistinguishable from.

The shadow-model attack and offline LiRA need shadow models (:mod:`unlearn.shadow_models`); they are trained once
per verify run, summarised by :func:`shadow_reference` and passed to :func:`collect_outputs` for every model.
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
from unlearn.mia import (THRESHOLD_ATTACKS, attack_metrics, fit_encodermi_classifier, logit_margin, mia_efficacy,
                         pairwise_cosine_vectors)
from unlearn.mia.lira import lira_offline_scores
from unlearn.mia.shadow import ShadowAttack, fit_shadow_attack, shadow_features, shadow_scores
from unlearn.shadow_models import ShadowModelOutputs, train_shadows
from unlearn.training import to_tensor

SET_NAMES = ("retain", "forget", "test", "nonmember")


@dataclass(frozen=True)
class EvaluationSets:
    """Images (n, C, H, W) float in [0, 1] and labels (n,) per set name, on one device."""

    x: dict[str, Tensor]
    y: dict[str, np.ndarray]
    num_classes: int

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
                          {k: data.labels[v] for k, v in positions.items()}, len(data.classes))


@dataclass(frozen=True)
class ShadowReference:
    """What the shadow models contribute, shared by every model verified in one run.

    ``attack``: the shadow-model attack fitted on the shadows' in/out outputs.
    ``out_margins``: (S, n) logit margins of each evaluation set under the S shadows (all OUT models), for LiRA.
    """

    attack: ShadowAttack
    out_margins: dict[str, np.ndarray]
    n_models: int


def shadow_reference(shadows: list[ShadowModelOutputs], labels: dict[str, np.ndarray], *,
                     seed: int = 0) -> ShadowReference:
    """Fit the shadow attack on all shadows' in/out outputs and stack their margins on the evaluation sets."""
    if not shadows:
        raise ValueError("shadow_reference needs at least one shadow model")
    attack = fit_shadow_attack(np.vstack([shadow_features(s.in_logits, s.in_labels) for s in shadows]),
                               np.vstack([shadow_features(s.out_logits, s.out_labels) for s in shadows]), seed=seed)
    margins = {k: np.stack([logit_margin(s.eval_logits[k], y) for s in shadows]) for k, y in labels.items()}
    return ShadowReference(attack, margins, len(shadows))


def train_shadow_reference(config: dict, data: PreparedData, sets: EvaluationSets, *, n_shadow: int, seed: int = 0,
                           map_fn=map) -> ShadowReference | None:
    """Train ``n_shadow`` shadows with the original's ``config`` on reference halves (None when ``n_shadow`` is 0).

    ``map_fn`` runs the independent shadow tasks (see :func:`unlearn.shadow_models.train_shadows`).
    """
    if n_shadow == 0:
        return None
    ref = data.indices("reference")
    device = next(iter(sets.x.values())).device
    shadows = train_shadows(config, to_tensor(data.images[ref], device), data.labels[ref], sets.x, sets.num_classes,
                            n_shadow=n_shadow, seed=seed, original_size=len(data.indices("train")), map_fn=map_fn)
    return shadow_reference(shadows, sets.y, seed=seed)


@dataclass(frozen=True)
class ModelOutputs:
    """What the attacks see of one model, per set name.

    ``logits``: (n, K) float64 class scores (a linear probe's log-probabilities for encoders, fitted on retain).
    ``view_similarity``: (n, P) sorted pairwise cosine similarities of augmented views, P = V(V-1)/2
    (encoders only): EncoderMI's threshold variant uses their mean, its classifier variant the whole vector.
    ``shadow``: the run's shadow models (shadow attack and LiRA), or None when disabled.
    """

    logits: dict[str, np.ndarray]
    view_similarity: dict[str, np.ndarray] | None
    shadow: ShadowReference | None = None


def collect_outputs(learner: Learner, sets: EvaluationSets, *, encoder_views: int = 8,
                    seed: int = 0, shadow: ShadowReference | None = None) -> ModelOutputs:
    """Run the model once over every set (eval mode, no gradients); ``shadow`` rides along for the attacks."""
    if learner.family == "supervised":
        return ModelOutputs({k: predict_logits(learner, x) for k, x in sets.x.items()}, None, shadow)
    feats = {k: extract_features(learner, x) for k, x in sets.x.items()}
    probe = fit_linear_probe(feats["retain"], sets.y["retain"], seed=seed)
    logits = {k: probe_logits(probe, f, sets.num_classes) for k, f in feats.items()}
    torch.manual_seed(seed)
    learner.eval()
    sims = {k: pairwise_cosine_vectors(_view_features(learner, x, encoder_views)) for k, x in sets.x.items()}
    return ModelOutputs(logits, sims, shadow)


def _view_features(learner: Learner, x: Tensor, n_views: int, batch_size: int = 256) -> np.ndarray:
    return torch.cat([learner.view_features(x[i:i + batch_size], n_views).double().cpu()
                      for i in range(0, len(x), batch_size)]).numpy()


def attack_scores(outputs: ModelOutputs, labels: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Per-sample membership scores (higher = member) of every attack, per set name."""
    scores = {name: {k: fn(lg, labels[k]) for k, lg in outputs.logits.items()}
              for name, fn in THRESHOLD_ATTACKS.items()}
    if outputs.view_similarity is not None:
        scores["encodermi"] = {k: v.mean(axis=1) for k, v in outputs.view_similarity.items()}
        scores["encodermi_classifier"] = encodermi_classifier_scores(outputs.view_similarity)
    if outputs.shadow is not None:
        sh = outputs.shadow
        scores["shadow"] = {k: shadow_scores(sh.attack, shadow_features(lg, labels[k]), labels[k])
                            for k, lg in outputs.logits.items()}
        scores["lira"] = _lira_scores(outputs.logits, labels, sh.out_margins)
    return scores


def encodermi_classifier_scores(vectors: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """EncoderMI's classifier variant (Liu et al. 2021), trained on known members (retain) vs known
    non-members (test), two-fold cross-fitted so that retain and test are scored by the model that did not see
    them; forget and nonmember get the mean of both folds' scores (log-odds).

    Shape: each set (n, P) -> (n,).
    """
    rng = np.random.default_rng(seed)
    folds = {k: rng.permutation(len(vectors[k])) % 2 for k in ("retain", "test")}
    out = {k: np.zeros(len(v)) for k, v in vectors.items()}
    for fold in (0, 1):
        model = fit_encodermi_classifier(vectors["retain"][folds["retain"] == fold],
                                         vectors["test"][folds["test"] == fold], seed=seed)
        for k, v in vectors.items():
            score = model.decision_function(v)
            if k in folds:
                held_out = folds[k] != fold
                out[k][held_out] = score[held_out]
            else:
                out[k] += score / 2
    return out


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

    shadow = outputs.shadow and replace(outputs.shadow, out_margins=cut(outputs.shadow.out_margins, axis=1))
    return ModelOutputs(cut(outputs.logits), cut(outputs.view_similarity), shadow), cut(labels)


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
