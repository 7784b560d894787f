"""``unlearn certificate verify PATH``: recompute every hash a certificate names and check the MLflow registry.

Prints one line per check (``OK`` / ``MISMATCH`` with both values) and exits 1 on any mismatch, 0 otherwise.
The verdict is re-derived from the certificate's evidence; an unreachable registry is a mismatch line saying
``registry unreachable`` with the store URI (HTTP retries bounded: seconds, not minutes).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def registry_lookup(model_name: str):
    """A :data:`unlearn.certificate_check.RegistryLookup` over the MLflow registry (through ``unlearn.tracking``).

    Returns the tags (plus ``version``) of the newest version of ``model_name`` tagged
    ``unlearn.model_sha256=<sha>``. A registered model that is not in the store raises ``LookupError``; an
    unreachable or missing store raises ``TrackingError`` naming its URI (reported as "registry unreachable").
    A local sqlite store that does not exist is never created.
    """
    from unlearn.tracking import UnknownModel, model_versions

    def lookup(model_sha: str) -> dict[str, str] | None:
        try:
            versions = model_versions(model_name)
        except UnknownModel as exc:
            raise LookupError(str(exc)) from None
        matches = [v for v in versions if (v.tags or {}).get("unlearn.model_sha256") == model_sha]
        if not matches:
            return None
        newest = max(matches, key=lambda v: int(v.version))
        return {**newest.tags, "version": f"{model_name} v{newest.version}"}

    return lookup


def _model_name(ns: argparse.Namespace) -> str:
    if ns.registered_model:
        return ns.registered_model
    from unlearn.config import load_params

    params = Path(ns.root) / ns.params
    if not params.is_file():
        raise FileNotFoundError(f"{params}: not found; pass --registered-model NAME (or --no-registry)")
    return load_params(params).registered_model_name


def cmd_verify(ns: argparse.Namespace) -> int:
    from unlearn.certificate_check import check_certificate

    if ns.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = ns.tracking_uri
    registry = None if ns.no_registry else registry_lookup(_model_name(ns))
    checks = check_certificate(ns.path, root=ns.root, forget_path=ns.forget, data_path=ns.data, registry=registry)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.ok]
    print(f"{ns.path}: {len(failed)} mismatch(es)" if failed else f"{ns.path}: all {len(checks)} checks OK")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``certificate verify`` to the ``unlearn`` command's subparsers."""
    p = subparsers.add_parser("certificate", help="audit unlearning certificates")
    sub = p.add_subparsers(dest="certificate_command", required=True)
    v = sub.add_parser("verify", help="recompute every hash a certificate names; non-zero exit on any mismatch",
                       description=__doc__)
    v.add_argument("path", help="the certificate JSON (e.g. reports/certificates/gp.json)")
    v.add_argument("--root", default=".", help="project root; relative paths resolve under it (default: .)")
    v.add_argument("--forget", default="data/forget/forget.json", help="the forget stage's forget.json")
    v.add_argument("--data", default="data/prepared", help="the prepared dataset directory")
    v.add_argument("--registered-model", help="registered model name (default: from params.yaml)")
    v.add_argument("--params", default="params.yaml", help="params file naming the registered model")
    v.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or ./mlflow.db)")
    v.add_argument("--no-registry", action="store_true", help="check files only, skip the MLflow registry")
    v.set_defaults(func=cmd_verify)
