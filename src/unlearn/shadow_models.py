"""Shadow models for the shadow-model attack (Shokri et al. 2017) and offline LiRA (Carlini et al. 2022).

Each shadow model is trained from scratch with the original model's own config (architecture, objective and
recipe; only the seed differs) on a random, class-stratified half of the ``reference`` split: that half is its
``in`` data, the other half its ``out`` data. The reference split is never trained on by the original, the
retrain reference or any unlearner, and the shadows never see the train or test splits, so every shadow is an
OUT model for every sample the verifier scores (what offline LiRA needs).

Shadows depend only on the original's config and the reference data: train them once per verify run and reuse
them for every model being verified. :func:`train_shadow` is one independent task per shadow index, so a
Prefect/Dask fan-out can replace the ``map_fn`` of :func:`train_shadows` (``client.map``, ``task.map``).

Encoders have no classifier head: their "logits" are a linear probe's log-probabilities, the probe fitted on the
shadow's own ``in`` half (as :func:`unlearn.verification.collect_outputs` fits the target's probe on retain).
Encoder shadows also keep the sorted pairwise cosine similarities of V augmented views of every evaluated image
(:func:`view_similarity_vectors`, the same seed as the target's, so both see the same views): the reference
scores of the calibrated encoder attack (:mod:`unlearn.mia.encoder_lira`).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from unlearn.evaluation import extract_features, fit_linear_probe, predict_logits, probe_logits
from unlearn.learners.base import Learner
from unlearn.mia.encoder_mi import pairwise_cosine_vectors
from unlearn.pretraining import train_from_scratch
from unlearn.training import steps_per_epoch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowModelOutputs:
    """What is kept of one trained shadow model (small arrays; the model itself is dropped).

    ``in_logits``/``out_logits``: (n_in, K)/(n_out, K) float64 on its own reference halves, with labels.
    ``eval_logits``: (n, K) float64 per evaluation set name; the shadow was trained on none of them.
    """

    index: int
    seed: int
    in_logits: np.ndarray
    in_labels: np.ndarray
    out_logits: np.ndarray
    out_labels: np.ndarray
    eval_logits: dict[str, np.ndarray]
    seconds: float
    eval_similarity: dict[str, np.ndarray] | None = None  # encoders: (n, P) sorted view similarities per set


@torch.no_grad()
def view_similarity_vectors(learner: Learner, x: dict[str, Tensor], n_views: int, seed: int,
                            batch_size: int = 256) -> dict[str, np.ndarray]:
    """Sorted pairwise cosine similarities of ``n_views`` augmented views per image, per set (eval mode).

    The global torch RNG is seeded once with ``seed`` and the sets are walked in dict order in batches of
    ``batch_size``, so two encoders scored with the same seed, sets and batch size see exactly the same
    augmented views (what the calibrated attack compares). Shape: each (n, C, H, W) -> (n, V(V-1)/2).
    """
    was_training = learner.training
    learner.eval()
    torch.manual_seed(seed)
    out = {}
    for k, images in x.items():
        feats = torch.cat([learner.view_features(images[i:i + batch_size], n_views).double().cpu()
                           for i in range(0, len(images), batch_size)]).numpy()
        out[k] = pairwise_cosine_vectors(feats)
    learner.train(was_training)
    return out


def shadow_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A class-stratified random half split of ``range(len(labels))``: (in, out) sorted positions.

    Each class's samples are shuffled and the first ceil(n_c / 2) go ``in``. Shape: (N,) -> (n_in,), (n_out,).
    """
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):
        pos = rng.permutation(np.flatnonzero(y == c))
        chosen.append(pos[: (len(pos) + 1) // 2])
    in_pos = np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64)
    return in_pos, np.setdiff1d(np.arange(len(y)), in_pos)


def shadow_config(config: dict[str, Any], seed: int, n_in: int | None = None,
                  original_size: int | None = None) -> dict[str, Any]:
    """The original's config with the training seed replaced and, given both sizes, the batch size scaled.

    A shadow trains on fewer samples than the original. With the same epochs and batch size it would take far
    fewer optimizer steps (on digits 1 instead of 7 per epoch) and end up less fitted than the target, so the
    attack would learn a boundary where the target's outputs never fall. Scaling the batch size by
    ``n_in / original_size`` keeps both the number of steps per epoch and the number of passes over each sample
    (contrastive objectives then see fewer in-batch negatives).
    """
    out = copy.deepcopy(config)
    t = {**out["training"], "seed": int(seed)}
    if n_in is not None and original_size is not None and n_in < original_size:
        per_epoch = steps_per_epoch(original_size, t["batch_size"])
        t["batch_size"] = max(2, min(t["batch_size"], n_in // per_epoch))
    out["training"] = t
    return out


def _logits(learner: Learner, x: dict[str, Tensor], fit_on: str, fit_labels: np.ndarray, num_classes: int,
            seed: int) -> dict[str, np.ndarray]:
    """Class scores per set: logits (supervised) or probe log-probabilities fitted on ``x[fit_on]`` (encoders)."""
    if learner.family == "supervised":
        return {k: predict_logits(learner, v) for k, v in x.items()}
    feats = {k: extract_features(learner, v) for k, v in x.items()}
    probe = fit_linear_probe(feats[fit_on], fit_labels, seed=seed)
    return {k: probe_logits(probe, f, num_classes) for k, f in feats.items()}


def train_shadow(config: dict[str, Any], images: Tensor, labels: np.ndarray, eval_x: dict[str, Tensor],
                 num_classes: int, index: int, seed: int, *, original_size: int | None = None,
                 encoder_views: int = 8, view_seed: int = 0) -> ShadowModelOutputs:
    """Train shadow model ``index`` on its half of the reference data and collect its outputs.

    Args:
        config: The original learner's ``config()``; its ``training`` recipe is used with ``seed``.
        images: Reference images in [0, 1]. Shape: (N, C, H, W), on the training device.
        labels: Reference labels. Shape: (N,) int64.
        eval_x: Evaluation sets (e.g. retain/forget/test/nonmember) to score. Shapes: (n, C, H, W).
        num_classes: K, the width of the returned class scores.
        index: Shadow index (names the log lines and the result).
        seed: Seed of the half split and of training; distinct per shadow.
        original_size: Number of samples the original was trained on; scales the batch size (see
            :func:`shadow_config`). None keeps the original's recipe unchanged.
        encoder_views, view_seed: Encoders: views per image and the seed of :func:`view_similarity_vectors`
            (the verifier's ``encoder_views`` and seed, so that target and shadow see the same views).

    Returns:
        The shadow's class scores on its ``in`` and ``out`` halves and on every evaluation set.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(images) or len(labels) < 4:
        raise ValueError(f"shadow {index}: need >= 4 reference samples with one label each, got "
                         f"{len(images)} images and {len(labels)} labels")
    start = time.perf_counter()
    in_pos, out_pos = shadow_halves(labels, seed)
    idx_in = torch.from_numpy(in_pos).to(images.device)
    y_in = torch.from_numpy(labels[in_pos]).to(images.device)
    cfg = shadow_config(config, seed, len(in_pos), original_size)
    learner, _ = train_from_scratch(cfg, images[idx_in], y_in, desc=f"shadow {index}")
    out = shadow_outputs(learner, images, labels, in_pos, out_pos, eval_x, num_classes, index, seed,
                         encoder_views=encoder_views, view_seed=view_seed, start=start)
    logger.info("shadow %d: trained on %d reference samples (batch %d), held out %d (%.1fs)", index, len(in_pos),
                cfg["training"]["batch_size"], len(out_pos), out.seconds)
    return out


def shadow_outputs(learner: Learner, images: Tensor, labels: np.ndarray, in_pos: np.ndarray, out_pos: np.ndarray,
                   eval_x: dict[str, Tensor], num_classes: int, index: int, seed: int, *, encoder_views: int = 8,
                   view_seed: int = 0, start: float | None = None) -> ShadowModelOutputs:
    """What is kept of a trained shadow (see :func:`train_shadow` for the arguments); ``start`` is its
    ``time.perf_counter()`` at the start of training. Lets a caller score shadows it trained itself (e.g. at
    several checkpoints of one run)."""
    device = images.device
    x = {"in": images[torch.from_numpy(in_pos).to(device)], "out": images[torch.from_numpy(out_pos).to(device)],
         **eval_x}
    scores = _logits(learner, x, "in", labels[in_pos], num_classes, seed)
    similarity = (view_similarity_vectors(learner, eval_x, encoder_views, view_seed)
                  if learner.family == "encoder" else None)
    seconds = time.perf_counter() - start if start is not None else 0.0
    return ShadowModelOutputs(index, seed, scores.pop("in"), labels[in_pos], scores.pop("out"), labels[out_pos],
                              scores, seconds, similarity)


def train_shadows(config: dict[str, Any], images: Tensor, labels: np.ndarray, eval_x: dict[str, Tensor],
                  num_classes: int, *, n_shadow: int, seed: int = 0, original_size: int | None = None,
                  encoder_views: int = 8, view_seed: int = 0,
                  map_fn: Callable[..., Iterable[ShadowModelOutputs]] = map) -> list[ShadowModelOutputs]:
    """Train ``n_shadow`` independent shadows, shadow i with seed ``seed * 1000 + i``.

    ``map_fn(fn, indices, seeds)`` runs the tasks: the builtin ``map`` runs them in turn; a Dask
    ``client.map`` or a Prefect ``task.map`` (followed by gathering results) runs them in parallel.
    """
    if n_shadow < 1:
        raise ValueError(f"n_shadow must be >= 1, got {n_shadow}")
    task = partial(train_shadow, config, images, labels, eval_x, num_classes, original_size=original_size,
                   encoder_views=encoder_views, view_seed=view_seed)
    indices = list(range(n_shadow))
    return list(map_fn(task, indices, [seed * 1000 + i for i in indices]))
