"""`unlearn certificate verify`: every hash a certificate names is recomputed; any tampering fails."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearn import cli, cli_certificate
from unlearn.certificate import build_certificate
from unlearn.certificate_check import check_certificate
from unlearn.config import Thresholds
from unlearn.data.manifest import save_prepared
from unlearn.forget import forget_record
from unlearn.io import sha256_file, write_json
from unlearn.models.checkpoint import save_checkpoint
from unlearn.verification import ModelOutputs, score_outputs

MODEL_NAME = "digits-supervised"


@pytest.fixture(scope="module")
def evidence() -> dict:
    rng = np.random.default_rng(0)
    sizes = {"retain": 60, "forget": 4, "test": 40, "nonmember": 40}  # forget: the 4 ids of forget.json below
    y = {k: np.arange(n) % 3 for k, n in sizes.items()}
    lg = {k: rng.normal(size=(n, 3)) + 3 * np.eye(3)[y[k]] for k, n in sizes.items()}
    return score_outputs(ModelOutputs(lg, None), y, n_bootstrap=20)


@pytest.fixture
def project(tmp_path: Path, evidence: dict) -> dict:
    """A pipeline's outputs in miniature: prepared data, forget.json, three checkpoints, one certificate."""
    rng = np.random.default_rng(1)
    n = 30
    ids = [f"s-{i:03d}" for i in range(n)]
    splits = np.array(["train"] * 18 + ["reference"] * 6 + ["test"] * 6)
    fp = save_prepared(tmp_path / "data/prepared", rng.integers(0, 256, (n, 8, 8, 1), dtype=np.uint8),
                       np.arange(n) % 3, ids, splits, ["0", "1", "2"], "test")
    record = forget_record({sid: "random" for sid in ids[:4]}, "random", fp)
    write_json(tmp_path / "data/forget/forget.json", record)
    art = {}
    for name, path in (("original", "models/original.pt"), ("retrain", "models/unlearned/retrain.pt"),
                       ("gp", "models/unlearned/gp.pt")):
        torch.manual_seed(len(art))
        art[name] = {"path": path, "sha256": save_checkpoint(tmp_path / path, torch.nn.Linear(4, 3), {"m": name})}
    cert = build_certificate(method="gp", method_params={"epochs": 5}, model=art["gp"], parent=art["original"],
                             retrain_ref=art["retrain"], dataset_fingerprint=fp,
                             forget={"sha256": record["sha256"], "n": record["n"], "kind": "random",
                                     "request_ids": []}, thresholds=Thresholds(),
                             metrics={"unlearned": evidence, "original": evidence, "retrain": evidence},
                             seconds=1.0, git_commit=None)
    cert_path = write_json(tmp_path / "reports/certificates/gp.json", cert)
    tags = {"unlearn.model_sha256": art["gp"]["sha256"], "unlearn.certificate_sha256": sha256_file(cert_path),
            "unlearn.forget_sha256": record["sha256"], "unlearn.dataset_fingerprint": fp,
            "unlearn.reference_sha256": art["retrain"]["sha256"], "unlearn.verdict": cert["verdict"]}
    return {"root": tmp_path, "cert": cert_path, "art": art, "tags": tags}


def stub_registry(tags: dict):
    return lambda sha: {**tags, "version": "1"} if sha == tags["unlearn.model_sha256"] else None


def verify_cli(project: dict, monkeypatch, capsys, *extra: str) -> tuple[int, str]:
    monkeypatch.setattr(cli_certificate, "registry_lookup", lambda name: stub_registry(project["tags"]))
    code = cli.main(["certificate", "verify", str(project["cert"]), "--root", str(project["root"]),
                     "--registered-model", MODEL_NAME, *extra])
    return code, capsys.readouterr().out


