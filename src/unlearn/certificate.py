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

A stale reference (``requests.retrain_every`` > 1: kept from an earlier run, so it trained on the newer
requests' samples) splits the forget set into ``parts``: ``excluded`` (samples it never trained on) and
``newer`` (samples it trained on). Then:

- the reference rules (forget accuracy, MIA-efficacy) compare on the excluded part only;
- the attack rule applies to the whole forget set *and* to the newer part on its own, so that a small newer
  part cannot hide inside a large forgotten one; for the newer samples it is the only privacy rule;
- the positive control is the reference's attack rule on the excluded part; when the reference excluded fewer
  than :data:`unlearn.reference.MIN_EXCLUDED` samples of this forget set (``parts["excluded"]`` is None), there is
  nothing to compare against and no positive control: every verdict is ``inconclusive``;
- a second negative control, ``negative_newer``: the original must be caught by the attack rule on the newer
  part alone, the only rule that judges those samples; when it is not, that rule has no power there and every
  verdict is ``inconclusive`` (measured on digits: without it, a model that still classified 85% of a newer
  forgotten class passed on the attack rule alone);
- the stale reference itself fails its own certificate: it trained on the newer samples.

A fresh reference (it excluded exactly this forget set; ``parts`` None) gives exactly the rules above it.
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

SCHEMA_ID = "unlearn-certificate/2"
SCHEMA_FILES = {"unlearn-certificate/1": "certificate.v1.json", "unlearn-certificate/2": "certificate.v2.json"}
VERDICTS = ("pass", "fail", "inconclusive")
Parts = dict  # {"excluded": {"unlearned", "original", "retrain"} evidence or None, "newer": {...} or None}


def _z(confidence: float) -> float:
    return float(norm.ppf(0.5 + confidence / 2))


def _proportion_gap(p1: float, n1: int, p2: float, n2: int, z: float) -> tuple[float, float]:
    """|p1 - p2| and its normal-approximation half-width; p in [0, 1]."""
    se = math.sqrt(p1 * (1 - p1) / max(n1, 1) + p2 * (1 - p2) / max(n2, 1))
    return abs(p1 - p2), z * se


def attack_violations(evidence: dict, th: Thresholds, part: str = "the forget set") -> list[str]:
    """Attacks whose forget-vs-nonmember AUC CI lies wholly outside ``0.5 ± auc_tolerance`` (``part`` names the
    samples judged in the reasons)."""
    out = []
    prefix = "" if part == "the forget set" else f"{part}: "
    for name, m in sorted(evidence["attacks"].items()):
        lo, hi = m["auc_ci"]
        if lo > 0.5 + th.auc_tolerance:
            out.append(f"{prefix}{name} attack AUC {m['auc']:.3f} (CI {lo:.3f}-{hi:.3f}) > 0.5+{th.auc_tolerance}: "
                       f"{part} still looks like members")
        elif hi < 0.5 - th.auc_tolerance:
            out.append(f"{prefix}{name} attack AUC {m['auc']:.3f} (CI {lo:.3f}-{hi:.3f}) < 0.5-{th.auc_tolerance}: "
                       f"{part} looks less like members than non-members do (over-forgetting)")
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


NEWER = "the newer samples (the reference trained on them)"
NO_EXCLUDED = ("the retrain reference excluded too few samples of this forget set: there is no sample it never "
               "trained on to compare against; refresh the reference")


def control_results(original: dict, retrain: dict, th: Thresholds, parts: Parts | None = None) -> dict[str, dict]:
    """Negative control (original must be caught) and positive control (retrain must not be), on the samples
    the reference excluded (``parts``: a stale reference, see the module docstring)."""
    excl = {"original": original, "retrain": retrain} if parts is None else parts["excluded"]
    negative = attack_violations(original, th)
    if excl is None:
        positive = [NO_EXCLUDED]
    else:
        negative += reference_violations(excl["original"], excl["retrain"], th)
        positive = attack_violations(excl["retrain"], th, "the samples it excluded" if parts else "the forget set")
    out = {"negative": {"model": "original", "verdict": "fail" if negative else "pass", "reasons": negative},
           "positive": {"model": "retrain", "verdict": "fail" if positive else "pass", "reasons": positive}}
    if parts is not None and parts["newer"] is not None:
        newer = attack_violations(parts["newer"]["original"], th, NEWER)
        out["negative_newer"] = {"model": "original", "verdict": "fail" if newer else "pass", "reasons": newer}
    return out


def privacy_violations(evidence: dict, retrain: dict, th: Thresholds, parts: Parts | None = None) -> list[str]:
    """The privacy rules for one model: attacks on the whole forget set, and with a stale reference the attacks
    on the newer part alone plus the reference rules on the excluded part (``parts["*"]["unlearned"]``)."""
    if parts is None:
        return attack_violations(evidence, th) + reference_violations(evidence, retrain, th)
    out = attack_violations(evidence, th)
    if parts["newer"] is not None:
        out += attack_violations(parts["newer"]["unlearned"], th, NEWER)
    excl = parts["excluded"]
    return out + ([] if excl is None else reference_violations(excl["unlearned"], excl["retrain"], th))


def decide(evidence: dict, original: dict, retrain: dict, th: Thresholds,
           parts: Parts | None = None) -> tuple[str, list[str]]:
    """Verdict and its reasons for one unlearned model (``parts``: a stale reference's split, see above)."""
    controls = control_results(original, retrain, th, parts)
    if controls["negative"]["verdict"] == "pass":
        return "inconclusive", ["negative control passed: the attacks cannot tell the original model from "
                                "non-members on this forget set, so nothing can be certified"]
    if controls["positive"]["verdict"] == "fail":
        return "inconclusive", ["positive control failed: the retrain reference itself is flagged ("
                                + "; ".join(controls["positive"]["reasons"]) + ")"]
    if controls.get("negative_newer", {}).get("verdict") == "pass":
        return "inconclusive", ["negative control on the newer samples passed: the attack rule, the only rule for "
                                "the samples the stale reference trained on, cannot tell the original model from "
                                "non-members there, so their removal cannot be certified; refresh the reference"]
    reasons = privacy_violations(evidence, retrain, th, parts) + utility_violations(evidence, original, th)
    return ("fail", reasons) if reasons else ("pass", ["indistinguishable from non-members within the thresholds"
                                                       " and utility kept"])


def fresh_reference(retrain_ref: dict, forget: dict) -> dict[str, Any]:
    """The ``reference`` block of a reference retrained for exactly this forget set."""
    return {"sha256": retrain_ref["sha256"], "status": "fresh", "source": "retrained", "runs_old": 0,
            "requests_old": 0, "excluded_forget_sha256": forget["sha256"],
            "excluded_request_ids": list(forget["request_ids"]), "newer_request_ids": []}


def judged_counts(n_forget: int, parts: Parts | None) -> dict[str, int]:
    """How many forget samples each rule judged: the attack rule (all), the reference rules (the excluded
    part), and the attack rule alone (the newer part)."""
    if parts is None:
        return {"attack_rule": n_forget, "reference_rules": n_forget, "attack_rule_only": 0}
    n = {k: 0 if v is None else v["unlearned"]["n"]["forget"] for k, v in parts.items()}
    return {"attack_rule": n_forget, "reference_rules": n["excluded"], "attack_rule_only": n_forget - n["excluded"]}


def _stale_self(model: dict, reference: dict) -> list[str]:
    """A stale reference cannot certify the removal of samples it trained on."""
    if reference["status"] == "stale" and model["sha256"] == reference["sha256"]:
        return [f"this is the stale retrain reference ({reference['runs_old']} run(s) old): it trained on the "
                f"newer samples (requests {', '.join(reference['newer_request_ids']) or 'unknown'}), so it cannot "
                "certify their removal"]
    return []


def _parts_block(parts: Parts | None, th: Thresholds) -> dict | None:
    if parts is None:
        return None
    return {k: None if v is None else {"n": v["unlearned"]["n"]["forget"], "metrics": v,
                                       "power": power(v["unlearned"]["n"]["forget"],
                                                      v["unlearned"]["n"]["nonmember"], th)}
            for k, v in parts.items()}


def power(n_forget: int, n_nonmember: int, th: Thresholds) -> dict[str, float]:
    """What this forget set's size could detect at the configured confidence."""
    z = _z(th.confidence)
    return {"min_detectable_auc_shift": min_detectable_auc_shift(n_forget, n_nonmember, th.confidence),
            "min_detectable_accuracy_gap_points": 100 * z * math.sqrt(0.5 / n_forget),
            "n_forget": n_forget, "n_nonmember": n_nonmember, "confidence": th.confidence}


def derive_verdict(metrics: dict[str, dict], th: Thresholds, model: dict, reference: dict,
                   parts: Parts | None = None) -> tuple[str, list[str]]:
    """The verdict and its reasons from the evidence: :func:`decide`, then a stale reference judging itself fails.
    The one rule :func:`build_certificate` writes and :func:`rederive_verdict` checks."""
    verdict, reasons = decide(metrics["unlearned"], metrics["original"], metrics["retrain"], th, parts)
    stale_self = _stale_self(model, reference)
    if stale_self:
        verdict, reasons = "fail", stale_self + (reasons if verdict == "fail" else [])
    return verdict, reasons


def rederive_verdict(cert: dict) -> tuple[str, list[str]]:
    """Recompute a certificate's verdict from the evidence it records (metrics, thresholds, the reference and
    its parts) with :func:`derive_verdict`; raises ``ValueError`` (or ``KeyError``/``TypeError`` on a document
    that is not a certificate) when the evidence cannot be read."""
    th = Thresholds(**cert["thresholds"])
    reference = cert.get("reference") or {"status": "fresh", "sha256": cert["retrain_reference"]["sha256"]}  # v1
    parts = cert.get("parts")
    parts = None if parts is None else {k: None if v is None else v["metrics"] for k, v in parts.items()}
    return derive_verdict(cert["metrics"], th, cert["model"], reference, parts)


def build_certificate(*, method: str, method_params: dict, model: dict, parent: dict, retrain_ref: dict,
                      dataset_fingerprint: str, forget: dict, thresholds: Thresholds, metrics: dict[str, dict],
                      seconds: float, git_commit: str | None, reference: dict | None = None,
                      parts: Parts | None = None, environment: dict | None = None) -> dict[str, Any]:
    """Assemble and validate one certificate. ``metrics`` has keys ``unlearned``, ``original``, ``retrain``.

    ``model``/``parent``/``retrain_ref``: ``{"path", "sha256"}``; ``forget``: ``{"sha256", "n", "kind",
    "request_ids"}`` (ids of samples never appear here). ``reference``: which reference was used
    (:func:`fresh_reference` when None); ``parts``: a stale reference's split of the evidence (None: fresh).
    ``environment``: :func:`unlearn.determinism.certificate_environment` (where the model was computed and
    verified); omitted when None.
    """
    th = thresholds
    reference = reference or fresh_reference(retrain_ref, forget)
    if (reference["status"] == "stale") != (parts is not None):
        raise ValueError(f"a {reference['status']} reference needs "
                         f"{'the evidence split into parts' if parts is None else 'no parts'}")
    verdict, reasons = derive_verdict(metrics, th, model, reference, parts)
    n_forget = metrics["unlearned"]["n"]["forget"]
    cert = {
        "schema": SCHEMA_ID,
        "issued_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "verdict": verdict,
        "reasons": reasons,
        "method": {"name": method, "params": method_params, "seconds": seconds},
        "model": model,
        "parent": parent,
        "retrain_reference": retrain_ref,
        "reference": {**reference, "judged": judged_counts(n_forget, parts)},
        "dataset": {"fingerprint": dataset_fingerprint},
        "forget": forget,
        "thresholds": th.model_dump(),
        "power": power(n_forget, metrics["unlearned"]["n"]["nonmember"], th),
        "controls": control_results(metrics["original"], metrics["retrain"], th, parts),
        "metrics": metrics,
        "parts": _parts_block(parts, th),
        "git_commit": git_commit,
        **({"environment": environment} if environment is not None else {}),
    }
    validate_certificate(cert)
    return cert


def certificate_schema(schema_id: str = SCHEMA_ID) -> dict:
    """The JSON Schema of ``schema_id`` (v1 files, written before the reference block, still validate)."""
    if schema_id not in SCHEMA_FILES:
        raise ValueError(f"unknown certificate schema {schema_id!r}; known: {', '.join(SCHEMA_FILES)}")
    return json.loads(resources.files("unlearn.schemas").joinpath(SCHEMA_FILES[schema_id]).read_text("utf-8"))


def validate_certificate(cert: dict) -> None:
    """Raise ``ValueError`` naming the first schema violation, against the schema the certificate names."""
    import jsonschema

    schema_id = cert.get("schema") if isinstance(cert, dict) else None
    if schema_id not in SCHEMA_FILES:
        raise ValueError(f"certificate names an unknown schema {schema_id!r}; known: {', '.join(SCHEMA_FILES)}")
    try:
        jsonschema.validate(cert, certificate_schema(schema_id))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<root>"
        raise ValueError(f"certificate does not match {schema_id} at {where}: {exc.message}") from None
