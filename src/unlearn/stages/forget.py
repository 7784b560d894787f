"""Stage ``forget``: choose the forget set (random k%, whole classes, or the ids in deletion requests) and
write ``forget.json`` with the ids, why each is forgotten, and the sha256 of the id list.

It also writes ``data/forget/reference.json``: which retrain reference this forget set is judged against.
Without a pin that is ``{"source": "retrain"}`` (``unlearn@retrain`` retrains it); with the pin
``data/requests/reference.json`` (written by the deletion-request flow between refreshes, see
``requests.retrain_every``) it is the stored reference, with the part of the forget set it excluded."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from unlearn.config import Params
from unlearn.data.manifest import load_prepared
from unlearn.forget import forget_record, read_requests, select_classes, select_random
from unlearn.io import read_json, write_json
from unlearn.reference import resolve_pin
from unlearn.stages import common
from unlearn.tracking import stage_run

logger = logging.getLogger("unlearn.stages.forget")


def main(ns: argparse.Namespace, params: Params) -> None:
    f = params.forget
    data = load_prepared(ns.data)
    train = data.indices("train")
    train_ids = [data.ids[i] for i in train]
    if f.kind == "random":
        reasons = {sid: "random" for sid in select_random(train_ids, f.fraction, f.seed)}
    elif f.kind == "class":
        ids = select_classes(train_ids, data.labels[train], f.classes)
        reasons = {sid: f"class {y}" for sid, y in zip(ids, data.labels[data.positions_of(ids)])}
    else:
        reasons = {}
        for rid, ids in read_requests(ns.requests, train_ids).items():
            reasons.update({sid: f"request {rid}" for sid in ids if sid not in reasons})
        if not reasons:
            raise ValueError(f"{ns.requests}: forget.kind is 'requests' but there is no deletion request")
    record = forget_record(reasons, f.kind, data.fingerprint)
    if len(record["sample_ids"]) >= len(train_ids):
        raise ValueError("forget: the forget set would remove every member; nothing would be retained")
    write_json(ns.out, record)
    write_json(ns.reference_out, _reference(ns.reference_pin, record))
    logger.info("forget set: %d of %d members (%s), sha256 %s", record["n"], len(train_ids), f.kind,
                record["sha256"][:12])
    with stage_run("forget", params.experiment_name) as tracker:
        tracker.log_params({"forget": f.model_dump()})
        tracker.log_metrics({"n_forget": record["n"], "n_retain": len(train_ids) - record["n"]})
        tracker.set_tags({"unlearn.forget_sha256": record["sha256"]})
        tracker.log_dataset("forget-set", ns.out, record["sha256"], context="forget")


def _reference(pin_path: str, record: dict) -> dict:
    """The reference for this forget set (see the module docstring); a pin that does not fit is an error."""
    pin = Path(pin_path)
    if not pin.is_file():
        return resolve_pin(None, record)
    try:
        ref = resolve_pin(read_json(pin), record)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a malformed pin, too: one line naming it
        raise ValueError(f"{pin}: {exc}; delete {pin} to retrain the reference") from None
    logger.info("retrain reference: pinned %s (%s, %d run(s) old; excluded %d, newer %d)", ref["model_sha256"][:12],
                ref["status"], ref["runs_old"], ref["excluded"]["n"], ref["newer"]["n"])
    return ref


if __name__ == "__main__":
    args = common.parser(__doc__)
    args.add_argument("--data", default="data/prepared")
    args.add_argument("--requests", default="data/requests")
    args.add_argument("--out", default="data/forget/forget.json")
    args.add_argument("--reference-pin", default="data/requests/reference.json")
    args.add_argument("--reference-out", default="data/forget/reference.json")
    common.run(main, args)
