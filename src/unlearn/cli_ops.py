"""Deletion-request operations on the command line: ``serve``, ``ingest``, ``ledger``, ``lineage``, ``audit``.

``serve`` and ``ingest`` run the project's ``flows/deletion_requests.py`` (scheduled, or once); ``ledger`` shows
what happened to each request; ``lineage`` and ``audit`` read the MLflow registry tags and the ledger.
See docs/operations.md.

``lineage`` and ``audit`` fail closed: an unreachable or missing MLflow store, or a registered model that is not
there or has no versions, is an error naming the store URI or the model (exit 2), never an empty answer, and a
missing sqlite store is never created (:mod:`unlearn.tracking`).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import sys
from pathlib import Path

DEPLOYMENT = "deletion-requests"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the operations subcommands to the ``unlearn`` parser."""
    p = sub.add_parser("serve", help="serve the deletion-request flow as a Prefect deployment on its cron schedule")
    _project(p)
    p.add_argument("--name", default=DEPLOYMENT, help=f"deployment name (default {DEPLOYMENT})")
    p.add_argument("--cron", default=None, help="override params.yaml:requests.schedule")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("ingest", help="one deletion-request run now: inbox -> ledger -> pipeline -> registry")
    _project(p)
    p.add_argument("--only-inbox", action="store_true",
                   help="only validate the inbox into the ledger and accepted.json; run no pipeline")
    p.set_defaults(func=cmd_ingest)
    p = sub.add_parser("ledger", help="the state of every deletion request (or one request's history)")
    _project(p)
    p.add_argument("request_id", nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ledger)
    p = sub.add_parser("lineage", help="a registered version's chain back to the dataset: requests, methods, verdicts")
    _project(p)
    p.add_argument("model", nargs="?", default=None,
                   help="MODEL[@ALIAS|/VERSION] (default: the params' registered model @production)")
    p.set_defaults(func=cmd_lineage)
    p = sub.add_parser("audit", help="which registered versions were trained with a sample, which certify its removal")
    _project(p)
    p.add_argument("sample_id")
    p.add_argument("--model", default=None, help="registered model (default: from params.yaml)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)


def _project(p: argparse.ArgumentParser) -> None:
    p.add_argument("--project", default=".", help="project root holding params.yaml, dvc.yaml and flows/")


def _load(project: Path):
    from unlearn.config import load_params

    return load_params(project / "params.yaml")


def _flow(project: Path):
    path = project / "flows" / "deletion_requests.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the deletion-request flow is missing; run from the project root or pass "
                                "--project")
    spec = importlib.util.spec_from_file_location("unlearn_project_deletion_requests", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Prefect finds the flow's file through its module when it builds a deployment
    spec.loader.exec_module(module)
    return module.deletion_requests


def _defaults() -> None:
    for key, value in (("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
                       ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60"), ("DVC_NO_ANALYTICS", "1")):
        os.environ.setdefault(key, value)


def cmd_serve(ns: argparse.Namespace) -> int:
    """Serve the deployment (blocks). Needs a Prefect API (``PREFECT_API_URL``): a schedule on the ephemeral
    in-process API would never fire once this process stops."""
    from prefect.settings import get_current_settings

    project = Path(ns.project).resolve()
    params = _load(project)
    _defaults()
    if not get_current_settings().api.url:
        raise ValueError("no Prefect API: start one with `prefect server start` and set PREFECT_API_URL "
                         "(e.g. http://127.0.0.1:4200/api), or point it at a remote server")
    cron = ns.cron or params.requests.schedule
    os.chdir(project)  # the deployment's entrypoint is relative to the project
    sys.path.insert(0, str(project))  # flow runs are spawned processes: they re-import the flow by module name
    module = importlib.import_module("flows.deletion_requests")
    if Path(module.__file__).resolve() != project / "flows" / "deletion_requests.py":
        raise ValueError(f"imported flows.deletion_requests from {module.__file__}, not from {project}")
    flow = module.deletion_requests
    print(f"serving {flow.name}/{ns.name} on cron {cron!r} for {project}", flush=True)
    flow.serve(name=ns.name, cron=cron, parameters={"project_dir": str(project)}, limit=1,
               description="ingest data/requests/inbox, unlearn, certify, register, update the ledger",
               tags=["unlearn", "deletion-requests"])
    return 0


def cmd_ingest(ns: argparse.Namespace) -> int:
    """One run of the deletion-request flow now (or, with ``--only-inbox``, only the validation)."""
    project = Path(ns.project).resolve()
    params = _load(project)
    _defaults()
    _in_project(project)  # the flow reads the registry (production) before the pipeline chdirs into the project
    if ns.only_inbox:
        from unlearn.data.manifest import load_prepared
        from unlearn.requests.ingest import exclusive, ingest
        from unlearn.requests.ledger import Ledger

        if not (project / "data/prepared/dataset.json").is_file():
            raise FileNotFoundError(f"{project / 'data/prepared'}: not prepared yet; run `dvc repro prepare`")
        data = load_prepared(project / "data/prepared", verify=False)
        with exclusive(project / Path(params.requests.ledger).parent / ".lock"):
            res = ingest(project / params.requests.inbox, Ledger(project / params.requests.ledger),
                         project / "data/requests/accepted.json", ids=data.ids, splits=list(data.splits),
                         fingerprint=data.fingerprint)
        report = {"accepted": [r.request_id for r in res.accepted], "skipped": res.skipped,
                  "rejected": [{"key": x.key, "source": x.source, "reason": x.reason} for x in res.rejected],
                  "n_forget": res.record["n"], "forget_sha256": res.record["sha256"]}
    else:
        from unlearn.console import quiet_expected_errors
        from unlearn.tracking import check_store

        check_store()  # an unreachable tracking server fails here, before Prefect starts
        quiet_expected_errors()
        flow = _flow(project)
        state = flow(project_dir=str(project), return_state=True)
        if not state.is_completed():
            print(f"error: {state.message}", file=sys.stderr)
            return 1
        report = state.result()
    print(json.dumps(report, indent=2, default=str))
    return 0


def cmd_ledger(ns: argparse.Namespace) -> int:
    """Current state per request, or one request's full history."""
    project = Path(ns.project).resolve()
    ledger = _open_ledger(project, _load(project))
    if ledger is None:
        print("no ledger yet")
        return 0
    if ns.request_id:
        events = [e.__dict__ for e in ledger.events(ns.request_id)]
        if not events:
            raise ValueError(f"request {ns.request_id!r} is not in the ledger")
        print(json.dumps(events, indent=2) if ns.json else "\n".join(
            f"{e['at']}  {e['state']:<10} {_version_cert(e)}{e['detail'] or ''}" for e in events))
        return 0
    last = {}
    for e in ledger.events():
        last[e.request_id] = e
    if ns.json:
        print(json.dumps({rid: e.__dict__ for rid, e in last.items()}, indent=2))
    else:
        for rid, e in last.items():
            print(f"{rid:<24} {e.state:<10} {e.at}  {_version_cert(e.__dict__)}{(e.detail or '')[:100]}")
    return 0


def _version_cert(e: dict) -> str:
    if not e.get("model_version"):
        return ""
    return f"v{e['model_version']} cert {e['certificate_sha256'][:12]}  "


def _open_ledger(project: Path, params):
    from unlearn.requests.ledger import Ledger

    path = project / params.requests.ledger
    return Ledger(path) if path.is_file() else None


def _versions(name: str):
    """Every registered version of ``name`` as :class:`unlearn.requests.lineage.Version` records; an unreachable
    store, an unknown model or a model without versions raises (``TrackingError`` / ``ValueError``)."""
    from unlearn.requests.lineage import Version
    from unlearn.tracking import model_aliases, model_versions, tracking_uri

    aliases: dict[str, list[str]] = {}
    for alias, version in model_aliases(name).items():
        aliases.setdefault(version, []).append(alias)
    versions = [Version(str(v.version), tuple(sorted(aliases.get(str(v.version), []))), dict(v.tags or {}))
                for v in model_versions(name)]
    if not versions:
        raise ValueError(f"registered model {name!r} has no versions in MLflow store {tracking_uri()}")
    return versions


def _forget_lookup(project: Path, params):
    """``forget_sha256 -> {"sample_ids", "request_ids"}`` from the ledger, else the current forget.json."""
    from unlearn.io import read_json

    ledger = _open_ledger(project, params)
    current = project / "data/forget/forget.json"
    current = read_json(current) if current.is_file() else None

    def lookup(sha: str) -> dict | None:
        known = ledger.forget_set(sha) if ledger else None
        if known is None and current and current.get("sha256") == sha:
            rids = sorted({w.split(" ", 1)[1] for w in current["why"].values() if w.startswith("request ")})
            known = {"sample_ids": current["sample_ids"], "request_ids": rids}
        return known

    return lookup


def _in_project(project: Path):
    """MLflow's default store is ``<cwd>/mlflow.db``: read the project's unless MLFLOW_TRACKING_URI is set."""
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"


def cmd_lineage(ns: argparse.Namespace) -> int:
    """Print the chain from a version back to the dataset fingerprint."""
    from unlearn.requests.lineage import lineage_lines, parse_model_spec, resolve

    project = Path(ns.project).resolve()
    params = _load(project)
    _in_project(project)
    name, alias, version = parse_model_spec(ns.model or params.registered_model_name)
    versions = _versions(name)
    lookup = _forget_lookup(project, params)
    start = resolve(versions, alias, version)

    def request_ids(sha: str):
        known = lookup(sha)
        return None if known is None else known["request_ids"]

    print("\n".join(lineage_lines(name, versions, start, request_ids)))
    return 0


def cmd_audit(ns: argparse.Namespace) -> int:
    """Per registered version: trained with the sample? a passing certificate for its removal?"""
    from unlearn.io import read_json
    from unlearn.requests.lineage import audit_sample

    project = Path(ns.project).resolve()
    params = _load(project)
    _in_project(project)
    prepared = project / "data/prepared"
    splits = _splits(prepared / "manifest.csv")
    if ns.sample_id not in splits:
        raise ValueError(f"unknown sample id {ns.sample_id!r}: not in {prepared / 'manifest.csv'}")
    name = ns.model or params.registered_model_name
    lookup = _forget_lookup(project, params)

    def forget_ids(sha: str):
        known = lookup(sha) if sha else None
        return None if known is None else set(known["sample_ids"])

    rows = audit_sample(ns.sample_id, _versions(name), split=splits[ns.sample_id],
                        fingerprint=read_json(prepared / "dataset.json")["fingerprint"], forget_ids=forget_ids)
    if ns.json:
        print(json.dumps({"sample_id": ns.sample_id, "registered_model": name, "versions": rows}, indent=2))
        return 0
    print(f"{ns.sample_id} ({splits[ns.sample_id]} split) in {name}:")
    for r in rows:
        aliases = "".join(f" @{a}" for a in r["aliases"])
        print(f"  v{r['version']:<4}{aliases:<12} {r['role']:<18} {r['method']:<9} {r['verdict']:<13} {r['status']}")
    groups = {"contains it": [r for r in rows if r["trained_with"] and not r["certified_removal"]],
              "removed with a passing certificate": [r for r in rows if r["certified_removal"]],
              "never trained with it": [r for r in rows if r["trained_with"] is False],
              "cannot tell": [r for r in rows if r["trained_with"] is None]}
    print("; ".join(f"{k}: {', '.join('v' + r['version'] for r in g) or 'none'}" for k, g in groups.items() if g
                    or k != "cannot tell"))
    prod = [r for r in rows if "production" in r["aliases"]]
    if prod:
        print(f"production (v{prod[0]['version']}): {prod[0]['status']}")
    return 0


def _splits(manifest: Path) -> dict[str, str]:
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: missing; run the prepare stage")
    with open(manifest, encoding="utf-8") as fh:
        return {row["sample_id"]: row["split"] for row in csv.DictReader(fh)}
