"""Stage ``base``: the model unlearning starts from — the original, or (sequential unlearning of deletion
requests) the checkpoint of the current ``production`` version named by ``data/requests/start.json``.

``start.json`` (written by the deletion-request flow) pins ``{registered_model, version, model_sha256,
forget_sha256}``; the checkpoint is read from the local store ``models/production/<sha256>.pt`` and its sha256 is
checked, so the output is fully determined by the declared deps. Without ``start.json``, ``models/base.pt`` is a
byte copy of ``models/original.pt``. ``reports/base.json`` records which it is, for the verify stage's lineage.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from unlearn.config import Params
from unlearn.io import atomic_write, read_json, sha256_file, write_json
from unlearn.stages import common
from unlearn.stages.pinned import copy_pinned_checkpoint

logger = logging.getLogger("unlearn.stages.base")


def main(ns: argparse.Namespace, params: Params) -> None:
    start = Path(ns.start)
    if not start.is_file():
        atomic_write(ns.out, lambda p: shutil.copyfile(ns.original, p))
        info = {"from": "original", "version": None, "sha256": sha256_file(ns.out), "path": str(ns.out)}
    else:
        pin = read_json(start)
        missing = [k for k in ("registered_model", "version", "model_sha256")
                   if not isinstance(pin, dict) or not isinstance(pin.get(k), (str, int))]
        if missing:
            raise ValueError(f"{start}: not a start pin (missing or ill-typed key(s): {', '.join(missing)}); it is "
                             f"written by the deletion-request flow: delete {start} to start from the original")
        copy_pinned_checkpoint(ns.store, pin["model_sha256"], ns.original, ns.out,
                               pinned_by=f"the checkpoint of {pin['registered_model']} v{pin['version']} named by "
                                         f"{start}", remedy=f"delete {start} to start from the original")
        info = {"from": "production", "registered_model": pin["registered_model"], "version": str(pin["version"]),
                "sha256": pin["model_sha256"], "forget_sha256": pin.get("forget_sha256"), "path": str(ns.out)}
    write_json(ns.info, info)
    logger.info("base model: %s%s (sha256 %s)", info["from"], f" v{info['version']}" if info["version"] else "",
                info["sha256"][:12])


if __name__ == "__main__":
    args = common.parser(__doc__)
    args.add_argument("--original", default="models/original.pt")
    args.add_argument("--start", default="data/requests/start.json")
    args.add_argument("--store", default="models/production")
    args.add_argument("--out", default="models/base.pt")
    args.add_argument("--info", default="reports/base.json")
    common.run(main, args)
