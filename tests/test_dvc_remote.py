"""A DVC remote round trip: run the tiny pipeline, `dvc push` its outputs to a local-folder remote (any other
remote, S3/GCS/Azure/SSH, is the same commands with another URL: README "From one machine to a cluster"), clone
the git repository elsewhere, `dvc pull`: the clone has the same bytes and `dvc repro` re-runs no training stage.

It re-runs `verify`: its outputs (reports/certificates, plots, summary.json/.txt) are `cache: false` in
dvc.yaml and git-ignored, so neither the remote nor git carries them; a clone rebuilds them from the pulled
models (or reads the certificates from MLflow). The test pins that down, so a change to it is seen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pipeline_project import make_project, merge
from pipeline_project import run as _run
from test_pipeline import TINY

from unlearn.io import sha256_file

pytestmark = pytest.mark.slow
# the tiny pipeline, shorter still: what is under test is where the outputs travel, not what they hold
SMALL = merge(TINY, {"pretrain": {"epochs": 3}, "unlearn": {"methods": ["retrain", "finetune"]},
                     "verify": {"bootstrap": 10, "shadow_models": 0, "require_power": False}})
OUTPUTS = ("data/prepared/dataset.json", "data/prepared/manifest.csv", "models/original.pt",
           "models/unlearned/retrain.pt", "models/unlearned/finetune.pt", "data/forget/forget.json")


def test_push_clone_pull_and_repro_reruns_only_the_uncached_verify(tmp_path: Path):
    origin, clone, remote = tmp_path / "origin", tmp_path / "clone", tmp_path / "remote"
    env = make_project(origin, SMALL)
    _run(["dvc", "repro"], origin, env)
    _run(["dvc", "remote", "add", "-d", "team", str(remote)], origin, env)
    _run(["git", "add", "-A"], origin, env)  # dvc.lock, .dvc/config, the git-tracked metrics
    _run(["git", "commit", "-qm", "pipeline run"], origin, env)
    _run(["dvc", "push"], origin, env)
    assert any(p.is_file() for p in (remote / "files").rglob("*")), "dvc push put nothing in the remote"

    _run(["git", "clone", "-q", str(origin), str(clone)], tmp_path, env)
    env = dict(env, MLFLOW_TRACKING_URI=f"sqlite:///{clone / 'mlflow.db'}")
    assert not (clone / "models/original.pt").exists()
    assert "deleted" in _run(["dvc", "status"], clone, env)  # before the pull the clone lacks every output
    _run(["dvc", "pull"], clone, env)
    for rel in OUTPUTS:
        assert sha256_file(clone / rel) == sha256_file(origin / rel), rel
    status = _run(["dvc", "status"], clone, env)
    assert re.findall(r"^(\S+):$", status, re.M) == ["verify"], status
    assert "reports/certificates" in status and "reports/summary.json" in status
    dry = _run(["dvc", "repro", "--dry"], clone, env)
    assert re.findall(r"Running stage '([^']+)'", dry) == ["verify"], dry[-2000:]
    assert not (clone / "mlflow.db").exists(), "a stage ran in the clone (it logged to MLflow)"
