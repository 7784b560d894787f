"""The verify stage's view of the retrain reference: fresh or stale (``requests.retrain_every``), the split of
the forget set into the part the reference excluded and the newer part it trained on, the evidence on each part,
and the reference's lineage tags. See :mod:`unlearn.certificate` for the rules and :mod:`unlearn.reference`."""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearn.certificate import fresh_reference
from unlearn.io import read_json
from unlearn.reference import MIN_EXCLUDED, split_forget
from unlearn.verification import ModelOutputs, forget_part, score_outputs

PART_MINIMUM = {"excluded": MIN_EXCLUDED, "newer": 1}  # smaller parts are not judged (None in the certificate)


def load_reference(path: str | None, record: dict, forget_info: dict,
                   retrain: dict[str, str]) -> tuple[dict[str, Any], list[str] | None]:
    """The certificates' ``reference`` block, and the ids the reference excluded when it is stale (else None).

    ``path``: the forget stage's ``data/forget/reference.json`` (None: a reference retrained for this forget set);
    ``record``: ``forget.json``; ``retrain``: ``{"path", "sha256"}`` of ``models/unlearned/retrain.pt``.
    """
    resolved = read_json(path) if path else {"source": "retrain"}
    if resolved["source"] == "retrain":
        return fresh_reference(retrain, forget_info), None
    if resolved["model_sha256"] != retrain["sha256"]:
        raise ValueError(f"{retrain['path']} (sha256 {retrain['sha256'][:12]}) is not the reference pinned by {path} "
                         f"({resolved['model_sha256'][:12]}); re-run unlearn@retrain")
    excluded, newer = resolved["excluded"], resolved["newer"]
    block = {"sha256": retrain["sha256"], "status": resolved["status"], "source": "pinned",
             "runs_old": resolved["runs_old"], "requests_old": len(newer["request_ids"]),
             "excluded_forget_sha256": excluded["sha256"], "excluded_request_ids": excluded["request_ids"],
             "newer_request_ids": newer["request_ids"]}
    if resolved["status"] == "fresh":
        return block, None
    return block, split_forget(record["sample_ids"], excluded["sample_ids"])[0]


def part_masks(data, forget_ids: list[str], excluded_ids: list[str]) -> dict[str, np.ndarray]:
    """Boolean masks over the evaluation sets' ``forget`` order (sorted positions, as
    :func:`unlearn.verification.build_evaluation_sets` builds it): ``excluded`` and ``newer``."""
    forget_positions = np.sort(data.positions_of(forget_ids))
    excluded = np.isin(forget_positions, data.positions_of(excluded_ids))
    return {"excluded": excluded, "newer": ~excluded}


def part_evidence(outputs: dict[str, ModelOutputs], labels: dict[str, np.ndarray], masks: dict[str, np.ndarray], *,
                  n_bootstrap: int, seed: int) -> dict[str, dict[str, dict] | None]:
    """Evidence of every model on each part (``{part: {model name: evidence}}``); a part smaller than
    :data:`PART_MINIMUM` is None (not judged)."""
    out: dict[str, dict[str, dict] | None] = {}
    for part, mask in masks.items():
        if mask.sum() < PART_MINIMUM[part]:
            out[part] = None
            continue
        out[part] = {name: score_outputs(*forget_part(o, labels, mask), n_bootstrap=n_bootstrap, seed=seed)
                     for name, o in outputs.items()}
    return out


def parts_for(method: str, evidence: dict[str, dict[str, dict] | None] | None) -> dict | None:
    """One certificate's ``parts``: each part's evidence of ``method`` (as ``unlearned``), original and retrain."""
    if evidence is None:
        return None
    return {part: None if ev is None else {"unlearned": ev[method], "original": ev["original"],
                                           "retrain": ev["retrain"]}
            for part, ev in evidence.items()}


def reference_tags(block: dict) -> dict[str, str]:
    """Registry tags naming the reference a certificate used (``unlearn lineage`` prints them)."""
    return {"unlearn.reference_sha256": block["sha256"], "unlearn.reference_status": block["status"],
            "unlearn.reference_runs_old": str(block["runs_old"]),
            "unlearn.reference_forget_sha256": block["excluded_forget_sha256"]}


def describe(block: dict) -> str:
    """One line for logs and the method table's title."""
    if block["status"] == "fresh":
        return f"retrain reference {block['sha256'][:12]} fresh ({block['source']})"
    return (f"retrain reference {block['sha256'][:12]} STALE ({block['runs_old']} run(s), {block['requests_old']} "
            f"request(s) old): reference rules on the samples it excluded only")
