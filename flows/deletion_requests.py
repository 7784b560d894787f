"""The deletion-request flow: inbox -> ledger -> pipeline (the five DVC stages) -> registry -> ledger.

One run: validate the new files of ``data/requests/inbox/`` (``received`` / ``rejected`` in the ledger, the
cumulative ``data/requests/accepted.json`` rewritten), mark every pending request ``processing``, run the
pipeline flow (``forget.kind: requests`` makes its forget set every accepted request so far), then mark each
request ``done`` with the production model version and its certificate's sha256 only when a certificate
passed, its model is registered with that certificate's hash and ``production`` points at it; otherwise
``failed`` (the next run retries). The verify stage moves ``production``, and only on a passing certificate.

The retrain reference is refreshed every ``requests.retrain_every`` runs (:func:`unlearn.reference.cadence`). In
between, the flow pins the stored reference in ``data/requests/reference.json`` (the forget stage reads it and
``unlearn@retrain`` copies the checkpoint instead of retraining); after a refresh it stores the new reference in
``models/references/<sha256>.pt`` and records it in ``models/references/current.json``.

``unlearn serve`` serves this flow as a deployment on the cron schedule ``params.yaml:requests.schedule``;
``unlearn ingest`` runs it once. One run at a time per project (a file lock in ``data/ledger/``).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from prefect import flow, get_run_logger, task

from unlearn.config import Params, load_params
from unlearn.console import quiet_expected_errors
from unlearn.data.manifest import load_prepared
from unlearn.io import atomic_write, read_json, sha256_file, write_json
from unlearn.reference import cadence, reference_record
from unlearn.requests.ingest import ACCEPTED_NAME, exclusive, ingest, read_accepted
from unlearn.requests.ledger import Ledger
from unlearn.requests.lineage import evaluations
from unlearn.tracking import model_aliases, model_versions

REQUESTS_DIR = "data/requests"  # the forget and base stages' dep (dvc.yaml): accepted.json and start.json live here
START_PIN = f"{REQUESTS_DIR}/start.json"  # which production checkpoint the base stage starts from (dvc.yaml)
STORE = "models/production"  # local store of checkpoints that held production, by sha256 (dvc.yaml: base --store)
REFERENCE_PIN = f"{REQUESTS_DIR}/reference.json"  # the stored reference this run reuses (dvc.yaml: forget)
REFERENCES = "models/references"  # stored retrain references by sha256 (dvc.yaml: unlearn --store)
CURRENT_REFERENCE = f"{REFERENCES}/current.json"  # the reference in use and how many runs it has served


class RequestsFailed(RuntimeError):
    """The run finished but some requests could not be completed; they are ``failed`` in the ledger."""


def _pipeline_flow():
    """The pipeline flow from ``pipeline.py`` beside this file (works when loaded by path, as Prefect does)."""
    path = Path(__file__).with_name("pipeline.py")
    spec = importlib.util.spec_from_file_location("unlearn_project_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pipeline


def _ledger(project: Path, params: Params) -> Ledger:
    return Ledger(project / params.requests.ledger)


@task
def prepare_dataset(project_dir: str) -> str:
    """``dvc repro --single-item prepare``: the manifest must exist before requests can be checked against it."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["dvc", "repro", "--single-item", "prepare"], cwd=project_dir, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"prepare failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    return read_json(Path(project_dir) / "data/prepared/dataset.json")["fingerprint"]


@task
def ingest_inbox(project_dir: str) -> dict:
    """Validate new inbox files into the ledger and rewrite ``accepted.json``; returns what happened."""
    project = Path(project_dir)
    params = load_params(project / "params.yaml")
    data = load_prepared(project / "data/prepared", verify=False)
    ledger = _ledger(project, params)
    result = ingest(project / params.requests.inbox, ledger, project / REQUESTS_DIR / ACCEPTED_NAME,
                    ids=data.ids, splits=list(data.splits), fingerprint=data.fingerprint)
    logger = get_run_logger()
    for x in result.rejected:
        logger.warning("rejected %s (%s): %s", x.key, x.source, x.reason)
    return {"accepted": [r.request_id for r in result.accepted],
            "rejected": [{"key": x.key, "source": x.source, "reason": x.reason} for x in result.rejected],
            "pending": ledger.pending(), "forget_sha256": result.record["sha256"], "n_forget": result.record["n"]}


