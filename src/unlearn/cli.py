"""The ``unlearn`` command line: run the pipeline, list components, report results."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path


def cmd_list(ns: argparse.Namespace) -> int:
    """Print ``KIND NAME`` for every pretraining method, unlearning method and attack."""
    from unlearn.learners import LEARNERS, _import_optional_learners
    from unlearn.methods import METHODS
    from unlearn.verification import ATTACK_NAMES  # the attacks verify runs: one list

    _import_optional_learners()
    lines = [f"pretrain {n}" for n in sorted(LEARNERS)] + [f"unlearn {n}" for n in sorted(METHODS)]
    lines += [f"attack {n}" for n in ATTACK_NAMES]
    print("\n".join(lines))
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    """Print the latest run's method table (``--json``: the rows as a JSON list)."""
    from unlearn.io import read_json
    from unlearn.report import render_table

    path = Path(ns.project) / ns.summary
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results yet; run `unlearn run --project {ns.project}` (or `dvc repro`) "
                                "first")
    summary = read_json(path)
    if ns.json:
        print(json.dumps(summary["rows"], indent=2))
    else:
        print(render_table(summary["rows"]))
    return 0


def _load_flow(project: Path):
    path = project / "flows" / "pipeline.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the pipeline flow is missing; run from the project root or pass --project")
    spec = importlib.util.spec_from_file_location("unlearn_project_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pipeline


def cmd_run(ns: argparse.Namespace) -> int:
    """Validate params.yaml, take the project lock (a second run exits at once), then run the Prefect pipeline
    flow (each stage through DVC). A failed stage ends with one ``error:`` line naming it and its error."""
    from unlearn.config import load_params
    from unlearn.console import quiet_expected_errors
    from unlearn.lock import project_lock
    from unlearn.report import render_table
    from unlearn.tracking import check_store

    project = Path(ns.project).resolve()
    load_params(project / "params.yaml")  # fail fast, before anything runs
    for key, value in (("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
                       ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60"), ("DVC_NO_ANALYTICS", "1")):
        os.environ.setdefault(key, value)
    check_store()  # an unreachable tracking server fails here, in seconds, before Prefect starts
    quiet_expected_errors()
    with project_lock(project):
        flow = _load_flow(project)
        try:
            rows = flow(project_dir=str(project))
        except Exception as exc:  # a failed stage (flows/pipeline.py StageFailed): one line, not a traceback
            summary = getattr(exc, "summary", None)
            if not callable(summary):
                raise
            print(f"error: {summary()}", file=sys.stderr)
            return 1
    print(render_table(rows))
    return 0


def cmd_check(ns: argparse.Namespace) -> int:
    from unlearn.config import load_params

    load_params(ns.params)
    print(f"{ns.params}: ok")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unlearn")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unlearn", description=__doc__)
    parser.add_argument("--version", action="version", version=f"unlearn {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the pipeline flow (prepare, pretrain, forget, unlearn, verify)")
    p.add_argument("--project", default=".", help="project root holding params.yaml, dvc.yaml and flows/")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("list", help="available pretraining methods, unlearning methods and attacks")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("report", help="the latest run's results")
    p.add_argument("--project", default=".", help="project root holding params.yaml, dvc.yaml and flows/")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--summary", default="reports/summary.json",
                   help="the summary file, relative to the project (default reports/summary.json)")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("check-params", help="validate params.yaml against the schema")
    p.add_argument("params", nargs="?", default="params.yaml", help="the params file (default params.yaml)")
    p.set_defaults(func=cmd_check)
    importlib.import_module("unlearn.cli_ops").register(sub)  # serve, ingest, ledger, lineage, audit
    importlib.import_module("unlearn.cli_certificate").register(sub)  # certificate verify
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. Expected errors end with one ``error: ...`` line, no traceback: bad input, a missing file
    or another ``OSError`` (the path named) exit 2; a project locked by another run exits 1."""
    ns = build_parser().parse_args(argv)
    from unlearn.config import ParamsError
    from unlearn.lock import ProjectLocked
    from unlearn.stages.common import describe_error

    try:
        return ns.func(ns)
    except ProjectLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ParamsError, ValueError, OSError) as exc:
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


def console_main() -> None:
    sys.exit(main())
