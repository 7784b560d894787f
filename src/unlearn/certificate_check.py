"""Audit a certificate: recompute every hash it names from the files and compare with the model registry.

Checks, one :class:`Check` each: the certificate itself (readable, schema-valid); the sha256 of the model,
parent and retrain-reference weights at the paths it records; the sha256 of the forget-id list in
``forget.json``; the dataset fingerprint, re-hashed from ``data/prepared``; and, through ``registry`` (a
callable, so this module never talks to MLflow), the registered model version tagged with the model's sha256,
whose ``unlearn.certificate_sha256``, ``unlearn.forget_sha256`` and ``unlearn.dataset_fingerprint`` tags must
match the certificate file and its contents. A missing or unreadable file is a failed check, never an exception.
A version's own tags are those it was registered with; a certificate of a later re-evaluation of the same
weights matches the version's ``unlearn.eval.<id>.*`` tags instead (the evaluation whose certificate sha256 it
is). A registry that cannot be read is a failed check saying ``registry unreachable``.

The verdict is re-derived from the evidence the certificate records (metrics, thresholds, reference and parts)
with the rule code that wrote it (:func:`unlearn.certificate.rederive_verdict`): a hand-edited verdict, or
edited metrics, fail the ``verdict re-derived`` check even when no registry is consulted.

Schema v2 certificates also name the retrain reference they used (``reference``): its sha256 must be the
retrain-reference weights'; the forget-id list it excluded is recomputed from ``forget.json`` (all of it for a
fresh reference, the samples of ``excluded_request_ids`` for a stale one) and the counts of samples each rule
judged must add up to it; the registry version must carry the ``unlearn.reference_sha256`` tag. A stale
reference's own certificate is matched against the version registered by the run that trained it, which keeps
that run's certificate and the forget list it excluded.

>>> checks = check_certificate("missing.json", registry=None)
>>> print(checks[0].line())
MISMATCH  certificate: missing.json: file not found
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from unlearn.io import read_json, sha256_file, sha256_ids
from unlearn.requests.lineage import evaluations

# model sha256 -> the tags of the newest registered version carrying tag unlearn.model_sha256=<sha>, or None;
# may raise: LookupError (the registered model is not there) or anything else (the store is unreachable), which
# fails the registry check.
RegistryLookup = Callable[[str], "dict[str, str] | None"]

ARTIFACTS = (("model", "model weights"), ("parent", "parent weights"),
             ("retrain_reference", "retrain-reference weights"))
REGISTRY_TAGS = ("unlearn.certificate_sha256", "unlearn.forget_sha256", "unlearn.dataset_fingerprint",
                 "unlearn.verdict")


@dataclass(frozen=True)
class Check:
    """One comparison: ``expected`` (what the certificate or registry says) vs ``actual`` (recomputed)."""

    name: str
    ok: bool
    expected: str = ""
    actual: str = ""
    note: str = ""

    def line(self) -> str:
        """``OK  name: value`` or ``MISMATCH  name: expected X, found Y (note)``."""
        if self.ok:
            return f"OK        {self.name}: {self.actual}" + (f" ({self.note})" if self.note else "")
        if not self.expected and not self.actual:
            return f"MISMATCH  {self.name}: {self.note}"
        text = f"MISMATCH  {self.name}: certificate says {self.expected}, found {self.actual}"
        return text + (f" ({self.note})" if self.note else "")


def _compare(name: str, expected: str, actual: str, note: str = "") -> Check:
    return Check(name, expected == actual, expected, actual, note)


def _file_sha(name: str, expected: str, path: Path) -> Check:
    if not path.is_file():
        return Check(name, False, expected, "no file", f"{path}: file not found")
    return _compare(name, expected, sha256_file(path), str(path))


def _forget_check(expected: str, path: Path) -> Check:
    name = "forget-id list sha256"
    try:
        ids = read_json(path)["sample_ids"]
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
        return Check(name, False, expected, "unreadable", f"{path}: {exc}")
    return _compare(name, expected, sha256_ids(ids), f"{path}, {len(ids)} ids")


def _dataset_check(expected: str, path: Path) -> Check:
    from unlearn.data.manifest import load_prepared

    name = "dataset fingerprint"
    try:
        data = load_prepared(path, verify=True)  # re-hashes every image against the manifest
    except (FileNotFoundError, ValueError, KeyError, OSError) as exc:
        return Check(name, False, expected, "does not verify", str(exc))
    return _compare(name, expected, data.fingerprint, f"{path}, {len(data.ids)} samples re-hashed")


def _reference_checks(cert: dict, forget_path: Path) -> list[Check]:
    """v2: the reference block agrees with the weights and with ``forget.json`` (see the module docstring)."""
    ref = cert["reference"]
    checks = [_compare("reference sha256", cert["retrain_reference"]["sha256"], ref["sha256"],
                       f"{ref['status']} reference, {ref['runs_old']} run(s) old")]
    try:
        record = read_json(forget_path)
        ids, why = record["sample_ids"], record.get("why", {})
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return checks  # the forget-id list check has already failed on this file
    wanted = {f"request {r}" for r in ref["excluded_request_ids"]}
    excluded = ids if ref["status"] == "fresh" else [s for s in ids if why.get(s) in wanted]
    checks.append(_compare("reference excluded-list sha256", ref["excluded_forget_sha256"], sha256_ids(excluded),
                           f"{len(excluded)} of {len(ids)} forget ids in {forget_path}"))
    judged = ref["judged"]
    ok = (judged["attack_rule"] == len(ids) and judged["reference_rules"] + judged["attack_rule_only"] == len(ids)
          and judged["reference_rules"] in (len(excluded), 0))
    counts = f"attack {judged['attack_rule']}, reference {judged['reference_rules']}, " \
             f"attack only {judged['attack_rule_only']}"
    checks.append(Check("judged sample counts", ok, f"{len(ids)} forget ids, {len(excluded)} excluded", counts))
    return checks


def _stale_self(cert: dict) -> bool:
    ref = cert.get("reference")
    return bool(ref) and ref["status"] == "stale" and ref["sha256"] == cert["model"]["sha256"]


def _verdict_check(cert: dict) -> Check:
    """The recorded verdict against the one re-derived from the certificate's own evidence."""
    from unlearn.certificate import rederive_verdict

    name = "verdict re-derived"
    try:
        verdict, reasons = rederive_verdict(cert)
    except (KeyError, TypeError, ValueError) as exc:
        return Check(name, False, cert.get("verdict", "?"), "not derivable", f"{type(exc).__name__}: {exc}")
    note = "from the recorded metrics and thresholds"
    if verdict != cert["verdict"]:
        note += "; the rules give: " + "; ".join(reasons)[:300]
    return _compare(name, cert["verdict"], verdict, note)