@task
def mark(project_dir: str, request_ids: list[str], state: str, detail: str | None = None,
         model_version: str | None = None, certificate_sha256: str | None = None) -> None:
    """Append one ledger event for each request (one transaction)."""
    project = Path(project_dir)
    _ledger(project, load_params(project / "params.yaml")).append_many(
        request_ids, state, detail=detail, model_version=model_version, certificate_sha256=certificate_sha256)


def _intact(path: Path, sha256: str) -> bool:
    """Whether ``path`` exists with exactly these bytes."""
    return path.is_file() and sha256_file(path) == sha256


def _keep(src: Path, store: Path, sha256: str) -> Path:
    """``<store>/<sha256>.pt`` (content-addressed), copied from ``src`` unless it is already there intact."""
    stored = store / f"{sha256}.pt"
    if not _intact(stored, sha256):
        atomic_write(stored, lambda p: p.write_bytes(src.read_bytes()))
    return stored


def _stored_checkpoint(project: Path, sha256: str) -> Path | None:
    """``models/production/<sha256>.pt``, filled from the pipeline's outputs when the file is still there."""
    stored = project / STORE / f"{sha256}.pt"
    if _intact(stored, sha256):
        return stored
    for candidate in [*sorted((project / "models/unlearned").glob("*.pt")), project / "models/base.pt"]:
        if _intact(candidate, sha256):
            return _keep(candidate, project / STORE, sha256)
    return None


@task
def choose_start(project_dir: str) -> dict:
    """Pin the model this run unlearns from: the current ``production`` version when its checkpoint is here, it
    was trained on this dataset and its forget set is among the accepted requests; else the original."""
    project = Path(project_dir)
    params = load_params(project / "params.yaml")
    pin = project / START_PIN

    def original(why: str) -> dict:
        pin.unlink(missing_ok=True)
        get_run_logger().info("starting from the original model: %s", why)
        return {"from": "original", "why": why}

    if params.requests.start_from == "original":
        return original("requests.start_from is 'original'")
    name = params.registered_model_name
    prod = model_aliases(name, must_exist=False).get("production")  # a first run: nothing registered yet
    if prod is None:
        return original("no production version yet")
    tags = dict(next(v for v in model_versions(name) if str(v.version) == prod).tags or {})
    if tags.get("unlearn.dataset_fingerprint") != read_json(project / "data/prepared/dataset.json")["fingerprint"]:
        return original(f"production v{prod} was trained on another dataset")
    known = _ledger(project, params).forget_set(tags.get("unlearn.forget_sha256", ""))
    accepted = set(read_accepted(project / REQUESTS_DIR / ACCEPTED_NAME)["sample_ids"])
    if known is None or not set(known["sample_ids"]) <= accepted:
        return original(f"production v{prod} forgot a set that is not made of accepted requests")
    if _stored_checkpoint(project, tags["unlearn.model_sha256"]) is None:
        return original(f"the checkpoint of production v{prod} ({tags['unlearn.model_sha256'][:12]}) is not in "
                        f"{STORE}/")
    write_json(pin, {"registered_model": name, "version": prod, "model_sha256": tags["unlearn.model_sha256"],
                     "forget_sha256": tags["unlearn.forget_sha256"]})
    return {"from": "production", "version": prod}


def _stored_reference(project: Path, record: dict | None) -> bool:
    return record is not None and _intact(project / REFERENCES / f"{record['model_sha256']}.pt",
                                          record["model_sha256"])


