"""Utility metrics: logits and features of a model, accuracy, linear probe and weighted kNN on frozen features."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from unlearn.learners.base import Learner


@torch.no_grad()
def predict_logits(learner: Learner, x: Tensor, batch_size: int = 512) -> np.ndarray:
    """Eval-mode logits as float64. Shape: (N, C, H, W) -> (N, K)."""
    learner.eval()
    return torch.cat([learner.logits(x[i:i + batch_size]).double().cpu()
                      for i in range(0, len(x), batch_size)]).numpy()


@torch.no_grad()
def extract_features(learner: Learner, x: Tensor, batch_size: int = 512) -> np.ndarray:
    """Eval-mode backbone features as float64. Shape: (N, C, H, W) -> (N, D)."""
    learner.eval()
    return torch.cat([learner.features(x[i:i + batch_size]).double().cpu()
                      for i in range(0, len(x), batch_size)]).numpy()


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent. Shape: (N, K), (N,). NaN for an empty set."""
    if len(labels) == 0:
        return float("nan")
    return float((logits.argmax(axis=1) == labels).mean() * 100.0)


def fit_linear_probe(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> Pipeline:
    """Multinomial logistic regression on standardised frozen features. Shape: (N, D), (N,)."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    return probe.fit(features, labels)


def probe_logits(probe: Pipeline, features: np.ndarray, num_classes: int) -> np.ndarray:
    """The probe's log-probabilities laid out over all ``num_classes`` (absent classes get -inf ... -1e9).

    Shape: (N, D) -> (N, num_classes) float64.
    """
    out = np.full((len(features), num_classes), -1e9)
    out[:, probe.classes_] = probe.predict_log_proba(features)
    return out


def knn_accuracy(train_feats: np.ndarray, train_labels: np.ndarray, test_feats: np.ndarray,
                 test_labels: np.ndarray, k: int = 200, temperature: float = 0.1) -> float:
    """Weighted kNN on cosine similarity (Wu et al. 2018; as lightly and solo-learn monitor), percent.

    Each of the k nearest training features votes for its label with weight ``exp(sim / temperature)``.
    Shape: train (N, D), (N,); test (M, D), (M,).
    """
    a = train_feats / np.linalg.norm(train_feats, axis=1, keepdims=True).clip(1e-12)
    b = test_feats / np.linalg.norm(test_feats, axis=1, keepdims=True).clip(1e-12)
    k = min(k, len(a))
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    correct = 0
    for start in range(0, len(b), 1024):
        sim = b[start:start + 1024] @ a.T  # (m, N)
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(sim, top, axis=1) / temperature)
        votes = np.zeros((len(sim), num_classes))
        np.add.at(votes, (np.arange(len(sim))[:, None], train_labels[top]), weights)
        correct += int((votes.argmax(axis=1) == test_labels[start:start + 1024]).sum())
    return 100.0 * correct / len(b)
