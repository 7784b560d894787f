"""The unlearning certificate: verdict rules, the certificate document, and its JSON Schema.

Rules (thresholds from ``params.yaml:verify.thresholds``; z from ``confidence``):

- privacy, attacks: for every attack, the forget-vs-nonmember AUC must not be *significantly* outside
  ``0.5 ± auc_tolerance`` (its bootstrap CI lies entirely above or entirely below that band). Two-sided: a
  forget set that looks less like members than real non-members do is as detectable as a remembered one.
- privacy, accuracy: forget accuracy must not differ from the retrain reference's by significantly more than
  ``accuracy_tolerance`` points (two-proportion normal interval).
- privacy, MIA-efficacy: likewise against the retrain reference, with ``mia_efficacy_tolerance``.
- utility: test accuracy may drop at most ``utility_drop`` points below the original model's.

The original model is the negative control: when it already passes the privacy rules, the attacks have no
power on this forget set and every verdict is ``inconclusive``. The retrain reference is the positive control:
when *it* fails the attack rule, the attacks are miscalibrated for this forget set and every verdict is
``inconclusive`` too. Otherwise a model gets ``pass`` iff it breaks no rule, else ``fail``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from scipy.stats import norm

from unlearn.config import Thresholds
from unlearn.mia import min_detectable_auc_shift

SCHEMA_ID = "unlearn-certificate/1"
VERDICTS = ("pass", "fail", "inconclusive")


def _z(confidence: float) -> float:
    return float(norm.ppf(0.5 + confidence / 2))


def _proportion_gap(p1: float, n1: int, p2: float, n2: int, z: float) -> tuple[float, float]:
    """|p1 - p2| and its normal-approximation half-width; p in [0, 1]."""
    se = math.sqrt(p1 * (1 - p1) / max(n1, 1) + p2 * (1 - p2) / max(n2, 1))
    return abs(p1 - p2), z * se


def attack_violations(evidence: dict, th: Thresholds) -> list[str]:
    """Attacks whose forget-vs-nonmember AUC CI lies wholly outside ``0.5 ± auc_tolerance``."""
    out = []
    for name, m in sorted(evidence["attacks"].items()):
        lo, hi = m["auc_ci"]
        if lo > 0.5 + th.auc_tolerance:
            out.append(f"{name} attack AUC {m['auc']:.3f} (CI {lo:.3f}-{hi:.3f}) > 0.5+{th.auc_tolerance}: "
                       "the forget set still looks like members")
        elif hi < 0.5 - th.auc_tolerance:
            out.append(f"{name} attack AUC {m['auc']:.3f} (CI {lo:.3f}-{hi:.3f}) < 0.5-{th.auc_tolerance}: "
                       "the forget set looks less like members than non-members do (over-forgetting)")
    return out


def reference_violations(evidence: dict, retrain: dict, th: Thresholds) -> list[str]:
    """Forget accuracy and MIA-efficacy significantly further than the tolerance from the retrain reference."""
    z, n_f, n_r = _z(th.confidence), evidence["n"]["forget"], retrain["n"]["forget"]
    out = []
    gap, hw = _proportion_gap(evidence["forget_accuracy"] / 100, n_f, retrain["forget_accuracy"] / 100, n_r, z)
    if gap - hw > th.accuracy_tolerance / 100:
        out.append(f"forget accuracy {evidence['forget_accuracy']:.1f}% vs retrain {retrain['forget_accuracy']:.1f}%"
                   f" (gap {100 * gap:.1f} ± {100 * hw:.1f} > {th.accuracy_tolerance} points)")
    gap, hw = _proportion_gap(evidence["mia_efficacy"], n_f, retrain["mia_efficacy"], n_r, z)
    if gap - hw > th.mia_efficacy_tolerance:
        out.append(f"MIA-efficacy {evidence['mia_efficacy']:.3f} vs retrain {retrain['mia_efficacy']:.3f}"
                   f" (gap {gap:.3f} ± {hw:.3f} > {th.mia_efficacy_tolerance})")
    return out


def utility_violations(evidence: dict, original: dict, th: Thresholds) -> list[str]:
    drop = original["TA"] - evidence["TA"]
    if drop > th.utility_drop:
        return [f"test accuracy {evidence['TA']:.1f}% is {drop:.1f} points below the original's "
                f"{original['TA']:.1f}% (> {th.utility_drop})"]
    return []


def control_results(original: dict, retrain: dict, th: Thresholds) -> dict[str, dict]:
    """Negative control (original must be caught) and positive control (retrain must not be)."""
    negative = attack_violations(original, th) + reference_violations(original, retrain, th)
    positive = attack_violations(retrain, th)
    return {"negative": {"model": "original", "verdict": "fail" if negative else "pass", "reasons": negative},
            "positive": {"model": "retrain", "verdict": "fail" if positive else "pass", "reasons": positive}}


def decide(evidence: dict, original: dict, retrain: dict, th: Thresholds) -> tuple[str, list[str]]:
    """Verdict and its reasons for one unlearned model."""
    controls = control_results(original, retrain, th)
    if controls["negative"]["verdict"] == "pass":
        return "inconclusive", ["negative control passed: the attacks cannot tell the original model from "
                                "non-members on this forget set, so nothing can be certified"]
    if controls["positive"]["verdict"] == "fail":
        return "inconclusive", ["positive control failed: the retrain reference itself is flagged ("
                                + "; ".join(controls["positive"]["reasons"]) + ")"]
    reasons = (attack_violations(evidence, th) + reference_violations(evidence, retrain, th)
               + utility_violations(evidence, original, th))
    return ("fail", reasons) if reasons else ("pass", ["indistinguishable from non-members within the thresholds"
                                                       " and utility kept"])


def power(n_forget: int, n_nonmember: int, th: Thresholds) -> dict[str, float]:
    """What this forget set's size could detect at the configured confidence."""
    z = _z(th.confidence)
    return {"min_detectable_auc_shift": min_detectable_auc_shift(n_forget, n_nonmember, th.confidence),
            "min_detectable_accuracy_gap_points": 100 * z * math.sqrt(0.5 / n_forget),
            "n_forget": n_forget, "n_nonmember": n_nonmember, "confidence": th.confidence}


