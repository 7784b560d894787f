"""The only module that talks to MLflow. Stages build a :class:`Tracker` and pass callbacks into the library.

Store: ``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<cwd>/mlflow.db``. A pipeline run (the Prefect flow)
opens a parent run and exports its id as ``UNLEARN_PIPELINE_RUN_ID``; every stage run nests under it.

Fail closed: every MLflow failure (store unreachable, refused call, unknown registered model) raises
:class:`TrackingError`, one line naming the store URI, never an empty answer. Readers (``model_versions``,
``model_aliases``) never create a missing sqlite store. HTTP retries are bounded (:data:`HTTP_DEFAULTS`, unless
the user set them), so an unreachable server fails in seconds, not minutes.

Registered evidence is immutable: a version is created with all its tags in one call (a killed registration
leaves no version, or a complete one), a tag already set on a version is never changed
(:func:`set_version_tags`), and a re-evaluation of a registered model is added under its own key
``unlearn.eval.<UTC timestamp>.*`` (:func:`add_evaluation`). A stage run records its process (``unlearn.pid``,
``unlearn.hostname``, ``unlearn.pid_start``); the next run of the experiment marks runs whose process is gone
``KILLED`` (:func:`reap_stale_runs`).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from unlearn.requests.lineage import EVAL_PREFIX

logger = logging.getLogger(__name__)

PARENT_ENV = "UNLEARN_PIPELINE_RUN_ID"
# bounded HTTP retries (MLflow's defaults: 7 retries, backoff factor 2, 120 s timeout: 267 s to fail)
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}
SHA_TAG = "unlearn.model_sha256"


class TrackingError(ValueError):
    """MLflow cannot give a trustworthy answer: the store is unreachable or missing, or refused a call. One line
    naming the store URI. A ``ValueError``, so every entry point's one-line error handler reports it and exits
    non-zero."""


class UnknownModel(TrackingError):
    """The registered model is not in the store."""


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def bound_http_retries() -> None:
    """Set :data:`HTTP_DEFAULTS` for the variables the user did not set."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _mlflow(*, read_only: bool = False):
    """The ``mlflow`` module pointed at :func:`tracking_uri`. ``read_only``: a missing sqlite store is an error
    (:class:`TrackingError`), never created."""
    bound_http_retries()
    uri = tracking_uri()
    path = sqlite_path(uri)
    if read_only and path is not None and not path.is_file():
        raise TrackingError(f"MLflow store {uri}: no such database file (nothing was tracked there; run from the "
                            "project or set MLFLOW_TRACKING_URI)")
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    return mlflow


def check_store() -> None:
    """Fail now, with one :class:`TrackingError` line, when the tracking store is a server that does not answer
    (bounded retries). A sqlite store is local: a missing file is created by the first run, so nothing is checked."""
    if sqlite_path(tracking_uri()) is not None:
        return
    mlflow = _mlflow()
    with store_errors("checking the store"):
        mlflow.MlflowClient().search_experiments(max_results=1)


