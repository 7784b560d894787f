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
            "unlearn.reference_sha256": art["retrain"]["sha256"]}
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
                     "registry tag unlearn.forget_sha256", "registry tag unlearn.dataset_fingerprint"):
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
    assert len(lines) == 1 and "unlearn.certificate_sha256" in lines[0]
    lines = [c.line() for c in check_certificate(cert, root=root, registry=lambda sha: None) if not c.ok]
    assert len(lines) == 1 and "no registered model version" in lines[0]

    def down(sha):
        raise ConnectionError("store unreachable")

    lines = [c.line() for c in check_certificate(cert, root=root, registry=down) if not c.ok]
    assert len(lines) == 1 and "store unreachable" in lines[0]


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
    assert "does not exist" in capsys.readouterr().out and not (project["root"] / "absent.db").exists()
    assert time.perf_counter() - start < 30