@task
def choose_reference(project_dir: str) -> dict:
    """Reuse the stored retrain reference (pin it, count the run) or leave it to ``unlearn@retrain`` to retrain
    (remove the pin), following ``requests.retrain_every``."""
    project = Path(project_dir)
    params = load_params(project / "params.yaml")
    pin, current = project / REFERENCE_PIN, project / CURRENT_REFERENCE
    record = read_json(current) if current.is_file() else None
    accepted = read_accepted(project / REQUESTS_DIR / ACCEPTED_NAME)
    fingerprint = read_json(project / "data/prepared/dataset.json")["fingerprint"]
    refresh, why = cadence(record, sorted(accepted["sample_ids"]), fingerprint, every=params.requests.retrain_every,
                           stored=_stored_reference(project, record))
    get_run_logger().info("retrain reference: %s (%s)", "retrain" if refresh else "reuse", why)
    if refresh:
        pin.unlink(missing_ok=True)
        if params.requests.retrain_every == 1:  # runs are not counted at 1: a record kept now would understate age
            current.unlink(missing_ok=True)
        return {"refresh": True, "why": why}
    record = {**record, "runs": record["runs"] + 1}
    write_json(current, record)
    write_json(pin, {**{k: record[k] for k in ("model_sha256", "dataset_fingerprint", "excluded")},
                     "runs_old": record["runs"] - 1})
    return {"refresh": False, "why": why, "model_sha256": record["model_sha256"], "runs_old": record["runs"] - 1}


@task
def record_reference(project_dir: str, forget_sha256: str) -> dict | None:
    """After a refreshing run: store ``models/unlearned/retrain.pt`` as the current reference when it was retrained
    for this run's forget set (``requests.retrain_every`` 1 keeps no store: every run retrains)."""
    project = Path(project_dir)
    params = load_params(project / "params.yaml")
    metrics_path, model = project / "reports/unlearn/retrain.json", project / "models/unlearned/retrain.pt"
    if params.requests.retrain_every == 1 or not metrics_path.is_file() or not model.is_file():
        return None
    metrics = read_json(metrics_path)
    sha = sha256_file(model)
    if metrics.get("forget_sha256") != forget_sha256 or metrics.get("sha256") != sha \
            or metrics.get("reference", {}).get("source") != "retrained":
        get_run_logger().warning("retrain reference not recorded: %s was not retrained for forget set %s", model,
                                 forget_sha256[:12])
        return None
    _keep(model, project / REFERENCES, sha)
    accepted = read_accepted(project / REQUESTS_DIR / ACCEPTED_NAME)
    record = reference_record(sha, read_json(project / "data/prepared/dataset.json")["fingerprint"],
                              accepted["sample_ids"], [r["request_id"] for r in accepted["requests"]])
    write_json(project / CURRENT_REFERENCE, record)
    return {"model_sha256": sha, "excluded_sha256": record["excluded"]["sha256"]}


@task
def certified_outcome(project_dir: str, forget_sha256: str) -> dict:
    """Which registered version now certifies the forget set: the first method of ``verify.promote`` whose
    certificate passed, provided its version holds ``production``, passed with its own (registered) certificate,
    and carries this certificate's sha256: as its own tag, or as a later evaluation ``unlearn.eval.<id>.*`` of
    the same weights (registered evidence is never overwritten)."""
    project = Path(project_dir)
    params = load_params(project / "params.yaml")
    summary = read_json(project / "reports/summary.json")
    if summary["forget_sha256"] != forget_sha256:
        return {"ok": False, "detail": f"the pipeline certified forget set {summary['forget_sha256'][:12]}, "
                                       f"not the accepted one {forget_sha256[:12]}"}
    rows = {r["model"]: r for r in summary["rows"]}
    verdicts = ", ".join(f"{m} {rows[m]['verdict']}" for m in params.unlearn.methods if m in rows)
    passing = [m for m in params.verify.promote if m in rows and rows[m]["verdict"] == "pass"]
    if not passing:
        return {"ok": False, "detail": f"no certificate passed ({verdicts}); production unchanged"}
    method = passing[0]
    cert_path = project / "reports/certificates" / f"{method}.json"
    cert_sha, version = sha256_file(cert_path), str(rows[method]["version"])
    cert = read_json(cert_path)
    registered = {str(v.version): v for v in model_versions(summary["registered_model"])}
    v = registered.get(version)
    problems = []
    if cert["forget"]["sha256"] != forget_sha256 or cert["verdict"] != "pass":
        problems.append(f"certificate {cert_path.name} does not certify this forget set")
    recorded = [] if v is None else [v.tags.get("unlearn.certificate_sha256")] + [
        ev.get("certificate_sha256") for ev in evaluations(dict(v.tags or {})).values() if ev.get("verdict") == "pass"]
    if v is None or cert_sha not in recorded:
        problems.append(f"version {version} is not registered with certificate {cert_sha[:12]}")
    elif v.tags.get("unlearn.verdict") != "pass":
        problems.append(f"version {version} was registered with verdict {v.tags.get('unlearn.verdict')!r}")
    elif model_aliases(summary["registered_model"]).get("production") != version:
        problems.append(f"production does not point at version {version}")
    if not problems and _stored_checkpoint(project, v.tags["unlearn.model_sha256"]) is None:
        problems.append(f"the checkpoint of version {version} is gone from models/unlearned")
    if problems:
        return {"ok": False, "detail": "; ".join(problems)}
    return {"ok": True, "model_version": version, "certificate_sha256": cert_sha, "method": method,
            "detail": f"{summary['registered_model']} v{version} ({method}, certificate pass; {verdicts})"}


