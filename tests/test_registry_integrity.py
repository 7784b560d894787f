"""Registry integrity (issue 12, defects 1, 2, 4, 9): the audit fails closed, registered evidence is immutable, an
interrupted registration or a killed stage leaves nothing behind that a re-run does not repair, and an
unreachable store or a NaN model is one clear error. Every test uses a real sqlite MLflow store in tmp_path."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unlearn import cli
from unlearn.config import Params
from unlearn.data.manifest import save_prepared
from unlearn.io import sha256_file, write_json
from unlearn.requests.lineage import evaluations

MODEL = "digits-supervised"
UNREACHABLE = "http://127.0.0.1:1"


@pytest.fixture(scope="session")
def store_template(tmp_path_factory) -> Path:
    """An empty MLflow sqlite store, created once (its schema migrations take seconds) and copied per test."""
    import mlflow

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}", registry_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path, store_template, monkeypatch) -> str:
    """A fresh store at ``tmp_path/mlflow.db``, selected through MLFLOW_TRACKING_URI; returns its URI."""
    shutil.copy(store_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _client(uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture
def project(tmp_path) -> Path:
    """params.yaml and a prepared dataset: what `unlearn audit` and `unlearn lineage` read besides the registry."""
    (tmp_path / "params.yaml").write_text("prepare: {source: digits}\n")
    rng = np.random.default_rng(0)
    ids = [f"s-{i:03d}" for i in range(12)]
    save_prepared(tmp_path / "data/prepared", rng.integers(0, 256, (12, 8, 8, 1), dtype=np.uint8),
                  np.arange(12) % 3, ids, np.array(["train"] * 6 + ["reference"] * 3 + ["test"] * 3),
                  ["0", "1", "2"], "test")
    return tmp_path


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- defect 1: audit, lineage and certificate verify fail closed ----------------------------------------------

def test_audit_without_a_store_is_an_error_and_creates_nothing(project, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, err = _cli(["audit", "s-001", "--project", str(project)], capsys)
    assert code != 0
    assert "none" not in out and "mlflow.db" in err and len(err.strip().splitlines()) == 1
    assert not (project / "mlflow.db").exists()
    code, out, err = _cli(["lineage", "--project", str(project)], capsys)
    assert code != 0 and "mlflow.db" in err and not (project / "mlflow.db").exists()


def test_audit_and_lineage_of_an_unknown_model_are_errors(project, store, capsys):
    code, out, err = _cli(["audit", "s-001", "--project", str(project), "--model", "digits-supervisd"], capsys)
    assert code != 0 and "'digits-supervisd'" in err and store in err and "none" not in out
    code, out, err = _cli(["lineage", "digits-supervisd@production", "--project", str(project)], capsys)
    assert code != 0 and "'digits-supervisd'" in err


def test_audit_with_an_unreachable_store_fails_fast_naming_it(project, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)  # the defaults bound the retries
    start = time.perf_counter()
    code, out, err = _cli(["audit", "s-001", "--project", str(project)], capsys)
    assert code != 0 and UNREACHABLE in err and "unreachable" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err and "none" not in out
    assert time.perf_counter() - start < 30


def test_audit_still_answers_from_a_readable_registry(project, store, capsys):
    fp = json.loads((project / "data/prepared/dataset.json").read_text())["fingerprint"]
    client = _client(store)
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, source="models", tags={
        "unlearn.role": "original", "unlearn.method": "pretrain", "unlearn.verdict": "fail",
        "unlearn.dataset_fingerprint": fp, "unlearn.model_sha256": "0" * 64})
    code, out, err = _cli(["audit", "s-001", "--project", str(project)], capsys)
    assert code == 0 and "contains it: v1" in out, err


# --- defect 9: stages and an unreachable store ------------------------------------------------------------------

def test_a_stage_run_against_an_unreachable_store_is_one_error_naming_it(monkeypatch):
    from unlearn.tracking import TrackingError, stage_run

    monkeypatch.setenv("MLFLOW_TRACKING_URI", UNREACHABLE)
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    start = time.perf_counter()
    with pytest.raises(TrackingError, match="127.0.0.1:1") as info:
        with stage_run("verify", "unlearn-test"):
            pass
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)  # stages print it as one line
    assert time.perf_counter() - start < 30


# --- defect 2: registered evidence is immutable -----------------------------------------------------------------

def _register(tmp: Path, verdicts: dict[str, str], learners: dict, tag: str = "") -> dict[str, str]:
    """One verify registration of ``original`` and ``gp`` through ``register_all`` with fresh certificates."""
    from unlearn.stages.verify import register_all

    params = SimpleNamespace(registered_model_name=MODEL, experiment_name="unlearn-digits", verify=Params().verify,
                             unlearn=SimpleNamespace(methods=["gp"]))  # only what register_all reads
    certs_dir = tmp / "reports/certificates"
    reference = {"sha256": "r" * 64, "status": "fresh", "runs_old": 0, "excluded_forget_sha256": "f" * 64,
                 "excluded_request_ids": []}
    certs = {"gp": {"verdict": verdicts["gp"], "forget": {"request_ids": []}}}
    write_json(certs_dir / "gp.json", {**certs["gp"], "issued": f"{time.time_ns()}{tag}"})  # new bytes each run
    artifact = {m: {"path": f"{m}.pt", "sha256": sha256_file(tmp / f"{m}.pt")} for m in learners}
    ns = argparse.Namespace(certificates=str(certs_dir), data=str(tmp), base_info=None)
    sets = SimpleNamespace(x={"test": torch.zeros(2, 4)})
    evidence = {m: {"UA": 1.0} for m in learners}
    return register_all(params, learners, sets, artifact, certs, "d" * 64, {"sha256": "f" * 64},
                        {"original": "fail", **verdicts}, [], evidence, ns, reference)


@pytest.fixture
def models(tmp_path) -> dict:
    learners = {}
    for seed, m in enumerate(("original", "gp")):
        torch.manual_seed(seed)
        learners[m] = torch.nn.Linear(4, 3)
        (tmp_path / f"{m}.pt").write_bytes(json.dumps(learners[m].weight.tolist()).encode())  # stands for weights
    return learners


def test_a_reverification_never_rewrites_a_registered_versions_evidence(tmp_path, store, models):
    client = _client(store)
    first = _register(tmp_path, {"gp": "pass"}, models)
    gp = client.get_model_version(MODEL, first["gp"])
    promoted_cert = gp.tags["unlearn.certificate_sha256"]
    assert str(client.get_model_version_by_alias(MODEL, "production").version) == first["gp"]
    assert [v for k, v in gp.tags.items() if k.startswith("unlearn.promoted.")] == [promoted_cert]
    run_id = gp.run_id

    second = _register(tmp_path, {"gp": "fail"}, models, "b")  # the same weights, verified again (and failing)
    assert second == first  # no new version for the same weights
    again = client.get_model_version(MODEL, first["gp"])
    assert again.tags["unlearn.certificate_sha256"] == promoted_cert  # the promoted certificate is still its own
    assert again.tags["unlearn.verdict"] == "pass" and again.run_id == run_id
    (ident, ev), = evaluations(again.tags).items()  # the re-evaluation: separately addressable
    assert ev["verdict"] == "fail"
    assert ev["certificate_sha256"] == sha256_file(tmp_path / "reports/certificates/gp.json")
    assert ev["certificate_sha256"] != promoted_cert and ev["run_id"] != run_id
    assert {str(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")} == set(first.values())

    _register(tmp_path, {"gp": "pass"}, models, "c")  # a third evaluation in the same second gets its own key
    assert len(evaluations(client.get_model_version(MODEL, first["gp"]).tags)) == 2


def test_production_moves_only_to_a_version_whose_own_certificate_passed(tmp_path, store, models):
    client = _client(store)
    first = _register(tmp_path, {"gp": "fail"}, models)
    _register(tmp_path, {"gp": "pass"}, models, "b")  # passes now, but it was registered with a failing certificate
    assert client.get_registered_model(MODEL).aliases == {}
    assert client.get_model_version(MODEL, first["gp"]).tags["unlearn.verdict"] == "fail"


def test_version_tags_are_never_overwritten(store, models, tmp_path):
    from unlearn.tracking import set_version_tags

    first = _register(tmp_path, {"gp": "pass"}, models)
    with pytest.raises(ValueError, match="immutable"):
        set_version_tags(MODEL, first["gp"], {"unlearn.verdict": "fail"})
    set_version_tags(MODEL, first["gp"], {"unlearn.verdict": "pass", "unlearn.note": "x"})  # same value: no-op
    assert _client(store).get_model_version(MODEL, first["gp"]).tags["unlearn.verdict"] == "pass"


# --- defect 4: an interrupted registration, a killed stage --------------------------------------------------------

def test_a_version_is_created_with_its_tags_in_one_call(tmp_path, store, models, monkeypatch):
    """No separate tagging step after the version exists: a kill between the two cannot leave it untagged."""
    import mlflow

    add_tag = mlflow.MlflowClient.set_model_version_tag

    def refuse(self, name, version, key, value):  # only the promotion record is added later, as a new key
        if not key.startswith("unlearn.promoted."):
            raise AssertionError(f"v{version} was tagged {key} after it was created")
        return add_tag(self, name, version, key, value)

    monkeypatch.setattr(mlflow.MlflowClient, "set_model_version_tag", refuse)
    versions = _register(tmp_path, {"gp": "pass"}, models)
    for v in _client(store).search_model_versions(f"name = '{MODEL}'"):
        assert v.tags["unlearn.model_sha256"] and v.tags["unlearn.verdict"]
    assert len(versions) == 2


def test_an_untagged_version_left_by_a_killed_registration_is_removed_by_the_rerun(tmp_path, store, models):
    client = _client(store)
    exp = client.create_experiment("unlearn-digits")
    run = client.create_run(exp, tags={"unlearn.stage": "verify"})
    client.create_registered_model(MODEL)
    orphan = client.create_model_version(MODEL, source="models", run_id=run.info.run_id)  # killed before tagging
    other = client.create_model_version(MODEL, source="models")  # untagged, not ours: reported, kept
    versions = _register(tmp_path, {"gp": "pass"}, models)
    left = {str(v.version): v.tags for v in client.search_model_versions(f"name = '{MODEL}'")}
    assert str(orphan.version) not in left and str(other.version) in left
    assert set(versions.values()) <= set(left)
    shas = [t["unlearn.model_sha256"] for t in left.values() if "unlearn.model_sha256" in t]
    assert len(shas) == len(set(shas)) == 2  # each model registered once


KILLED_STAGE = """
import os, signal
from unlearn.tracking import stage_run
with stage_run("verify", "unlearn-test") as tracker:
    print(tracker.run_id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_run_left_running_by_a_killed_stage_is_marked_killed_by_the_next(tmp_path, store):
    from unlearn.tracking import stage_run

    proc = subprocess.run([sys.executable, "-c", KILLED_STAGE], capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL
    killed = proc.stdout.split()[0]
    client = _client(store)
    assert client.get_run(killed).info.status == "RUNNING"
    with stage_run("verify", "unlearn-test") as tracker:
        assert client.get_run(tracker.run_id).info.status == "RUNNING"  # the live run is left alone
    run = client.get_run(killed)
    assert run.info.status == "KILLED" and "ended without closing" in run.data.tags["unlearn.terminated_reason"]


# --- defect 9: a NaN model given to verify ------------------------------------------------------------------------

def test_verify_names_a_model_with_nan_weights(tmp_path):
    from unlearn.learners import build_learner
    from unlearn.models.checkpoint import save_checkpoint
    from unlearn.pretraining import learner_config
    from unlearn.stages.verify import load_finite

    params = Params.model_validate({"pretrain": {"backbone": {"width": 4}}})
    learner = build_learner(learner_config(params.pretrain, 8, 10))
    save_checkpoint(tmp_path / "original.pt", learner, learner.config())
    with torch.no_grad():
        next(learner.parameters())[0].fill_(float("nan"))
    save_checkpoint(tmp_path / "gp.pt", learner, learner.config())
    paths = {"original": tmp_path / "original.pt", "gp": tmp_path / "gp.pt"}
    with pytest.raises(ValueError, match=r"model 'gp' .*gp\.pt.* non-finite"):
        load_finite(paths, "cpu")
