"""The pipeline flow: the five DVC stages as Prefect tasks, in order, under one MLflow parent run.

Each task runs ``dvc repro --single-item <stage>``, so a stage whose deps and params did not change is
skipped by DVC; Prefect adds retries, run history and schedules. Run it with ``unlearn run``.

Retries apply only to failures a retry can fix. ``dvc repro`` exits 255 whatever the stage did, so the stage's own
exit code is read from DVC's ``exited with N`` line: a stage that exits 2 (bad input, a NaN loss, a full disk:
see :mod:`unlearn.stages.common`) fails at once; anything else (a crash, a kill, a refused connection) is retried.
The flow holds the project lock (:mod:`unlearn.lock`) for its whole run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task

from unlearn.config import load_params
from unlearn.console import quiet_expected_errors
from unlearn.io import read_json
from unlearn.lock import project_lock
from unlearn.tracking import PARENT_ENV, end_pipeline_run, start_pipeline_run

STAGES = ("prepare", "pretrain", "base", "forget", "unlearn", "verify")
BAD_INPUT_EXIT = 2  # stages exit 2 on bad input and deterministic failures: retrying cannot help
_EXITED = re.compile(r"exited with (-?\d+)")


def stage_exit_code(output: str, returncode: int) -> int:
    """The stage command's own exit code, from DVC's last ``exited with N``; ``returncode`` (DVC's) when absent."""
    codes = _EXITED.findall(output)
    return int(codes[-1]) if codes else returncode


class StageFailed(RuntimeError):
    """A stage failed; ``stage_code`` is the stage command's exit code (``returncode`` is DVC's)."""

    def __init__(self, stage: str, returncode: int, tail: str, stage_code: int | None = None) -> None:
        self.stage, self.returncode, self.tail = stage, returncode, tail
        self.stage_code = returncode if stage_code is None else stage_code
        super().__init__(f"stage {stage!r} failed (exit {self.stage_code}):\n{tail}")

    def summary(self) -> str:
        """One line: the stage, its exit code and its ``error:`` line (else DVC's last error line)."""
        lines = [line.strip() for line in self.tail.splitlines() if line.strip()]
        errors = [line[len("error:"):].strip() for line in lines if line.startswith("error:")]
        why = errors[-1] if errors else next((line for line in reversed(lines) if line.startswith("ERROR")),
                                             lines[-1] if lines else "no output")
        return f"stage {self.stage!r} failed (exit {self.stage_code}): {why}"


def retryable(exc: BaseException) -> bool:
    """Whether a retry can fix this task failure: not when the stage exited :data:`BAD_INPUT_EXIT`."""
    if isinstance(exc, StageFailed):
        return exc.stage_code != BAD_INPUT_EXIT
    return True


def _retry_unless_bad_input(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:
        return retryable(exc)
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
        raise StageFailed(stage, proc.returncode, "\n".join(output.splitlines()[-15:]),
                          stage_code=stage_exit_code(output, proc.returncode))
    return "skipped" if "didn't change, skipping" in output and "Running stage" not in output else "ran"


@flow(name="unlearn-pipeline", log_prints=True)
def pipeline(project_dir: str = ".", summary_path: str = "reports/summary.json") -> list[dict]:
    """Run prepare -> pretrain -> base -> forget -> unlearn -> verify; return the summary rows of the method table."""
    quiet_expected_errors()  # a failed stage's own error line says it all: no engine traceback above it
    project = Path(project_dir).resolve()
    params = load_params(project / "params.yaml")
    cwd = os.getcwd()
    with project_lock(project):  # one run per project; re-entrant for `unlearn run` and the deletion flow
        os.chdir(project)  # the MLflow store and the stages live in the project
        try:
            parent = start_pipeline_run(params.experiment_name,
                                        tags={"unlearn.params_source": params.prepare.source})
            status = "FAILED"
            try:
                outcome = {stage: run_stage(stage, str(project), parent) for stage in STAGES}
                status = "FINISHED"
            finally:
                end_pipeline_run(parent, status,
                                 [project / summary_path, project / "dvc.lock", project / "params.yaml"])
            get_run_logger().info("stages: %s", outcome)
            return read_json(project / summary_path)["rows"]
        finally:
            os.chdir(cwd)


if __name__ == "__main__":
    pipeline()