@flow(name="unlearn-deletion-requests", log_prints=True)
def deletion_requests(project_dir: str = ".") -> dict:
    """Ingest the inbox, unlearn every accepted request so far, certify, register, and update the ledger."""
    quiet_expected_errors()
    start = time.perf_counter()
    project = Path(project_dir).resolve()
    params = load_params(project / "params.yaml")
    logger = get_run_logger()
    with exclusive(project / Path(params.requests.ledger).parent / ".lock"):
        prepare_dataset(str(project))
        report = ingest_inbox(str(project))
        pending = report["pending"]
        logger.info("accepted %s, rejected %d, pending %s", report["accepted"], len(report["rejected"]), pending)
        result = {**report, "done": [], "failed": [], "model_version": None, "seconds": None}
        if not pending:
            result["seconds"] = time.perf_counter() - start
            return result
        if params.forget.kind != "requests":
            raise ValueError(f"{project / 'params.yaml'}: forget.kind is {params.forget.kind!r}; deletion requests "
                             "need forget.kind: requests")
        origin = choose_start(str(project))
        result["started_from"] = origin["from"] + (f" v{origin['version']}" if origin.get("version") else "")
        ref = choose_reference(str(project))
        result["reference"] = f"{'retrain' if ref['refresh'] else 'reuse'}: {ref['why']}"
        mark(str(project), pending, "processing", detail=f"forget set {report['forget_sha256'][:12]} "
                                                         f"({report['n_forget']} ids), from {result['started_from']}")
        try:
            _pipeline_flow()(project_dir=str(project))
            outcome = certified_outcome(str(project), report["forget_sha256"])
        except Exception as exc:  # the ledger must say why before the run reports its failure
            outcome = {"ok": False, "detail": f"pipeline failed: {str(exc)[-800:]}"}
        if ref["refresh"]:  # also after a failed verdict: the reference itself was retrained for this forget set
            record_reference(str(project), report["forget_sha256"])
        if outcome["ok"]:
            mark(str(project), pending, "done", detail=outcome["detail"], model_version=outcome["model_version"],
                 certificate_sha256=outcome["certificate_sha256"])
            result.update(done=pending, model_version=outcome["model_version"])
        else:
            mark(str(project), pending, "failed", detail=outcome["detail"])
            result["failed"] = pending
        result["seconds"] = time.perf_counter() - start
        logger.info("%s: %s (%.1fs)", "done" if outcome["ok"] else "failed", outcome["detail"], result["seconds"])
    if result["failed"]:
        raise RequestsFailed(f"request(s) {', '.join(pending)} failed: {outcome['detail']}")
    return result


if __name__ == "__main__":
    deletion_requests()
