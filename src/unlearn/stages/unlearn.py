"""Stage ``unlearn@<method>``: apply one unlearning method (or retrain from scratch) to the original model."""

from __future__ import annotations

import argparse
import logging
import time

import torch

from unlearn.config import Params
from unlearn.data.manifest import load_prepared
from unlearn.forget import load_forget_record, member_partition
from unlearn.io import write_json
from unlearn.learners import load_learner
from unlearn.methods import UnlearningData, get_method
from unlearn.models.checkpoint import save_checkpoint
from unlearn.stages import common
from unlearn.tracking import stage_run
from unlearn.training import resolve_device, seed_everything, to_tensor

logger = logging.getLogger("unlearn.stages.unlearn")


def unlearning_data(data, forget_ids: list[str], device: torch.device) -> UnlearningData:
    retain, forget = member_partition(data.indices("train"), data.positions_of(forget_ids), data.ids)
    ref = data.indices("reference")

    def xy(pos):
        return to_tensor(data.images[pos], device), torch.from_numpy(data.labels[pos]).to(device)

    return UnlearningData(*xy(retain), *xy(forget), *xy(ref))


def main(ns: argparse.Namespace, params: Params) -> None:
    method = get_method(ns.method)
    method_params = getattr(params.unlearn, ns.method)
    device = resolve_device(params.device)
    data = load_prepared(ns.data)
    record = load_forget_record(ns.forget, data.fingerprint)
    original, payload = load_learner(ns.original, device)
    udata = unlearning_data(data, record["sample_ids"], device)
    generator = seed_everything(params.unlearn.seed)
    with stage_run("unlearn", params.experiment_name, run_name=f"unlearn/{ns.method}") as tracker:
        tracker.log_params({"method": ns.method, ns.method: method_params.model_dump(), "seed": params.unlearn.seed})
        start = time.perf_counter()
        model = method(original, udata, method_params, generator)
        seconds = time.perf_counter() - start
        sha = save_checkpoint(ns.out, model, model.config())
        tracker.log_metrics({"seconds": seconds})
        tracker.set_tags({"unlearn.method": ns.method, "unlearn.model_sha256": sha,
                          "unlearn.forget_sha256": record["sha256"]})
    write_json(ns.metrics, {"method": ns.method, "seconds": seconds, "sha256": sha,
                            "params": method_params.model_dump(), "forget_sha256": record["sha256"]})
    logger.info("%s: %.2fs, %d forgotten, %d retained", ns.method, seconds, len(udata.forget_x), len(udata.retain_x))


if __name__ == "__main__":
    args = common.parser(__doc__)
    args.add_argument("--method", required=True)
    args.add_argument("--data", default="data/prepared")
    args.add_argument("--forget", default="data/forget/forget.json")
    args.add_argument("--original", default="models/original.pt")
    args.add_argument("--out", required=True)
    args.add_argument("--metrics", required=True)
    common.run(main, args)