def build_certificate(*, method: str, method_params: dict, model: dict, parent: dict, retrain_ref: dict,
                      dataset_fingerprint: str, forget: dict, thresholds: Thresholds, metrics: dict[str, dict],
                      seconds: float, git_commit: str | None) -> dict[str, Any]:
    """Assemble and validate one certificate. ``metrics`` has keys ``unlearned``, ``original``, ``retrain``.

    ``model``/``parent``/``retrain_ref``: ``{"path", "sha256"}``; ``forget``: ``{"sha256", "n", "kind",
    "request_ids"}`` (ids of samples never appear here).
    """
    th = thresholds
    verdict, reasons = decide(metrics["unlearned"], metrics["original"], metrics["retrain"], th)
    cert = {
        "schema": SCHEMA_ID,
        "issued_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "verdict": verdict,
        "reasons": reasons,
        "method": {"name": method, "params": method_params, "seconds": seconds},
        "model": model,
        "parent": parent,
        "retrain_reference": retrain_ref,
        "dataset": {"fingerprint": dataset_fingerprint},
        "forget": forget,
        "thresholds": th.model_dump(),
        "power": power(metrics["unlearned"]["n"]["forget"], metrics["unlearned"]["n"]["nonmember"], th),
        "controls": control_results(metrics["original"], metrics["retrain"], th),
        "metrics": metrics,
        "git_commit": git_commit,
    }
    validate_certificate(cert)
    return cert


def certificate_schema() -> dict:
    return json.loads(resources.files("unlearn.schemas").joinpath("certificate.v1.json").read_text("utf-8"))


def validate_certificate(cert: dict) -> None:
    """Raise ``ValueError`` naming the first schema violation."""
    import jsonschema

    try:
        jsonschema.validate(cert, certificate_schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise ValueError(f"certificate does not match {SCHEMA_ID} at {where}: {exc.message}") from None