def _first_line(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _store_errors() -> tuple[type[BaseException], ...]:
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    return MlflowException, sqlalchemy.exc.SQLAlchemyError, RequestException, ConnectionError


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn an MLflow failure during ``what`` into one :class:`TrackingError` line naming the store URI."""
    try:
        yield
    except TrackingError:
        raise
    except _store_errors() as exc:
        if "Connection refused" in str(exc) or "Max retries exceeded" in str(exc):
            raise TrackingError(f"MLflow store {tracking_uri()} unreachable during {what}: {_first_line(exc)}") \
                from None
        raise TrackingError(f"MLflow store {tracking_uri()}: {what} failed: {_first_line(exc)}") from None


def _not_found(exc: BaseException) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


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

    def register_model(self, model: Any, name: str, example: Any, artifact_name: str,
                       tags: dict[str, Any] | None = None) -> str:
        """Log ``model`` with the pytorch flavour and register it as a new version of ``name`` carrying ``tags``;
        returns the version number.

        The version is created with its tags in one call (one transaction in a SQL store): a registration
        killed at any point leaves either no version or a fully tagged one, never an untagged one."""
        info = self._mlflow.pytorch.log_model(model, name=artifact_name, input_example=example,
                                             pip_requirements=_pip_requirements())
        version = self._mlflow.register_model(info.model_uri, name,
                                              tags={k: str(v) for k, v in (tags or {}).items()})
        return str(version.version)


def _pip_requirements() -> list[str]:
    import torch

    return [f"torch=={torch.__version__.split('+')[0]}"]


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after the command name


def process_tags() -> dict[str, str]:
    """This process, as run tags: what :func:`reap_stale_runs` checks to tell a live run from a killed one."""
    pid = os.getpid()
    return {"unlearn.pid": str(pid), "unlearn.hostname": socket.gethostname(),
            "unlearn.pid_start": _process_start(pid) or "unknown"}


def _process_gone(tags: dict[str, str]) -> bool | None:
    """Whether the process a run's tags name is gone: None when it cannot be told (another host, no tags)."""
    if tags.get("unlearn.hostname") != socket.gethostname() or not tags.get("unlearn.pid", "").isdigit():
        return None
    pid = int(tags["unlearn.pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    start = tags.get("unlearn.pid_start", "unknown")
    return start != "unknown" and _process_start(pid) not in (None, start)  # the pid was reused


def reap_stale_runs(client: Any, experiment_id: str) -> list[str]:
    """Mark ``KILLED`` every ``RUNNING`` run of the experiment whose process (tags ``unlearn.pid``,
    ``unlearn.hostname``, ``unlearn.pid_start``) is gone, with a tag ``unlearn.terminated_reason``; returns their
    ids. Runs of another host, or without those tags, are left as they are."""
    reaped = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if _process_gone(tags):
            why = (f"process {tags['unlearn.pid']} on {tags['unlearn.hostname']} ended without closing this run "
                   f"(killed); found {datetime.now(timezone.utc).isoformat(timespec='seconds')} by pid "
                   f"{os.getpid()}")
            client.set_tag(run.info.run_id, "unlearn.terminated_reason", why)
            client.set_terminated(run.info.run_id, status="KILLED")
            logger.warning("MLflow run %s (%s) was left RUNNING by a killed process: marked KILLED",
                           run.info.run_id, tags.get("unlearn.stage", "?"))
            reaped.append(run.info.run_id)
    return reaped


@contextmanager
def stage_run(stage: str, experiment: str, run_name: str | None = None) -> Iterator[Tracker]:
    """Open the MLflow run of one stage, nested under the pipeline run when ``UNLEARN_PIPELINE_RUN_ID`` is set.

    First marks the runs of killed processes ``KILLED`` (:func:`reap_stale_runs`); any MLflow failure inside
    becomes one :class:`TrackingError` line naming the store."""
    mlflow = _mlflow()
    parent = os.environ.get(PARENT_ENV) or None
    tags = {"unlearn.stage": stage, "unlearn.git_commit": git_commit() or "unknown", **process_tags()}
    with store_errors(f"stage {stage}"):
        exp = mlflow.set_experiment(experiment)
        reap_stale_runs(mlflow.MlflowClient(), exp.experiment_id)
        with mlflow.start_run(run_name=run_name or stage, parent_run_id=parent, nested=parent is not None,
                              tags=tags) as run:
            yield Tracker(mlflow, run)


def start_pipeline_run(experiment: str, tags: dict[str, str] | None = None) -> str:
    """Create the parent run of one pipeline execution and return its id (left open for stages to nest in);
    first marks the runs of killed processes ``KILLED``."""
    mlflow = _mlflow()
    with store_errors("opening the pipeline run"):
        mlflow.set_experiment(experiment)
        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name(experiment)
        reap_stale_runs(client, exp.experiment_id)
        run = client.create_run(exp.experiment_id, run_name="pipeline",
                                tags={"unlearn.stage": "pipeline", "unlearn.git_commit": git_commit() or "unknown",
                                      **process_tags(), **(tags or {})})
    return run.info.run_id


def end_pipeline_run(run_id: str, status: str = "FINISHED", artifacts: list[Path] | None = None) -> None:
    mlflow = _mlflow()
    with store_errors("closing the pipeline run"):
        client = mlflow.MlflowClient()
        for path in artifacts or []:
            if Path(path).exists():
                client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, status=status)


def find_version_by_tag(name: str, key: str, value: str) -> str | None:
    """The newest version of registered model ``name`` whose tag ``key`` equals ``value``, None when there is
    none; a store failure raises :class:`TrackingError` (never read as "none")."""
    mlflow = _mlflow(read_only=True)
    with store_errors(f"searching {name} versions by tag {key}"):
        versions = mlflow.MlflowClient().search_model_versions(f"name = '{name}' and tag.`{key}` = '{value}'")
    return max((str(v.version) for v in versions), key=int, default=None)


def version_tags(name: str, version: str) -> dict[str, str]:
    """The tags of ``name`` version ``version``."""
    mlflow = _mlflow(read_only=True)
    with store_errors(f"reading {name} v{version}"):
        return dict(mlflow.MlflowClient().get_model_version(name, version).tags or {})


def set_version_tags(name: str, version: str, tags: dict[str, Any]) -> None:
    """Add model-version tags (the lineage an auditor filters on). A tag already on the version is evidence and
    is never changed: the same value is skipped, another value raises ``ValueError`` naming the tag."""
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    with store_errors(f"tagging {name} v{version}"):
        existing = dict(client.get_model_version(name, version).tags or {})
        clash = {k: (existing[k], str(v)) for k, v in tags.items() if k in existing and existing[k] != str(v)}
        if clash:
            key, (old, new) = next(iter(clash.items()))
            raise ValueError(f"{name} v{version}: tag {key} is already {old!r}; registered evidence is immutable, "
                             f"not overwritten with {new!r}")
        for k, v in tags.items():
            if k not in existing:
                client.set_model_version_tag(name, version, k, str(v))


def evaluation_id(now: datetime | None = None) -> str:
    """A UTC timestamp naming one evaluation, e.g. ``20261202T132751Z``."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def add_evaluation(name: str, version: str, fields: dict[str, Any], eval_id: str | None = None) -> str:
    """Record a re-evaluation of an already registered version as tags ``unlearn.eval.<id>.<field>`` (``id``: a
    UTC timestamp, suffixed ``-2``, ``-3``... when the version already has an evaluation of that second);
    returns the key prefix. The version's own tags are left as they are."""
    base = eval_id or evaluation_id()
    existing = version_tags(name, version)
    taken = {k.removeprefix(EVAL_PREFIX).rsplit(".", 1)[0] for k in existing if k.startswith(EVAL_PREFIX)}
    ident, n = base, 1
    while ident in taken:
        n += 1
        ident = f"{base}-{n}"
    prefix = f"{EVAL_PREFIX}{ident}"
    set_version_tags(name, version, {f"{prefix}.{k}": v for k, v in fields.items()})
    return prefix


def reconcile_versions(name: str) -> list[str]:
    """Delete the versions of ``name`` that an interrupted registration left without the ``unlearn.model_sha256``
    tag (only those created by a verify run and holding no alias; others are reported, not touched); returns
    ``"v<n>: deleted (...)"`` / ``"v<n>: kept (...)"`` lines."""
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    out = []
    with store_errors(f"reconciling {name} versions"):
        for v in model_versions(name, must_exist=False):
            if SHA_TAG in (v.tags or {}):
                continue
            aliases = list(getattr(v, "aliases", None) or [])
            stage = None
            if v.run_id:
                try:
                    stage = client.get_run(v.run_id).data.tags.get("unlearn.stage")
                except mlflow.exceptions.MlflowException as exc:
                    if not _not_found(exc):
                        raise
            if stage == "verify" and not aliases:
                client.delete_model_version(name, str(v.version))
                out.append(f"v{v.version}: deleted (untagged, left by an interrupted registration in run {v.run_id})")
            else:
                why = f"aliased {','.join(aliases)}" if aliases else "not created by a verify run"
                out.append(f"v{v.version}: kept (untagged but {why})")
    return out


def set_alias(name: str, alias: str, version: str) -> None:
    mlflow = _mlflow()
    with store_errors(f"setting {name}@{alias}"):
        mlflow.MlflowClient().set_registered_model_alias(name, alias, version)


def model_versions(name: str, *, must_exist: bool = True) -> list[Any]:
    """Every version of registered model ``name``. An unreachable or missing store, or (``must_exist``) a model
    that is not registered, raises :class:`TrackingError` naming the store; with ``must_exist`` False both of
    the latter give ``[]`` (a first run: nothing registered yet). A missing sqlite store is never created."""
    try:
        mlflow = _mlflow(read_only=True)
    except TrackingError:
        if must_exist:
            raise
        return []
    client = mlflow.MlflowClient()
    with store_errors(f"listing {name} versions"):
        if must_exist:
            _registered_model(client, name)
        return list(client.search_model_versions(f"name = '{name}'"))


def model_aliases(name: str, *, must_exist: bool = True) -> dict[str, str]:
    """``{alias: version}`` of registered model ``name``; failures as :func:`model_versions` (``{}`` for a model
    not registered yet only when ``must_exist`` is False)."""
    try:
        mlflow = _mlflow(read_only=True)
    except TrackingError:
        if must_exist:
            raise
        return {}
    with store_errors(f"reading {name} aliases"):
        try:
            aliases = _registered_model(mlflow.MlflowClient(), name).aliases
        except UnknownModel:
            if must_exist:
                raise
            return {}
    return {alias: str(version) for alias, version in (aliases or {}).items()}


def _registered_model(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if _not_found(exc):
            raise UnknownModel(f"registered model {name!r} is not in MLflow store {tracking_uri()}") from None
        raise
