"""The only module that talks to MLflow. Stages build a :class:`Tracker` and pass callbacks into the library.

Store: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<cwd>/mlflow.db``. A pipeline run (the Prefect flow)
opens a parent run and exports its id as ``UNLEARN_PIPELINE_RUN_ID``; every stage run nests under it.
"""

from __future__ import annotations

import logging
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

logger = logging.getLogger(__name__)

PARENT_ENV = "UNLEARN_PIPELINE_RUN_ID"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _mlflow():
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


class Tracker:
    """Logging for one stage run."""

    def __init__(self, mlflow_module: Any, run: Any) -> None:
        self._mlflow = mlflow_module
        self.run = run
        self.run_id: str = run.info.run_id

    def log_params(self, params: dict) -> None:
        flat = {k: str(v)[:500] for k, v in flatten(params).items()}
        self._mlflow.log_params(flat)

    def log_metrics(self, metrics: dict, step: int | None = None, prefix: str = "") -> None:
        flat = {f"{prefix}{k}".replace("%", "pct"): float(v) for k, v in flatten(metrics).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._mlflow.log_metrics(flat, step=step)

    def epoch_callback(self, name: str) -> Callable[[int, float], None]:
        """A ``fit`` callback that logs the per-epoch loss as the curve ``name``."""
        return lambda epoch, loss: self._mlflow.log_metric(name, loss, step=epoch)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_dataset(self, name: str, source: str, fingerprint: str, context: str) -> None:
        """Dataset lineage as metadata only (name, DVC path, fingerprint digest): never the samples."""
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.data.sources import LocalArtifactDatasetSource

        dataset = MetaDataset(LocalArtifactDatasetSource(source), name=name, digest=fingerprint[:36])
        self._mlflow.log_input(dataset, context=context)

    def register_model(self, model: Any, name: str, example: Any, artifact_name: str) -> str:
        """Log ``model`` with the pytorch flavour and register it as a new version of ``name``; returns the
        version number."""
        info = self._mlflow.pytorch.log_model(model, name=artifact_name, input_example=example,
                                             pip_requirements=_pip_requirements(),
                                             registered_model_name=name)
        return str(info.registered_model_version)


def _pip_requirements() -> list[str]:
    import torch

    return [f"torch=={torch.__version__.split('+')[0]}"]


@contextmanager
def stage_run(stage: str, experiment: str, run_name: str | None = None) -> Iterator[Tracker]:
    """Open the MLflow run of one stage, nested under the pipeline run when ``UNLEARN_PIPELINE_RUN_ID`` is set."""
    mlflow = _mlflow()
    mlflow.set_experiment(experiment)
    parent = os.environ.get(PARENT_ENV) or None
    tags = {"unlearn.stage": stage, "unlearn.git_commit": git_commit() or "unknown"}
    with mlflow.start_run(run_name=run_name or stage, parent_run_id=parent, nested=parent is not None,
                          tags=tags) as run:
        yield Tracker(mlflow, run)


def start_pipeline_run(experiment: str, tags: dict[str, str] | None = None) -> str:
    """Create the parent run of one pipeline execution and return its id (left open for stages to nest in)."""
    mlflow = _mlflow()
    mlflow.set_experiment(experiment)
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    run = client.create_run(exp.experiment_id, run_name="pipeline",
                            tags={"unlearn.stage": "pipeline", "unlearn.git_commit": git_commit() or "unknown",
                                  **(tags or {})})
    return run.info.run_id


def end_pipeline_run(run_id: str, status: str = "FINISHED", artifacts: list[Path] | None = None) -> None:
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    for path in artifacts or []:
        if Path(path).exists():
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, status=status)


def find_version_by_tag(name: str, key: str, value: str) -> str | None:
    """The newest version of registered model ``name`` whose tag ``key`` equals ``value``, if any."""
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{name}' and tag.`{key}` = '{value}'")
    except mlflow.exceptions.MlflowException:
        return None
    return max((str(v.version) for v in versions), key=int, default=None)


def set_version_tags(name: str, version: str, tags: dict[str, Any]) -> None:
    """Model-version tags: the lineage an auditor filters on in the MLflow UI."""
    client = _mlflow().MlflowClient()
    for k, v in tags.items():
        client.set_model_version_tag(name, version, k, str(v))


def set_alias(name: str, alias: str, version: str) -> None:
    _mlflow().MlflowClient().set_registered_model_alias(name, alias, version)


def model_versions(name: str) -> list[Any]:
    mlflow = _mlflow()
    try:
        return list(mlflow.MlflowClient().search_model_versions(f"name = '{name}'"))
    except mlflow.exceptions.MlflowException:
        return []


def model_aliases(name: str) -> dict[str, str]:
    """``{alias: version}`` of registered model ``name`` (empty when it is not registered)."""
    mlflow = _mlflow()
    try:
        aliases = mlflow.MlflowClient().get_registered_model(name).aliases
    except mlflow.exceptions.MlflowException:
        return {}
    return {alias: str(version) for alias, version in (aliases or {}).items()}
