"""The team stack without Docker (what docker-compose.yml runs as containers): PostgreSQL from the distribution's
packages started on 127.0.0.1 in a temporary data directory, an MLflow tracking server with that database as its
backend store and a served artifact root, the tiny pipeline (`dvc repro`) tracked there over HTTP, then
`unlearn lineage` and `unlearn audit` answered from the server. The deletion-request flow then runs as a
deployment on a Prefect server's process work pool, picked up by a worker (all on 127.0.0.1).

Skips, naming what is missing, when the PostgreSQL server binaries or the Python driver (`pip install -e
'.[team]'`) are not installed; `.ci/run` installs both."""

from __future__ import annotations

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
from pipeline_project import make_project, merge
from pipeline_project import run as _run
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
