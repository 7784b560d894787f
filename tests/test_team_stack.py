"""The team stack without Docker (what docker-compose.yml runs as containers): PostgreSQL from the distribution's
packages started on 127.0.0.1 in a temporary data directory, an MLflow tracking server with that database as its
backend store and a served artifact root, the tiny pipeline (`dvc repro`) tracked there over HTTP, then
`unlearn lineage` and `unlearn audit` answered from the server. Then a Prefect server on the same PostgreSQL, a
process work pool, the deletion-request flow deployed on it and run by `prefect worker start` (all on 127.0.0.1).

Skips, naming what is missing, when the PostgreSQL server binaries or the Python driver (`pip install -e
'.[team]'`) are not installed; `.ci/run` installs both."""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from pipeline_project import make_project, merge
from pipeline_project import run as _run
from test_deletion_flow import TINY as REQUESTS
from test_pipeline import TINY

pytestmark = pytest.mark.slow
# test_pipeline's tiny project, smaller still: what is under test is where things are tracked, not the methods
TEAM = merge(TINY, {"pretrain": {"epochs": 12}, "unlearn": {"methods": ["retrain", "finetune"]},
                    "verify": {"bootstrap": 20, "shadow_models": 0}})


def pg_bin() -> Path | None:
    """The directory holding initdb/pg_ctl/postgres: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found and Path(found).resolve().with_name("pg_ctl").exists():
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[:3]} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} not up after {timeout}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started in its own process group (uvicorn/gunicorn workers included)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_compose_file_runs_what_this_test_runs_and_binds_to_localhost():
    """docker-compose.yml cannot be run here (no Docker engine): check it starts the servers this test starts,
    with the same flags, and publishes nothing beyond 127.0.0.1 by default."""
    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "prefect-server", "register-flow", "worker"} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND:-127.0.0.1}:"), f"{name} publishes {port} beyond 127.0.0.1"
    mlflow = services["mlflow"]["command"].split()
    assert mlflow[:2] == ["mlflow", "server"] and "--serve-artifacts" in mlflow
    assert mlflow[mlflow.index("--backend-store-uri") + 1].startswith("postgresql+psycopg://")
    prefect = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert prefect.startswith("postgresql+asyncpg://")
    worker = services["worker"]["command"].split()
    assert worker[:3] == ["prefect", "worker", "start"] and worker[worker.index("--pool") + 1] == "unlearn"
    assert "flows/deletion_requests.py:deletion_requests" in services["register-flow"]["command"]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on 127.0.0.1:<free port>, trust auth for the local user ``unlearn``, database
    ``mlflow``; data in a temporary directory, removed afterwards. As root, the server runs as the ``postgres``
    system user (postgres refuses to run as root)."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install -y postgresql "
                    "(.ci/run does this)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the PostgreSQL driver psycopg is not installed: pip install -e '.[team]' (.ci/run does this)")
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="unlearn-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            runuser = None
        if runuser is None:
            shutil.rmtree(base)
            pytest.skip("running as root without a 'postgres' system user (or runuser) to start PostgreSQL as")
        shutil.chown(base, "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    port = free_port()
    data, log = base / "data", base / "server.log"
    env = dict(os.environ, LC_ALL="C")
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "unlearn", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True, env=env)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                    "-o", f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off", "start"], check=True,
                   capture_output=True, env=env)
    try:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={port} user=unlearn dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE mlflow")
            conn.execute("CREATE DATABASE prefect")
        yield f"postgresql+psycopg://unlearn@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, env=env)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    """``mlflow server`` on 127.0.0.1 with the PostgreSQL backend store and a served artifact root."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = root / "server.log"
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", postgres,
           "--serve-artifacts", "--artifacts-destination", str(root / "artifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc, log)
        yield f"http://127.0.0.1:{port}", root / "artifacts"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def project(mlflow_server, tmp_path_factory):
    uri, _ = mlflow_server
    proj = tmp_path_factory.mktemp("team-project")
    env = make_project(proj, TEAM)
    env["MLFLOW_TRACKING_URI"] = uri
    _run(["dvc", "repro"], proj, env)
    return proj, env


def test_pipeline_tracks_runs_and_models_in_postgres_and_served_artifacts(project, mlflow_server, postgres):
    proj, env = project
    uri, artifacts = mlflow_server
    assert not (proj / "mlflow.db").exists(), "the pipeline wrote a local sqlite store instead of the server"
    import psycopg

    dsn = postgres.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        stages = {r[0] for r in conn.execute("SELECT value FROM tags WHERE key = 'unlearn.stage'")}
        methods = {r[0] for r in conn.execute(
            "SELECT value FROM model_version_tags WHERE key = 'unlearn.method'")}
        sources = [r[0] for r in conn.execute("SELECT source FROM model_versions")]
    assert {"prepare", "pretrain", "forget", "unlearn", "verify"} <= stages
    assert methods == {"pretrain", "retrain", "finetune"}
    # the client uploaded the models through the server (mlflow-artifacts:), which stored them under its root
    assert sources and all(s.startswith(("models:/", "mlflow-artifacts:")) for s in sources), sources
    assert any(p.name == "MLmodel" for p in artifacts.rglob("MLmodel")), "no model files under the served root"


def test_lineage_and_audit_are_answered_from_the_server(project):
    proj, env = project
    out = _run(["unlearn", "lineage", "--project", str(proj)], proj, env)
    assert "role=original" in out and "method=pretrain" in out, out
    forget = json.loads((proj / "data/forget/forget.json").read_text())
    sid = forget["sample_ids"][0]
    rows = json.loads(_run(["unlearn", "audit", sid, "--project", str(proj), "--json"], proj, env))["versions"]
    by_method = {r["method"]: r for r in rows}
    assert by_method["pretrain"]["trained_with"] is True
    assert by_method["retrain"]["trained_with"] is False
    # the same command against a store that is not there fails closed, naming the store
    dead = dict(env, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}", MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    proc = subprocess.run(["unlearn", "lineage", "--project", str(proj)], cwd=proj, env=dead, capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "127.0.0.1" in proc.stderr + proc.stdout


@pytest.fixture(scope="module")
def prefect_server(postgres, tmp_path_factory):
    """``prefect server start`` on 127.0.0.1 with its database in the same PostgreSQL (asyncpg driver)."""
    tmp = tmp_path_factory.mktemp("prefect")
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(tmp / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_API_DATABASE_CONNECTION_URL=postgres.replace("+psycopg", "+asyncpg").replace("/mlflow",
                                                                                                   "/prefect"))
    env.pop("PREFECT_API_URL", None)
    log = tmp / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host",
                                 "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", proc, log, timeout=180)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        stop(proc)