def _registry_checks(cert: dict, cert_sha: str, registry: RegistryLookup) -> list[Check]:
    model_sha = cert["model"]["sha256"]
    try:
        tags = registry(model_sha)
    except LookupError as exc:
        return [Check("registry version", False, note=f"registry: {exc}")]
    except Exception as exc:  # noqa: BLE001 - any store failure is reported as a failed check, not swallowed
        return [Check("registry version", False, note=f"registry unreachable: {exc}")]
    if tags is None:
        return [Check("registry version", False,
                      note=f"no registered model version has tag unlearn.model_sha256={model_sha}")]
    expected = {"unlearn.certificate_sha256": cert_sha, "unlearn.forget_sha256": cert["forget"]["sha256"],
                "unlearn.dataset_fingerprint": cert["dataset"]["fingerprint"], "unlearn.verdict": cert["verdict"]}
    where = f"version {tags.get('version', '?')}"
    checks = [Check("registry version", True, model_sha, f"{where} tagged unlearn.model_sha256={model_sha}")]
    keys = list(REGISTRY_TAGS)
    registered = dict(tags)
    if _stale_self(cert):  # the version belongs to the run that trained it (see the module docstring)
        expected["unlearn.forget_sha256"] = cert["reference"]["excluded_forget_sha256"]
        keys.remove("unlearn.certificate_sha256")
        keys.remove("unlearn.verdict")
        checks.append(Check("registry tag unlearn.certificate_sha256", True, actual="not compared",
                            note=f"{where} is the stale reference: it keeps the certificate of the run that trained it"))
    else:
        if "reference" in cert:
            expected["unlearn.reference_sha256"] = cert["reference"]["sha256"]
            keys.append("unlearn.reference_sha256")
        if tags.get("unlearn.certificate_sha256") != cert_sha:  # a later evaluation of these weights?
            match = [(i, ev) for i, ev in evaluations(tags).items() if ev.get("certificate_sha256") == cert_sha]
            if match:
                ident, ev = match[-1]
                where = f"{where}, evaluation unlearn.eval.{ident}"
                registered.update({f"unlearn.{k}": v for k, v in ev.items()})
    for key in keys:
        # the certificate's side is the file (certificate sha) or its content; the registry's side is the tag
        checks.append(_compare(f"registry tag {key}", expected[key], registered.get(key, "missing"), where))
    return checks


def check_certificate(cert_path: str | Path, *, root: str | Path = ".",
                      forget_path: str | Path = "data/forget/forget.json", data_path: str | Path = "data/prepared",
                      registry: RegistryLookup | None) -> list[Check]:
    """Every check of one certificate; relative paths (also those inside the certificate) resolve under ``root``.

    Args:
        cert_path: The certificate JSON.
        root: Project root the pipeline ran in.
        forget_path: The ``forget.json`` the forget stage wrote.
        data_path: The prepared dataset directory.
        registry: Registry lookup (see ``RegistryLookup``); None skips the registry checks (reported as skipped).

    Returns:
        The checks in order; all ``ok`` means the certificate matches the files and the registry.
    """
    from unlearn.certificate import validate_certificate

    root, cert_path = Path(root), Path(cert_path)
    try:
        cert = read_json(cert_path)
        validate_certificate(cert)
    except (FileNotFoundError, ValueError) as exc:
        return [Check("certificate", False, note=str(exc))]
    cert_sha = sha256_file(cert_path)
    checks = [Check("certificate", True, actual=f"{cert_path} sha256 {cert_sha}",
                    note=f"{cert['schema']}, verdict {cert['verdict']}"), _verdict_check(cert)]
    for key, name in ARTIFACTS:
        checks.append(_file_sha(name, cert[key]["sha256"], root / cert[key]["path"]))
    checks.append(_forget_check(cert["forget"]["sha256"], root / forget_path))
    if "reference" in cert:  # schema v2
        checks.extend(_reference_checks(cert, root / forget_path))
    checks.append(_dataset_check(cert["dataset"]["fingerprint"], root / data_path))
    if registry is None:
        checks.append(Check("registry", True, actual="skipped", note="--no-registry"))
    else:
        checks.extend(_registry_checks(cert, cert_sha, registry))
    return checks
