"""Stage ``unlearn@<method>``: apply one unlearning method (or retrain from scratch) to the original model.

``unlearn@retrain`` retrains the reference unless ``data/forget/reference.json`` (the forget stage) names a
pinned one: it then copies that checkpoint from the local store ``models/references/<sha256>.pt`` after checking
its sha256 and architecture, as the base stage does for production (``requests.retrain_every``)."""

from __future__ import annotations

import argparse
import logging
import time

import torch

from unlearn import determinism
from unlearn.config import Params
from unlearn.data.manifest import load_prepared
from unlearn.forget import load_forget_record, member_partition
from unlearn.io import read_json, write_json
from unlearn.learners import Learner, load_learner
from unlearn.methods import UnlearningData, get_method
from unlearn.models.checkpoint import check_architecture, save_checkpoint
from unlearn.pretraining import learner_config
from unlearn.stages import common
from unlearn.stages.pinned import copy_pinned_checkpoint
from unlearn.tracking import stage_run
from unlearn.training import resolve_device, seed_everything, to_tensor

logger = logging.getLogger("unlearn.stages.unlearn")


def unlearning_data(data, forget_ids: list[str], device: torch.device) -> UnlearningData:
    retain, forget = member_partition(data.indices("train"), data.positions_of(forget_ids), data.ids)
    ref = data.indices("reference")

    def xy(pos):
        return to_tensor(data.images[pos], device), torch.from_numpy(data.labels[pos]).to(device)

    return UnlearningData(*xy(retain), *xy(forget), *xy(ref))


def load_base_model(path: str, params: Params, data, device: torch.device) -> Learner:
    """The model to unlearn, refused (one error naming ``path`` and the differing keys) unless it is the
    architecture ``params.pretrain`` describes for this dataset: a checkpoint of another model would otherwise be
    unlearned, and certified, under params that do not describe it."""
    learner, payload = load_learner(path, device)
    check_architecture(path, payload["config"], learner_config(params.pretrain, data.images.shape[-1],
                                                               len(data.classes)))
    return learner


def main(ns: argparse.Namespace, params: Params) -> None:
    determinism.configure(params.unlearn.seed)
    reference = read_json(ns.reference) if ns.reference else {"source": "retrain"}
    if ns.method == "retrain" and reference["source"] == "pinned":
        return copy_pinned_reference(ns, params, reference)
    method = get_method(ns.method)
    method_params = getattr(params.unlearn, ns.method)
    device = resolve_device(params.device)
    data = load_prepared(ns.data)
    record = load_forget_record(ns.forget, data.fingerprint)
    original = load_base_model(ns.original, params, data, device)
    env = determinism.environment(device)
    udata = unlearning_data(data, record["sample_ids"], device)
    generator = seed_everything(params.unlearn.seed)
    with stage_run("unlearn", params.experiment_name, run_name=f"unlearn/{ns.method}") as tracker:
        tracker.log_params({"method": ns.method, ns.method: method_params.model_dump(), "seed": params.unlearn.seed,
                            "environment": env})
        start = time.perf_counter()
        model = method(original, udata, method_params, generator)
        seconds = time.perf_counter() - start
        sha = save_checkpoint(ns.out, model, model.config())
        tracker.log_metrics({"seconds": seconds})
        tracker.set_tags({"unlearn.method": ns.method, "unlearn.model_sha256": sha,
                          "unlearn.forget_sha256": record["sha256"]})
    write_json(ns.metrics, {"method": ns.method, "seconds": seconds, "sha256": sha,
                            "params": method_params.model_dump(), "forget_sha256": record["sha256"], "environment": env,
                            **({"reference": {"source": "retrained"}} if ns.method == "retrain" else {})})
    logger.info("%s: %.2fs, %d forgotten, %d retained", ns.method, seconds, len(udata.forget_x), len(udata.retain_x))


def copy_pinned_reference(ns: argparse.Namespace, params: Params, reference: dict) -> None:
    """Copy the pinned reference from the store (sha256 and architecture checked) instead of retraining."""
    start, sha = time.perf_counter(), reference["model_sha256"]
    copy_pinned_checkpoint(ns.store, sha, ns.original, ns.out,
                           pinned_by=f"the retrain reference pinned by {ns.reference}",
                           remedy="delete data/requests/reference.json to retrain it")
    seconds = time.perf_counter() - start
    with stage_run("unlearn", params.experiment_name, run_name="unlearn/retrain") as tracker:
        tracker.log_metrics({"seconds": seconds})
        tracker.set_tags({"unlearn.method": "retrain", "unlearn.model_sha256": sha, "unlearn.reference": "pinned",
                          "unlearn.forget_sha256": reference["excluded"]["sha256"]})
    write_json(ns.metrics, {"method": "retrain", "seconds": seconds, "sha256": sha,
                            "params": params.unlearn.retrain.model_dump(),
                            "forget_sha256": reference["excluded"]["sha256"],
                            "reference": {"source": "pinned", "status": reference["status"],
                                          "runs_old": reference["runs_old"]}})
    logger.info("retrain: reusing the pinned reference %s (%s, %d run(s) old; it excluded %d of the forget set)",
                sha[:12], reference["status"], reference["runs_old"], reference["excluded"]["n"])


if __name__ == "__main__":
    args = common.parser(__doc__)
    args.add_argument("--method", required=True)
    args.add_argument("--data", default="data/prepared")
    args.add_argument("--forget", default="data/forget/forget.json")
    args.add_argument("--original", default="models/original.pt")
    args.add_argument("--out", required=True)
    args.add_argument("--metrics", required=True)
    args.add_argument("--reference", default=None, help="data/forget/reference.json of the forget stage")
    args.add_argument("--store", default="models/references", help="stored retrain references, by sha256")
    common.run(main, args)
