"""Shared by the benchmark scripts: build a scenario in memory (no DVC/MLflow), run methods, measure them.

Uses the same library calls as the pipeline stages: prepare -> pretrain -> forget -> unlearn -> verify.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unlearn import certificate as cert_lib
from unlearn.config import Params
from unlearn.data.manifest import PreparedData, fingerprint, pixel_hashes
from unlearn.data.sources import RawImages, balanced_subset, load_source
from unlearn.data.splits import assign_splits
from unlearn.forget import select_classes, select_random
from unlearn.io import sha256_bytes
from unlearn.learners import load_learner
from unlearn.learners.base import Learner
from unlearn.models.checkpoint import save_checkpoint
from unlearn.methods import get_method
from unlearn.pretraining import learner_config, train_from_scratch
from unlearn.stages.unlearn import unlearning_data
from unlearn.training import resolve_device, seed_everything, to_tensor
from unlearn.verification import build_evaluation_sets, collect_outputs, score_outputs


CIFAR_ZIP = Path(os.environ.get("UNLEARN_CIFAR_ZIP", Path(__file__).resolve().parents[2] / "shared" / "datasets"
                                / "cifar10-jpeg.zip"))  # UNLEARN_CIFAR_ZIP: a copy elsewhere (e.g. on a GPU host)


def require_cifar() -> None:
    """Stop with one line naming the file when the CIFAR-10 zip is missing."""
    if not CIFAR_ZIP.is_file():
        raise SystemExit(f"{CIFAR_ZIP} not found (set UNLEARN_CIFAR_ZIP)")


def read_records(paths: list[str | Path]) -> list[dict]:
    """Every row of these JSONL record files, in order."""
    return [json.loads(line) for path in paths for line in Path(path).read_text().splitlines() if line.strip()]


def prepared_in_memory(params: Params, raw: RawImages | None = None) -> PreparedData:
    p = params.prepare
    raw = raw or load_source(p.source, p.root, p.download)
    if p.max_images is not None and p.max_images < len(raw.ids):
        raw = balanced_subset(raw, p.max_images, p.seed)
    splits = assign_splits(raw.labels, p.splits.train, p.splits.reference, p.splits.test, p.seed)
    keep = splits != "unused"
    ids = [i for i, k in zip(raw.ids, keep) if k]
    images, labels, splits = raw.images[keep], raw.labels[keep], splits[keep]
    fp = fingerprint(ids, labels, splits, pixel_hashes(images), images.shape[1:])
    return PreparedData(images, labels, ids, splits, raw.classes, fp)


def forget_ids(data: PreparedData, params: Params) -> list[str]:
    train = data.indices("train")
    train_ids = [data.ids[i] for i in train]
    if params.forget.kind == "random":
        return select_random(train_ids, params.forget.fraction, params.forget.seed)
    return select_classes(train_ids, data.labels[train], params.forget.classes)


@dataclass
class Scenario:
    data: PreparedData
    forget: list[str]
    original: Learner
    pretrain_seconds: float
    key: str = ""


CACHE = Path(__file__).resolve().parent / ".cache"  # git-ignored: trained originals, keyed by their params


def build_scenario(params: Params, raw: RawImages | None = None, cache: bool = True) -> Scenario:
    """Prepare the data, pick the forget set and train (or load from the cache) the original model."""
    device = resolve_device(params.device)
    data = prepared_in_memory(params, raw)
    train = data.indices("train")
    config = learner_config(params.pretrain, data.images.shape[-1], len(data.classes))
    key = sha256_bytes(json.dumps([config, data.fingerprint], sort_keys=True).encode())[:16]
    path = CACHE / f"original-{key}.pt"
    if cache and path.is_file():
        original, payload = load_learner(path, device)
        return Scenario(data, forget_ids(data, params), original, payload["config"]["seconds"], key)
    start = time.perf_counter()
    original, _ = train_from_scratch(config, to_tensor(data.images[train], device),
                                     torch.from_numpy(data.labels[train]).to(device))
    seconds = time.perf_counter() - start
    if cache:
        save_checkpoint(path, original, {**original.config(), "seconds": seconds})
    return Scenario(data, forget_ids(data, params), original, seconds, key if cache else "")


def run_methods(scenario: Scenario, params: Params, methods: list[str],
                reuse: dict[str, dict[str, Any]] | None = None,
                variants: dict[str, tuple[str, dict]] | None = None) -> dict[str, dict[str, Any]]:
    """Model, evidence, seconds and verdict per model name (original, then each method).

    ``reuse`` holds earlier results (e.g. the retrain reference) whose models are not trained again.
    ``variants`` adds rows ``name -> (method, overrides of params.unlearn.<method>)``, e.g. GP ablations or a
    retrain from another seed.
    """
    device = resolve_device(params.device)
    udata = unlearning_data(scenario.data, scenario.forget, device)
    sets = build_evaluation_sets(scenario.data, scenario.forget, device)
    models: dict[str, tuple[Learner, float]] = {"original": (scenario.original, scenario.pretrain_seconds)}
    for m in methods:
        if reuse and m in reuse:
            models[m] = (reuse[m]["model"], reuse[m]["seconds"])
            continue
        models[m] = _unlearn(scenario, udata, params, m)
    for name, (method, overrides) in (variants or {}).items():
        models[name] = _unlearn(scenario, udata, params, method,
                                getattr(params.unlearn, method).model_copy(update=overrides))
    out: dict[str, dict[str, Any]] = {}
    for name, (model, seconds) in models.items():
        outputs = collect_outputs(model, sets, encoder_views=params.verify.encoder_views, seed=params.verify.seed)
        out[name] = {"model": model, "evidence": score_outputs(outputs, sets.y, n_bootstrap=params.verify.bootstrap,
                                               seed=params.verify.seed), "seconds": seconds}
    th = params.verify.thresholds
    controls = cert_lib.control_results(out["original"]["evidence"], out["retrain"]["evidence"], th)
    out["original"]["verdict"] = "caught" if controls["negative"]["verdict"] == "fail" else "not caught"
    for m in [*methods, *(variants or {})]:
        out[m]["verdict"] = cert_lib.decide(out[m]["evidence"], out["original"]["evidence"],
                                            out["retrain"]["evidence"], th)[0]
    return out


def _unlearn(scenario: Scenario, udata, params: Params, method: str,
             method_params: Any = None) -> tuple[Learner, float]:
    """Run one method; the retrain reference is cached (it costs as much as pretraining)."""
    method_params = method_params if method_params is not None else getattr(params.unlearn, method)
    key = sha256_bytes(json.dumps([scenario.key, scenario.forget, method_params.model_dump(), params.unlearn.seed],
                                  sort_keys=True).encode())[:16]
    path = CACHE / f"retrain-{key}.pt"
    if method == "retrain" and scenario.key and path.is_file():
        model, payload = load_learner(path, resolve_device(params.device))
        return model, payload["config"]["seconds"]
    generator = seed_everything(params.unlearn.seed)
    start = time.perf_counter()
    model = get_method(method)(scenario.original, udata, method_params, generator)
    seconds = time.perf_counter() - start
    if method == "retrain" and scenario.key:
        save_checkpoint(path, model, {**model.config(), "seconds": seconds})
    return model, seconds


def avg_gap(ev: dict, ref: dict) -> float:
    """Mean |Δ| to retrain over UA, RA, TA and MIA-efficacy (in %), as SalUn's Avg. Gap."""
    return float(np.mean([abs(ev["UA"] - ref["UA"]), abs(ev["RA"] - ref["RA"]), abs(ev["TA"] - ref["TA"]),
                          100 * abs(ev["mia_efficacy"] - ref["mia_efficacy"])]))


def with_overrides(base: Params, overrides: dict) -> Params:
    def merge(a: dict, b: dict) -> dict:
        return {k: merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
                for k, v in {**a, **b}.items()}

    return Params.model_validate(merge(base.model_dump(), overrides))


def mean_std(values: list[float]) -> str:
    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.2f} ± {arr.std(ddof=1) if len(arr) > 1 else 0.0:.2f}"
