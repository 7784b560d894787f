"""Deletion requests end to end against a real Prefect server on 127.0.0.1: `unlearn serve` serves the
deployment, the test triggers it twice with two sequential requests (plus bad ones) and checks the ledger, the
`production` alias (moves only on a passing certificate) and `unlearn audit` before and after."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from pipeline_project import DELETION_PARAMS, make_project, merge

from unlearn.io import sha256_file

# pipeline_project.DELETION_PARAMS: verdicts hinge on forget accuracy against the retrain reference. Run 2 then
# sets thresholds no model can meet; it reuses run 1's retrain reference (requests.retrain_every: 2), so its
# certificates judge r-2's samples by the attack rule only.
TINY = merge(DELETION_PARAMS, {"requests": {"retrain_every": 2}})
MODEL, DEPLOYMENT = "digits-supervised", "unlearn-deletion-requests/deletion-requests"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what}: process exited {proc.returncode}\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what}: not ready after {timeout}s\n{log.read_text()[-3000:]}")


def _start(cmd: list[str], env: dict, cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this test started: the process and its children
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deletion")
    proj = tmp / "project"
    env = make_project(proj, TINY)
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env.update(PREFECT_HOME=str(tmp / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_LOGGING_LEVEL="INFO")
    env.pop("PREFECT_API_URL", None)
    server = _start([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                     "--port", str(port)], env, tmp, tmp / "server.log")
    serve = None
    try:
        subprocess.run(["dvc", "repro", "--single-item", "prepare"], cwd=proj, env=env, check=True,
                       capture_output=True)
        _wait(lambda: urllib.request.urlopen(f"{api}/health", timeout=2).status == 200, "prefect server", 90,
              server, tmp / "server.log")
        env["PREFECT_API_URL"] = api
        serve = _start([str(Path(sys.executable).parent / "unlearn"), "serve", "--project", str(proj)], env, proj,
                       tmp / "serve.log")
        _wait(lambda: urllib.request.urlopen(f"{api}/deployments/name/{DEPLOYMENT}", timeout=2).status == 200,
              "unlearn serve", 90, serve, tmp / "serve.log")
        yield proj, env, api, tmp
    finally:
        if serve is not None:
            _stop(serve)
        _stop(server)


def _train_ids(proj: Path, label: str) -> list[str]:
    with open(proj / "data/prepared/manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [r["sample_id"] for r in rows if r["split"] == "train" and r["label"] == label]


def _request(proj: Path, name: str, rid: str, ids: list[str], at: str) -> None:
    inbox = proj / "data/requests/inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / name).write_text(json.dumps({"request_id": rid, "sample_ids": ids, "requested_at": at}))


def _trigger(api: str, tmp: Path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        run = run_deployment(DEPLOYMENT, timeout=420, poll_interval=2, as_subflow=False)
    assert run.state.is_final(), f"flow run not finished: {run.state}\n{(tmp / 'serve.log').read_text()[-3000:]}"
    return run


def _ledger(proj: Path) -> dict[str, list]:
    from unlearn.requests.ledger import Ledger

    events: dict[str, list] = {}
    for e in Ledger(proj / "data/ledger/ledger.sqlite").events():
        events.setdefault(e.request_id, []).append(e)
    return events


def _production(proj: Path) -> str | None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{proj / 'mlflow.db'}")
    return {a: str(v) for a, v in mlflow.MlflowClient().get_registered_model(MODEL).aliases.items()}.get("production")


def _audit(proj: Path, sample: str, capsys, monkeypatch) -> dict[str, dict]:
    from unlearn.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{proj / 'mlflow.db'}")
    capsys.readouterr()
    assert main(["audit", sample, "--project", str(proj), "--json"]) == 0
    return {r["version"]: r for r in json.loads(capsys.readouterr().out)["versions"]}


def test_two_sequential_requests_through_the_served_deployment(served, capsys, monkeypatch):
    proj, env, api, tmp = served
    first, second = _train_ids(proj, "3"), _train_ids(proj, "5")
    _request(proj, "r-1.json", "r-1", first, "2025-11-25T10:00:00Z")
    _request(proj, "r-unknown.json", "r-unknown", [second[0], "digits-99999"], "2025-11-25T10:01:00Z")
    (proj / "data/requests/inbox/broken.json").write_text('{"request_id": "r-broken", ')

    start = time.perf_counter()
    run = _trigger(api, tmp)
    seconds_first = time.perf_counter() - start
    assert run.state.is_completed(), (tmp / "serve.log").read_text()[-3000:]
    ledger = _ledger(proj)
    assert [e.state for e in ledger["r-1"]] == ["received", "processing", "done"]
    assert ledger["r-unknown"][-1].state == "rejected" and "digits-99999" in ledger["r-unknown"][-1].detail
    broken = [k for k in ledger if k.startswith("file:broken.json#")]
    assert len(broken) == 1 and "malformed JSON" in ledger[broken[0]][-1].detail
    done = ledger["r-1"][-1]
    production = _production(proj)
    assert done.model_version == production
    summary = json.loads((proj / "reports/summary.json").read_text())
    method = next(r["model"] for r in summary["rows"] if r["version"] == production and r["model"] != "original")
    assert done.certificate_sha256 == sha256_file(proj / f"reports/certificates/{method}.json")
    cert = json.loads((proj / f"reports/certificates/{method}.json").read_text())
    assert cert["verdict"] == "pass" and cert["forget"]["request_ids"] == ["r-1"]
    assert cert["reference"]["status"] == "fresh" and cert["reference"]["source"] == "retrained"
    reference = json.loads((proj / "models/references/current.json").read_text())  # stored for the next run
    assert reference["runs"] == 1 and reference["excluded"]["sha256"] == cert["forget"]["sha256"]
    assert sha256_file(proj / f"models/references/{reference['model_sha256']}.pt") == reference["model_sha256"]

    audit = _audit(proj, first[0], capsys, monkeypatch)  # a sample of r-1: certified gone from production
    original = next(v for v, r in audit.items() if r["role"] == "original")
    assert audit[original]["trained_with"] is True and audit[original]["certified_removal"] is False
    assert audit[production]["trained_with"] is False or audit[production]["certified_removal"] is True
    audit = _audit(proj, second[0], capsys, monkeypatch)  # a sample of the coming r-2: still in production
    assert audit[production]["trained_with"] is True and audit[production]["certified_removal"] is False

    _request(proj, "r-2.json", "r-2", second, "2025-11-25T11:00:00Z")
    _request(proj, "r-again.json", "r-again", first[:2], "2025-11-25T11:01:00Z")  # already forgotten by r-1
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["verify"]["thresholds"].update(utility_drop=0.0, accuracy_tolerance=0.0, mia_efficacy_tolerance=0.0)
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = _trigger(api, tmp)
    assert run.state.is_failed()  # the run reports that a request failed
    ledger = _ledger(proj)
    assert [e.state for e in ledger["r-2"]] == ["received", "processing", "failed"]
    assert "no certificate passed" in ledger["r-2"][-1].detail
    assert "already forgotten by request(s) r-1" in ledger["r-again"][-1].detail
    assert [e.state for e in ledger["r-1"]] == ["received", "processing", "done"]  # untouched
    assert _production(proj) == production  # production moved only on a pass
    summary = json.loads((proj / "reports/summary.json").read_text())
    assert all(r["verdict"] != "pass" for r in summary["rows"])
    new_versions = {r["version"] for r in summary["rows"] if r["model"] != "original"}
    cert = json.loads((proj / "reports/certificates/finetune.json").read_text())  # run 2 reused the reference
    assert (cert["reference"]["status"], cert["reference"]["runs_old"]) == ("stale", 1)
    assert cert["reference"]["sha256"] == reference["model_sha256"] == sha256_file(proj / "models/unlearned/retrain.pt")
    assert cert["reference"]["newer_request_ids"] == ["r-2"]
    assert cert["reference"]["judged"] == {"attack_rule": len(first) + len(second), "reference_rules": len(first),
                                           "attack_rule_only": len(second)}

    # sequential: run 2 unlearned r-1 + r-2 starting from the production version of run 1
    assert json.loads((proj / "reports/base.json").read_text())["version"] == production
    assert ledger["r-2"][1].detail.endswith(f"from production v{production}")
    finetune = next(r["version"] for r in summary["rows"] if r["model"] == "finetune")
    capsys.readouterr()
    from unlearn.cli import main

    assert main(["lineage", f"{MODEL}/{finetune}", "--project", str(proj)]) == 0
    lineage = capsys.readouterr().out
    assert f"parent {MODEL} v{production} @production" in lineage and "requests: r-1, r-2" in lineage
    assert "negative control: caught" in lineage and "dataset fingerprint" in lineage

    audit = _audit(proj, second[0], capsys, monkeypatch)  # r-2 failed: still in production, not certified
    assert audit[production]["trained_with"] is True and audit[production]["certified_removal"] is False
    for v in new_versions:
        assert audit[v]["certified_removal"] is False
    assert not any(r["certified_removal"] for r in audit.values())
    print(f"first scheduled run (pretrain + unlearn + verify): {seconds_first:.0f}s")