def _flow_runs(api: str, run_id: str | None = None) -> list[dict]:
    """Every flow run on the server, or the one with ``run_id``."""
    req = urllib.request.Request(f"{api}/flow_runs/filter", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"flow_runs": {"id": {"any_": [run_id]}}} if run_id else {}).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_deletion_request_flow_runs_on_a_work_pool(project, prefect_server, tmp_path):
    """The deletion-request flow as a deployment on a process work pool, executed by `prefect worker start`
    (what docker-compose.yml's register-flow and worker services do), unlearning from the production model that the
    pipeline registered on the MLflow server."""
    proj, env = project
    env = dict(env, PREFECT_API_URL=prefect_server, PREFECT_HOME=str(tmp_path / "prefect-client"))
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["forget"] = REQUESTS["forget"]  # forget what the inbox asks for; verify as in the pipeline run above
    params["requests"] = {**params["requests"], **REQUESTS["requests"]}
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with open(proj / "data/prepared/manifest.csv") as fh:
        ids = [r["sample_id"] for r in csv.DictReader(fh) if r["split"] == "train" and r["label"] == "5"]
    (proj / "data/requests/inbox").mkdir(parents=True, exist_ok=True)
    # a whole class, as tests/test_deletion_flow.py: the original measurably knows it (verify's power check)
    request = {"request_id": "r-1", "sample_ids": ids, "requested_at": "2026-12-01T10:00:00Z"}
    (proj / "data/requests/inbox/r-1.json").write_text(json.dumps(request))

    _run(["prefect", "work-pool", "create", "unlearn", "--type", "process"], proj, env)
    _run(["prefect", "--no-prompt", "deploy", "flows/deletion_requests.py:deletion_requests", "--name",
          "deletion-requests", "--pool", "unlearn", "--param", f"project_dir={proj}"], proj, env)
    _run(["prefect", "deployment", "run", "unlearn-deletion-requests/deletion-requests"], proj, env)
    [queued] = _flow_runs(prefect_server)
    assert queued["state_type"] == "SCHEDULED"
    # one poll of the pool: the worker picks the run up, runs it in a subprocess, waits for it, exits
    worker = subprocess.run(["prefect", "worker", "start", "--pool", "unlearn", "--type", "process", "--run-once"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    [done] = _flow_runs(prefect_server, queued["id"])  # (the pipeline ran as its subflow: another flow run)
    assert done["state_type"] == "COMPLETED", worker.stdout[-3000:] + worker.stderr[-3000:]
    assert done["work_pool_name"] == "unlearn"

    from unlearn.requests.ledger import Ledger

    states = [e.state for e in Ledger(proj / "data/ledger/ledger.sqlite").events("r-1")]
    assert states == ["received", "processing", "done"], states
    rows = json.loads(_run(["unlearn", "audit", ids[0], "--project", str(proj), "--json"], proj, env))["versions"]
    production = next(r for r in rows if "production" in r["aliases"])
    assert production["trained_with"] is False or production["certified_removal"] is True, production
