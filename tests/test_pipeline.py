"""End to end: the five stages through `dvc repro` in a temporary git repo, then the Prefect flow; checks what
DVC re-runs, what MLflow holds (runs, registered versions and their lineage tags) and the certificates."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from pipeline_project import make_project
from pipeline_project import run as _run

TINY = {
    "prepare": {"splits": {"train": 300, "reference": 150, "test": 300}},
    "pretrain": {"backbone": {"name": "small_cnn", "width": 8}, "epochs": 40, "batch_size": 64, "lr": 0.003},
    "forget": {"kind": "class", "classes": [3]},
    "unlearn": {"methods": ["retrain", "finetune", "gp"], "finetune": {"epochs": 2}, "gp": {"epochs": 2}},
    "verify": {"bootstrap": 50},
}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    proj = tmp_path_factory.mktemp("project")
    env = make_project(proj, TINY)
    _run(["dvc", "repro"], proj, env)
    return proj, env


def _client(proj: Path):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{proj / 'mlflow.db'}")
    return mlflow.MlflowClient()


def test_repro_writes_certificates_and_table(project):
    proj, env = project
    rows = json.loads((proj / "reports/summary.json").read_text())["rows"]
    by_model = {r["model"]: r for r in rows}
    assert set(by_model) == {"original", "retrain", "finetune", "gp"}
    assert by_model["original"]["verdict"] == "caught (control)"
    assert by_model["retrain"]["verdict"] == "pass"
    assert by_model["retrain"]["UA"] > 90 > by_model["original"]["UA"]
    forget = json.loads((proj / "data/forget/forget.json").read_text())
    for method in ("retrain", "finetune", "gp"):
        text = (proj / f"reports/certificates/{method}.json").read_text()
        cert = json.loads(text)
        assert cert["forget"]["sha256"] == forget["sha256"]
        assert cert["verdict"] in ("pass", "fail", "inconclusive")
        assert not any(sid in text for sid in forget["sample_ids"][:20]), "sample ids leaked into a certificate"
    assert "original" in _run(["dvc", "metrics", "show"], proj, env)


def test_mlflow_holds_runs_versions_and_lineage_tags(project):
    proj, _ = project
    client = _client(proj)
    exp = client.get_experiment_by_name("unlearn-digits")
    stages = {r.data.tags.get("unlearn.stage") for r in client.search_runs([exp.experiment_id])}
    assert {"prepare", "pretrain", "forget", "unlearn", "verify"} <= stages
    versions = {v.tags["unlearn.method"]: v for v in client.search_model_versions("name = 'digits-supervised'")}
    assert set(versions) == {"pretrain", "retrain", "finetune", "gp"}
    fingerprint = json.loads((proj / "data/prepared/dataset.json").read_text())["fingerprint"]
    for method, v in versions.items():
        assert v.tags["unlearn.dataset_fingerprint"] == fingerprint
        assert v.tags["unlearn.verdict"] and v.tags["unlearn.git_commit"]
        if method != "pretrain":
            assert v.tags["unlearn.parent_version"] == str(versions["pretrain"].version)
            assert len(v.tags["unlearn.forget_sha256"]) == 64
    prod = client.get_model_version_by_alias("digits-supervised", "production")
    assert prod.tags["unlearn.verdict"] == "pass"


def test_dvc_reruns_only_what_changed(project):
    proj, env = project
    assert "up to date" in _run(["dvc", "status"], proj, env).lower()
    params = yaml.safe_load((proj / "params.yaml").read_text())
    original = (proj / "params.yaml").read_text()
    params["unlearn"]["gp"]["mu"] = 0.2
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (proj / "data/requests/r-1.json").write_text(json.dumps({"request_id": "r-1", "sample_ids": ["digits-00001"]}))
    try:
        stale = _run(["dvc", "status"], proj, env)
        assert "unlearn@gp" in stale and "forget" in stale
        assert "pretrain" not in stale and "prepare" not in stale and "unlearn@retrain" not in stale
    finally:
        (proj / "params.yaml").write_text(original)
        (proj / "data/requests/r-1.json").unlink()


def test_prefect_flow_runs_stages_under_one_parent_run(project):
    proj, env = project
    from prefect.testing.utilities import prefect_test_harness

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["unlearn"]["finetune"]["epochs"] = 3  # makes unlearn@finetune and verify stale
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    old = dict(os.environ)
    os.environ.update({k: env[k] for k in ("PATH", "MLFLOW_TRACKING_URI")})
    try:
        sys.path.insert(0, str(proj))
        from flows.pipeline import pipeline

        with prefect_test_harness(server_startup_timeout=60):
            rows = pipeline(project_dir=str(proj))
    finally:
        os.environ.clear()
        os.environ.update(old)
        sys.path.remove(str(proj))
    assert {r["model"] for r in rows} == {"original", "retrain", "finetune", "gp"}
    client = _client(proj)
    exp = client.get_experiment_by_name("unlearn-digits")
    parents = client.search_runs([exp.experiment_id], "tags.`unlearn.stage` = 'pipeline'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")
    assert {c.data.tags["unlearn.stage"] for c in children} == {"unlearn", "verify"}
    finetunes = client.search_model_versions("name = 'digits-supervised' and tag.`unlearn.method` = 'finetune'")
    assert len(finetunes) == 2  # a new model is a new version; unchanged models are not registered twice


def test_a_pinned_reference_is_copied_not_retrained_and_certificates_say_it_is_stale(project):
    """What the deletion-request flow does between refreshes (requests.retrain_every), through plain `dvc repro`:
    the pin makes unlearn@retrain copy the stored reference and verify judge the newer part by attacks only.
    (The pin claims the reference excluded only part of the forget set; here it excluded all of it, which does
    not matter for the plumbing under test.)"""
    from unlearn.io import sha256_file, sha256_ids, write_json

    proj, env = project
    retrain = proj / "models/unlearned/retrain.pt"
    sha = sha256_file(retrain)
    (proj / "models/references").mkdir(parents=True, exist_ok=True)
    (proj / f"models/references/{sha}.pt").write_bytes(retrain.read_bytes())
    forget = json.loads((proj / "data/forget/forget.json").read_text())
    excluded = forget["sample_ids"][: forget["n"] // 2]
    pin = proj / "data/requests/reference.json"
    write_json(pin, {"model_sha256": sha, "dataset_fingerprint": forget["dataset_fingerprint"], "runs_old": 2,
                     "excluded": {"sha256": sha256_ids(excluded), "n": len(excluded), "request_ids": [],
                                  "sample_ids": excluded}})
    try:
        out = _run(["dvc", "repro"], proj, env)
        assert "reusing the pinned reference" in out and "Running stage 'unlearn@retrain'" in out
        assert sha256_file(retrain) == sha
        assert json.loads((proj / "reports/unlearn/retrain.json").read_text())["reference"]["source"] == "pinned"
        certs = {m: json.loads((proj / f"reports/certificates/{m}.json").read_text()) for m in ("gp", "retrain")}
        ref = certs["gp"]["reference"]
        assert (ref["status"], ref["runs_old"], ref["sha256"]) == ("stale", 2, sha)
        assert ref["judged"] == {"attack_rule": forget["n"], "reference_rules": len(excluded),
                                 "attack_rule_only": forget["n"] - len(excluded)}
        assert certs["gp"]["parts"]["newer"]["n"] == forget["n"] - len(excluded)
        assert certs["retrain"]["verdict"] == "fail" and "stale retrain reference" in certs["retrain"]["reasons"][0]
        assert "STALE" in (proj / "reports/summary.txt").read_text()
    finally:
        pin.unlink()
    out = _run(["dvc", "repro"], proj, env)  # no pin: the engineer's `dvc repro` retrains the reference again
    assert "reusing the pinned reference" not in out
    assert json.loads((proj / "reports/unlearn/retrain.json").read_text())["reference"]["source"] == "retrained"
    cert = json.loads((proj / "reports/certificates/gp.json").read_text())
    assert cert["reference"]["status"] == "fresh" and cert["parts"] is None
