"""Shared by the end-to-end tests: a pipeline project (this repo's code, dvc.yaml and params.yaml merged with
test overrides) in a fresh git + DVC repository, and the environment to run it with."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# Tiny digits, forgetting whole classes by request. The thresholds make a verdict hinge on forget accuracy
# against the retrain reference (the attack rules are opened wide), so that a test of the operation does not
# depend on how the attack suite is calibrated: the original is caught (it still knows the class), the retrain
# reference passes. Used by tests/test_deletion_flow.py and the fault matrix (tests/faults/harness.py).
DELETION_PARAMS = {
    "prepare": {"splits": {"train": 300, "reference": 150, "test": 300}},
    "pretrain": {"backbone": {"name": "small_cnn", "width": 8}, "epochs": 25, "batch_size": 64, "lr": 0.003},
    "forget": {"kind": "requests"},
    "unlearn": {"methods": ["retrain", "finetune"], "finetune": {"epochs": 1}},
    "verify": {"bootstrap": 20, "shadow_models": 0, "promote": ["finetune", "retrain"],
               "thresholds": {"auc_tolerance": 0.5, "accuracy_tolerance": 40.0, "mia_efficacy_tolerance": 1.0,
                              "utility_drop": 100.0}},
    "requests": {"schedule": "0 0 1 1 *", "retrain_every": 1},  # the tests trigger runs themselves
}


def merge(base: dict, over: dict) -> dict:
    """Recursive dict merge; ``over`` wins."""
    return {k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
            for k, v in {**base, **over}.items()}


def make_project(proj: Path, overrides: dict) -> dict[str, str]:
    """Lay the project out under ``proj`` (git init, dvc init, first commit); return its environment."""
    proj.mkdir(parents=True, exist_ok=True)
    for name in ("src", "flows"):
        shutil.copytree(ROOT / name, proj / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, proj / name)
    (proj / "data" / "requests").mkdir(parents=True)
    (proj / "data" / "requests" / ".gitkeep").touch()
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               MLFLOW_TRACKING_URI=f"sqlite:///{proj / 'mlflow.db'}", DVC_NO_ANALYTICS="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        run(cmd, proj, env)
    return env


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    """Run a command; on failure the assertion shows the tail of its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr
