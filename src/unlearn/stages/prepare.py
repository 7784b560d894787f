"""Stage ``prepare``: raw source -> uint8 arrays + manifest + dataset fingerprint (deterministic for a seed)."""

from __future__ import annotations

import argparse
import logging

from unlearn import determinism
from unlearn.config import Params
from unlearn.data.manifest import save_prepared
from unlearn.data.sources import balanced_subset, load_source
from unlearn.data.splits import assign_splits
from unlearn.stages import common
from unlearn.tracking import stage_run

logger = logging.getLogger("unlearn.stages.prepare")


def main(ns: argparse.Namespace, params: Params) -> None:
    p = params.prepare
    env = determinism.configure(p.seed, torch_backend=False)  # NumPy only: no torch import
    raw = load_source(p.source, p.root, p.download)
    if p.max_images is not None and p.max_images < len(raw.ids):
        raw = balanced_subset(raw, p.max_images, p.seed)
    splits = assign_splits(raw.labels, p.splits.train, p.splits.reference, p.splits.test, p.seed)
    used = splits != "unused"
    ids = [sid for sid, keep in zip(raw.ids, used) if keep]
    fp = save_prepared(ns.out, raw.images[used], raw.labels[used], ids, splits[used], raw.classes, p.source)
    counts = {s: int((splits == s).sum()) for s in ("train", "reference", "test")}
    logger.info("prepared %s: %s, fingerprint %s", p.source, counts, fp[:12])
    with stage_run("prepare", params.experiment_name) as tracker:
        tracker.log_params({"prepare": p.model_dump(), "environment": env})
        tracker.log_metrics({f"n_{k}": v for k, v in counts.items()})
        tracker.set_tags({"unlearn.dataset_fingerprint": fp})
        tracker.log_dataset(p.source, ns.out, fp, context="prepared")


if __name__ == "__main__":
    args = common.parser(__doc__)
    args.add_argument("--out", default="data/prepared")
    common.run(main, args)
