"""The pipeline flow: the five DVC stages as Prefect tasks, in order, under one MLflow parent run.

Each task runs ``dvc repro --single-item <stage>``, so a stage whose deps and params did not change is
skipped by DVC; Prefect adds retries, run history and schedules. Run it with ``unlearn run``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task

from unlearn.config import load_params
from unlearn.io import read_json
from unlearn.tracking import PARENT_ENV, end_pipeline_run, start_pipeline_run

STAGES = ("prepare", "pretrain", "base", "forget", "unlearn", "verify")
BAD_INPUT_EXIT = 2  # stages exit 2 on bad input: retrying cannot help


class StageFailed(RuntimeError):
    def __init__(self, stage: str, returncode: int, tail: str) -> None:
        super().__init__(f"stage {stage!r} failed (exit {returncode}):\n{tail}")
        self.returncode = returncode


def _retry_unless_bad_input(task, task_run, state) -> bool:
    try:
        state.result()
    except StageFailed as exc:
        return exc.returncode != BAD_INPUT_EXIT
    except Exception:
        return True
    return True


def _stage_env(parent_run_id: str) -> dict[str, str]:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    env[PARENT_ENV] = parent_run_id
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # stages use this python
    return env


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=_retry_unless_bad_input)
def run_stage(stage: str, project_dir: str, parent_run_id: str) -> str:
    """``dvc repro --single-item <stage>``: runs the stage (all matrix items for ``unlearn``) only when stale."""
    logger = get_run_logger()
    proc = subprocess.run(["dvc", "repro", "--single-item", stage], cwd=project_dir, env=_stage_env(parent_run_id),
                          capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    for line in output.splitlines():
        if line.strip() and "Warning" not in line:
            logger.info(line)
    if proc.returncode != 0:
        raise StageFailed(stage, proc.returncode, "\n".join(output.splitlines()[-15:]))
    return "skipped" if "didn't change, skipping" in output and "Running stage" not in output else "ran"


@flow(name="unlearn-pipeline", log_prints=True)
def pipeline(project_dir: str = ".", summary_path: str = "reports/summary.json") -> list[dict]:
    """Run prepare -> pretrain -> base -> forget -> unlearn -> verify; return the summary rows of the method table."""
    project = Path(project_dir).resolve()
    params = load_params(project / "params.yaml")
    cwd = os.getcwd()
    os.chdir(project)  # the MLflow store and the stages live in the project
    try:
        parent = start_pipeline_run(params.experiment_name, tags={"unlearn.params_source": params.prepare.source})
        status = "FAILED"
        try:
            outcome = {stage: run_stage(stage, str(project), parent) for stage in STAGES}
            status = "FINISHED"
        finally:
            end_pipeline_run(parent, status, [project / summary_path, project / "dvc.lock", project / "params.yaml"])
        get_run_logger().info("stages: %s", outcome)
        return read_json(project / summary_path)["rows"]
    finally:
        os.chdir(cwd)


if __name__ == "__main__":
    pipeline()
