"""Stage ``pretrain``: train the original model (deliberately to overfit) and report kNN / linear-probe
accuracy; write the checkpoint (state_dict + config) and its metrics."""

from __future__ import annotations

import argparse
import logging
import time

import torch

from unlearn import determinism
from unlearn.config import Params
from unlearn.data.manifest import load_prepared
from unlearn.evaluation import extract_features, fit_linear_probe, knn_accuracy
from unlearn.io import write_json
from unlearn.models.checkpoint import save_checkpoint
from unlearn.pretraining import learner_config, train_from_scratch
from unlearn.stages import common
from unlearn.tracking import stage_run
from unlearn.training import resolve_device, to_tensor

logger = logging.getLogger("unlearn.stages.pretrain")


def main(ns: argparse.Namespace, params: Params) -> None:
    determinism.configure(params.pretrain.seed)
    device = resolve_device(params.device)
    env = determinism.environment(device)
    data = load_prepared(ns.data)
    train, test = data.indices("train"), data.indices("test")
    x, y = to_tensor(data.images[train], device), torch.from_numpy(data.labels[train]).to(device)
    config = learner_config(params.pretrain, data.images.shape[-1], len(data.classes))
    with stage_run("pretrain", params.experiment_name) as tracker:
        tracker.log_params({"pretrain": params.pretrain.model_dump(), "device": str(device), "environment": env})
        tracker.log_dataset(params.prepare.source, ns.data, data.fingerprint, context="training")
        def monitor(model, epoch: int) -> None:
            tracker.log_metrics(probe_metrics(model, data, train, test, device), step=epoch)

        start = time.perf_counter()
        learner, history = train_from_scratch(
            config, x, y, on_epoch_end=tracker.epoch_callback("pretrain_loss"), monitor=monitor,
            monitor_every=params.pretrain.monitor_every, resume_path=ns.resume,
            checkpoint_every=params.pretrain.checkpoint_every, amp=params.pretrain.amp)
        seconds = time.perf_counter() - start
        sha = save_checkpoint(ns.out, learner, learner.config())
        metrics = {"seconds": seconds, "final_loss": history[-1], **probe_metrics(learner, data, train, test, device)}
        write_json(ns.metrics, {**metrics, "sha256": sha, "dataset_fingerprint": data.fingerprint, "environment": env})
        tracker.log_metrics(metrics)
        tracker.set_tags({"unlearn.model_sha256": sha, "unlearn.dataset_fingerprint": data.fingerprint})
    logger.info("original %s: %s", params.pretrain.method, {k: round(v, 3) for k, v in metrics.items()})


def probe_metrics(learner, data, train, test, device) -> dict[str, float]:
    """kNN (k=200, cosine, weighted) and linear-probe test accuracy on frozen features; train accuracy too."""
    f_train = extract_features(learner, to_tensor(data.images[train], device))
    f_test = extract_features(learner, to_tensor(data.images[test], device))
    y_train, y_test = data.labels[train], data.labels[test]
    probe = fit_linear_probe(f_train, y_train)
    return {"knn_accuracy": knn_accuracy(f_train, y_train, f_test, y_test),
            "probe_train_accuracy": 100.0 * probe.score(f_train, y_train),
            "probe_test_accuracy": 100.0 * probe.score(f_test, y_test)}


if __name__ == "__main__":
    args = common.parser(__doc__)
    args.add_argument("--data", default="data/prepared")
    args.add_argument("--out", default="models/original.pt")
    args.add_argument("--metrics", default="reports/pretrain.json")
    args.add_argument("--resume", default="models/.original.resume.pt", help="resumable training state")
    common.run(main, args)