def flip_byte(path: Path, offset: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_intact_project_passes_every_check(project):
    checks = check_certificate(project["cert"], root=project["root"], registry=stub_registry(project["tags"]))
    assert all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    names = [c.name for c in checks]
    for expected in ("model weights", "parent weights", "retrain-reference weights", "forget-id list sha256",
                     "dataset fingerprint", "registry version", "registry tag unlearn.certificate_sha256",
                     "registry tag unlearn.forget_sha256", "registry tag unlearn.dataset_fingerprint",
                     "registry tag unlearn.verdict", "verdict re-derived"):
        assert expected in names


def test_cli_exits_zero_when_intact(project, monkeypatch, capsys):
    code, out = verify_cli(project, monkeypatch, capsys)
    assert code == 0 and "MISMATCH" not in out and out.count("OK ") >= 9


@pytest.mark.parametrize("which, check", [("gp", "model weights"), ("original", "parent weights"),
                                          ("retrain", "retrain-reference weights")])
def test_one_flipped_byte_in_a_model_file_fails(project, monkeypatch, capsys, which, check):
    flip_byte(project["root"] / project["art"][which]["path"])
    code, out = verify_cli(project, monkeypatch, capsys)
    assert code != 0
    bad = [line for line in out.splitlines() if line.startswith("MISMATCH")]
    assert len(bad) == 1 and check in bad[0] and project["art"][which]["sha256"] in bad[0]


def test_tampered_forget_list_fails(project, monkeypatch, capsys):
    path = project["root"] / "data/forget/forget.json"
    record = json.loads(path.read_text())
    record["sample_ids"] = record["sample_ids"][1:]  # one forgotten sample quietly dropped
    path.write_text(json.dumps(record))
    code, out = verify_cli(project, monkeypatch, capsys)
    assert code != 0 and "MISMATCH  forget-id list sha256" in out


def test_changed_pixels_fail_the_dataset_fingerprint(project, monkeypatch, capsys):
    path = project["root"] / "data/prepared/images.npy"
    flip_byte(path, offset=-1)
    code, out = verify_cli(project, monkeypatch, capsys)
    assert code != 0 and "MISMATCH  dataset fingerprint" in out and "pixels changed" in out


def test_missing_files_are_mismatches_not_tracebacks(project, monkeypatch, capsys):
    (project["root"] / project["art"]["gp"]["path"]).unlink()
    (project["root"] / "data/forget/forget.json").unlink()
    code, out = verify_cli(project, monkeypatch, capsys)
    assert code == 1 and "Traceback" not in out
    assert "file not found" in out and out.count("MISMATCH") == 2  # the weights and the forget list
    code, out = verify_cli({**project, "cert": project["root"] / "nope.json"}, monkeypatch, capsys)
    assert code == 1 and "MISMATCH  certificate" in out and "file not found" in out


def test_registry_mismatches(project):
    root, cert = project["root"], project["cert"]
    edited = json.loads(cert.read_text())
    edited["verdict"] = "pass" if edited["verdict"] != "pass" else "fail"  # the certificate edited after issue
    cert.write_text(json.dumps(edited))
    lines = [c.line() for c in check_certificate(cert, root=root, registry=stub_registry(project["tags"])) if not c.ok]
    assert [line.split(":")[0] for line in lines] == [
        "MISMATCH  verdict re-derived", "MISMATCH  registry tag unlearn.certificate_sha256",
        "MISMATCH  registry tag unlearn.verdict"]
    lines = [c.line() for c in check_certificate(cert, root=root, registry=lambda sha: None) if not c.ok]
    assert len(lines) == 2 and "no registered model version" in lines[1]

    def down(sha):
        raise ConnectionError("store unreachable")

    lines = [c.line() for c in check_certificate(cert, root=root, registry=down) if not c.ok]
    assert len(lines) == 2 and "registry unreachable: store unreachable" in lines[1]


def test_a_flipped_verdict_is_caught_from_the_evidence_even_with_matching_tags(project, monkeypatch, capsys):
    """Issue 12, defect 8: the verdict is re-derived from the recorded metrics and thresholds, so an edit that also
    re-points the registry tags (or a check without the registry) is still caught."""
    cert = project["cert"]
    edited = json.loads(cert.read_text())
    recorded = edited["verdict"]
    edited["verdict"] = "pass" if recorded != "pass" else "fail"
    cert.write_text(json.dumps(edited))
    project["tags"].update({"unlearn.certificate_sha256": sha256_file(cert), "unlearn.verdict": edited["verdict"]})
    code, out = verify_cli(project, monkeypatch, capsys)
    bad = [line for line in out.splitlines() if line.startswith("MISMATCH")]
    assert code == 1 and len(bad) == 1
    assert bad[0].startswith(f"MISMATCH  verdict re-derived: certificate says {edited['verdict']}, found {recorded}")
    code, out = verify_cli(project, monkeypatch, capsys, "--no-registry")
    assert code == 1 and "MISMATCH  verdict re-derived" in out


def test_edited_evidence_no_longer_gives_the_recorded_verdict(project):
    cert = project["cert"]
    edited = json.loads(cert.read_text())
    for m in edited["metrics"]["original"]["attacks"].values():  # the negative control: the original now leaks
        m["auc"], m["auc_ci"] = 0.99, [0.98, 1.0]
    cert.write_text(json.dumps(edited))
    checks = {c.name: c for c in check_certificate(cert, root=project["root"], registry=None)}
    assert edited["verdict"] == "inconclusive"  # recorded: the original could not be told from non-members
    assert not checks["verdict re-derived"].ok and "found pass" in checks["verdict re-derived"].line()
    edited["thresholds"]["auc_tolerance"] = "wide"  # evidence that cannot be read is a mismatch, not a traceback
    cert.write_text(json.dumps(edited))
    checks = {c.name: c for c in check_certificate(cert, root=project["root"], registry=None)}
    assert not checks["certificate"].ok or not checks["verdict re-derived"].ok


def test_a_reevaluation_certificate_matches_the_versions_evaluation_tags(project):
    """Issue 12, defect 2: a re-verification's certificate is found under ``unlearn.eval.<id>.*``; the version's
    own certificate tag (the one it was promoted with) is not rewritten and still matches its own certificate."""
    tags = project["tags"]
    current = tags["unlearn.certificate_sha256"]
    registered = {**tags, "unlearn.certificate_sha256": "a" * 64, "unlearn.verdict": "pass",
                  "unlearn.eval.20261202T101010Z.certificate_sha256": current,
                  "unlearn.eval.20261202T101010Z.verdict": tags["unlearn.verdict"],
                  "unlearn.eval.20261202T101010Z.forget_sha256": tags["unlearn.forget_sha256"],
                  "unlearn.eval.20261202T101010Z.reference_sha256": tags["unlearn.reference_sha256"]}
    checks = check_certificate(project["cert"], root=project["root"], registry=stub_registry(registered))
    assert all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    assert any("evaluation unlearn.eval.20261202T101010Z" in c.line() for c in checks)
    registered["unlearn.eval.20261202T101010Z.certificate_sha256"] = "b" * 64  # no evaluation with this certificate
    bad = [c.line() for c in check_certificate(project["cert"], root=project["root"],
                                               registry=stub_registry(registered)) if not c.ok]
    assert any("registry tag unlearn.certificate_sha256" in line for line in bad)


@pytest.mark.slow  # creating the MLflow sqlite schema (alembic migrations) alone takes ~5 s
def test_against_a_real_sqlite_mlflow_registry(project, monkeypatch, capsys):
    import mlflow

    start = time.perf_counter()
    uri = f"sqlite:///{project['root'] / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(MODEL_NAME, source=str(project["root"] / "models"), tags=project["tags"])
    argv = ["certificate", "verify", str(project["cert"]), "--root", str(project["root"]),
            "--registered-model", MODEL_NAME, "--tracking-uri", uri]
    assert cli.main(argv) == 0, capsys.readouterr().out
    assert f"{MODEL_NAME} v{version.version}" in capsys.readouterr().out
    client.set_model_version_tag(MODEL_NAME, version.version, "unlearn.forget_sha256", "0" * 64)
    assert cli.main(argv) == 1
    assert "MISMATCH  registry tag unlearn.forget_sha256" in capsys.readouterr().out
    missing = f"sqlite:///{project['root'] / 'absent.db'}"
    assert cli.main([*argv[:-1], missing]) == 1
    out = capsys.readouterr().out
    assert "registry unreachable" in out and missing in out and not (project["root"] / "absent.db").exists()
    assert cli.main([*argv[:-4], "--registered-model", "digits-supervisd", "--tracking-uri", uri]) == 1
    assert "'digits-supervisd' is not in MLflow store" in capsys.readouterr().out
    assert time.perf_counter() - start < 30


def test_an_unreachable_registry_is_named_not_read_as_no_version(project, monkeypatch, capsys):
    """Issue 12, defects 1 and 9: a tracking server that refuses connections is "registry unreachable" with its
    URI, within seconds (bounded retries), never "no registered model version"."""
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    start = time.perf_counter()
    code = cli.main(["certificate", "verify", str(project["cert"]), "--root", str(project["root"]),
                     "--registered-model", MODEL_NAME, "--tracking-uri", "http://127.0.0.1:1"])
    out = capsys.readouterr().out
    assert code == 1 and "MISMATCH  registry version: registry unreachable" in out and "127.0.0.1:1" in out
    assert "no registered model version" not in out and "Traceback" not in out
    assert time.perf_counter() - start < 30
