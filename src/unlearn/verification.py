"""Measure one model for the certificate: utility (UA, RA, TA), MIA-efficacy and every attack's AUC.

Split into :func:`collect_outputs` (runs the model) and :func:`score_outputs` (pure statistics), so the
statistics are testable without a trained model.

Sets (DESIGN.md §4): ``retain`` = members kept; ``forget`` = members to forget; ``test`` = held-out samples of
the classes still in the retain set (TA, and the SVC's non-member side); ``nonmember`` = held-out samples of the
forget set's classes: the population the forget set must become indistinguishable from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from unlearn.data.manifest import PreparedData
from unlearn.forget import member_partition
from unlearn.evaluation import accuracy, extract_features, fit_linear_probe, predict_logits, probe_logits
from unlearn.learners.base import Learner
from unlearn.mia import THRESHOLD_ATTACKS, attack_metrics, mean_pairwise_cosine, mia_efficacy
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
class ModelOutputs:
    """What the attacks see of one model, per set name.

    ``logits``: (n, K) float64 class scores (a linear probe's log-probabilities for encoders, fitted on retain).
    ``view_similarity``: (n,) EncoderMI mean pairwise cosine of augmented views (encoders only).
    """

    logits: dict[str, np.ndarray]
    view_similarity: dict[str, np.ndarray] | None


def collect_outputs(learner: Learner, sets: EvaluationSets, *, encoder_views: int = 8,
                    seed: int = 0) -> ModelOutputs:
    """Run the model once over every set (eval mode, no gradients)."""
    if learner.family == "supervised":
        return ModelOutputs({k: predict_logits(learner, x) for k, x in sets.x.items()}, None)
    feats = {k: extract_features(learner, x) for k, x in sets.x.items()}
    probe = fit_linear_probe(feats["retain"], sets.y["retain"], seed=seed)
    logits = {k: probe_logits(probe, f, sets.num_classes) for k, f in feats.items()}
    torch.manual_seed(seed)
    learner.eval()
    sims = {k: mean_pairwise_cosine(_view_features(learner, x, encoder_views)) for k, x in sets.x.items()}
    return ModelOutputs(logits, sims)


def _view_features(learner: Learner, x: Tensor, n_views: int, batch_size: int = 256) -> np.ndarray:
    return torch.cat([learner.view_features(x[i:i + batch_size], n_views).double().cpu()
                      for i in range(0, len(x), batch_size)]).numpy()


def attack_scores(outputs: ModelOutputs, labels: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Per-sample membership scores (higher = member) of every attack, per set name."""
    scores = {name: {k: fn(lg, labels[k]) for k, lg in outputs.logits.items()}
              for name, fn in THRESHOLD_ATTACKS.items()}
    if outputs.view_similarity is not None:
        scores["encodermi"] = dict(outputs.view_similarity)
    return scores


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
