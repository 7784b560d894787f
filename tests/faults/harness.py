"""The fault matrix: inject one fault into a real project (DVC + MLflow sqlite + ledger), then check what an
auditor relies on.

Each case copies a baseline project (one deletion request already ``done``, a certified ``production`` version),
injects its fault (SIGKILL at a random point of a stage, MLflow unreachable, a full disk, two runs at once, NaN
during unlearning, a corrupted checkpoint / manifest / certificate), re-runs where recovery is the point, and
returns one :class:`Row`:

- ``clear_error``: the faulty command exited non-zero with one ``error:`` line that names what failed and no
  Python traceback (for a kill, the kill is the fault: the column then says whether the re-run was clean);
- ``unchanged``: nothing changed that should not (outputs, registry versions and their tags, aliases, ledger);
- ``data_lost``: registry versions or their tags gone or rewritten, ledger events gone, outputs unreadable;
- ``wrongly_done``: requests ``done`` without a registered version carrying a passing certificate with the
  ledger's certificate hash;
- ``orphans``: registry versions without their model hash or certificate tags (after the recovery run);
- ``stale_runs``: MLflow runs still ``RUNNING`` after the recovery run.

Used by ``tests/faults/test_fault_matrix.py`` (a subset, in CI) and ``benchmarks/fault_matrix.py`` (every case,
writes ``benchmarks/results/fault_matrix.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from pipeline_project import DELETION_PARAMS, make_project  # noqa: E402

INJECT = Path(__file__).resolve().parent / "inject"
MODEL = "digits-supervised"
PARAMS = DELETION_PARAMS  # verdicts hinge on forget accuracy: retrain and finetune pass
TRACEBACK = "Traceback (most recent call last)"
STAGES = ("prepare", "pretrain", "base", "forget", "unlearn", "verify")


@dataclass
class Project:
    root: Path
    env: dict[str, str]

    def run(self, cmd: list[str], timeout: float = 900, extra_env: dict[str, str] | None = None
            ) -> tuple[int, str]:
        """Run ``cmd`` in the project; returns (exit code, stdout + stderr)."""
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr

    def ok(self, cmd: list[str], timeout: float = 900) -> str:
        rc, out = self.run(cmd, timeout)
        assert rc == 0, f"{' '.join(cmd)} failed (exit {rc}):\n{out[-4000:]}"
        return out

    def popen(self, cmd: list[str], log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(cmd, cwd=self.root, env={**self.env, **(extra_env or {})}, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)

    def set_param(self, dotted: str, value: object) -> None:
        import yaml

        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def request(self, rid: str, label: str, n: int = 8) -> list[str]:
        """Drop a deletion request for ``n`` training samples of class ``label`` into the inbox."""
        import csv

        with open(self.root / "data/prepared/manifest.csv") as fh:
            ids = [r["sample_id"] for r in csv.DictReader(fh) if r["split"] == "train" and r["label"] == label]
        inbox = self.root / "data/requests/inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        chosen = ids[:n]
        (inbox / f"{rid}.json").write_text(json.dumps({"request_id": rid, "sample_ids": chosen,
                                                       "requested_at": "2026-12-01T10:00:00Z"}))
        return chosen


def unlearn_bin(name: str = "unlearn") -> str:
    return str(Path(sys.executable).parent / name)


def _env(root: Path, env: dict[str, str]) -> dict[str, str]:
    return {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "PYTHONPATH": os.pathsep.join(p for p in (str(INJECT), os.environ.get("PYTHONPATH", "")) if p)}


def open_baseline(root: Path) -> Project:
    """A baseline built earlier by :func:`build_baseline` (``benchmarks/fault_matrix.py --base``)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    return Project(root, _env(root, env))


def build_baseline(root: Path) -> Project:
    """A project after one deletion run: request ``r-1`` (class 3) ``done``, ``production`` certified."""
    project = Project(root, _env(root, make_project(root, PARAMS)))
    project.ok(["dvc", "repro", "--single-item", "prepare"])
    project.request("r-1", "3", n=20)
    project.ok([unlearn_bin(), "ingest", "--project", str(root)], timeout=1200)
    return project


def clone(base: Project, dest: Path) -> Project:
    """A full copy (git, DVC cache, MLflow store, ledger) with the MLflow store's absolute paths re-rooted."""
    shutil.copytree(base.root, dest, symlinks=True)
    db = dest / "mlflow.db"
    if db.is_file():
        _reroot_sqlite(db, str(base.root), str(dest))
    env = {**base.env, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    return Project(dest, env)


def _reroot_sqlite(db: Path, old: str, new: str) -> None:
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for col in con.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in col[2].upper() or "TEXT" in col[2].upper():
                    con.execute(f'UPDATE "{table}" SET "{col[1]}" = replace("{col[1]}", ?, ?) '
                                f'WHERE "{col[1]}" LIKE ?', (old, new, f"%{old}%"))
        con.commit()
    finally:
        con.close()


# ---- state of a project, as an auditor would read it ----------------------------------------------------------

@dataclass
class State:
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of the outputs
    versions: dict[str, dict[str, str]] = field(default_factory=dict)  # registry version -> tags
    aliases: dict[str, str] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)  # run id -> status
    events: list[tuple] = field(default_factory=list)  # ledger rows
    unreadable: list[str] = field(default_factory=list)  # JSON outputs that do not parse


OUTPUT_DIRS = ("data/prepared", "data/forget", "data/requests", "models", "reports")


def snapshot(project: Project) -> State:
    state = State()
    for top in OUTPUT_DIRS:
        for path in sorted((project.root / top).rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                rel = str(path.relative_to(project.root))
                state.files[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
                if path.suffix == ".json":
                    try:
                        json.loads(path.read_text())
                    except ValueError:
                        state.unreadable.append(rel)
    lock = project.root / "dvc.lock"
    if lock.is_file():
        state.files["dvc.lock"] = hashlib.sha256(lock.read_bytes()).hexdigest()
    db = project.root / "mlflow.db"
    if db.is_file():
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            for name, version in con.execute("SELECT name, version FROM model_versions WHERE name = ?", (MODEL,)):
                state.versions[str(version)] = {}
            for _, version, key, value in con.execute(
                    "SELECT name, version, key, value FROM model_version_tags WHERE name = ?", (MODEL,)):
                state.versions.setdefault(str(version), {})[key] = value
            state.aliases = {a: str(v) for a, v in con.execute(
                "SELECT alias, version FROM registered_model_aliases WHERE name = ?", (MODEL,))}
            state.runs = dict(con.execute("SELECT run_uuid, status FROM runs"))
        finally:
            con.close()
    ledger = project.root / "data/ledger/ledger.sqlite"
    if ledger.is_file():
        con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
        try:
            state.events = [tuple(r) for r in con.execute(
                "SELECT seq, request_id, state, model_version, certificate_sha256 FROM events ORDER BY seq")]
        finally:
            con.close()
    return state


def data_lost(before: State, after: State) -> int:
    """Evidence that existed before and is gone or rewritten afterwards."""
    lost = 0
    for version, tags in before.versions.items():
        now = after.versions.get(version)
        if now is None:
            lost += 1
            continue
        lost += sum(1 for k, v in tags.items() if now.get(k) != v)
    lost += sum(1 for e in before.events if e not in after.events)
    lost += len(set(after.unreadable) - set(before.unreadable))
    return lost


def _certificate_shas(tags: dict[str, str]) -> set[str]:
    return {v for k, v in tags.items() if k == "unlearn.certificate_sha256"
            or (k.startswith("unlearn.") and k.endswith(".certificate_sha256"))}


def orphans(state: State) -> int:
    """Versions an auditor cannot use: no model hash, or (not the original) no certificate evidence at all."""
    count = 0
    for tags in state.versions.values():
        if not tags.get("unlearn.model_sha256"):
            count += 1
        elif tags.get("unlearn.role") not in ("original",) and not _certificate_shas(tags):
            count += 1
    return count


def wrongly_done(state: State) -> int:
    """Requests whose last event is ``done`` without a registered version carrying that passing certificate."""
    last: dict[str, tuple] = {}
    for event in state.events:
        last[event[1]] = event
    wrong = 0
    for _, _, st, version, cert in last.values():
        if st != "done":
            continue
        tags = state.versions.get(str(version))
        if tags is None or cert not in _certificate_shas(tags) or "pass" not in _verdicts(tags):
            wrong += 1
    return wrong


def _verdicts(tags: dict[str, str]) -> set[str]:
    return {v for k, v in tags.items() if k == "unlearn.verdict" or (k.startswith("unlearn.") and
                                                                      k.endswith(".verdict"))}


def stale_runs(state: State) -> int:
    return sum(1 for s in state.runs.values() if s == "RUNNING")


def unchanged(before: State, after: State, allow_files: Callable[[str], bool] = lambda p: False) -> bool:
    """Outputs, registry versions + tags, aliases and ledger exactly as before (new FAILED/KILLED runs allowed)."""
    files_before = {k: v for k, v in before.files.items() if not allow_files(k)}
    files_after = {k: v for k, v in after.files.items() if not allow_files(k)}
    return (files_before == files_after and before.versions == after.versions and before.aliases == after.aliases
            and before.events == after.events)


def clear_error(rc: int, output: str, pattern: str) -> bool:
    """Exit non-zero, an ``error``/``failed`` line matching ``pattern``, no Python traceback."""
    return rc != 0 and TRACEBACK not in output and re.search(pattern, output, re.IGNORECASE | re.MULTILINE) is not None


@dataclass
class Row:
    fault: str
    clear_error: bool
    unchanged: bool
    data_lost: int
    wrongly_done: int
    orphans: int
    stale_runs: int
    recovered: bool | None = None  # a re-run without the fault succeeded (None: not applicable)
    note: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.clear_error and self.unchanged and self.data_lost == 0 and self.wrongly_done == 0
                and self.orphans == 0 and self.stale_runs == 0 and self.recovered is not False)

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def judged(fault: str, before: State, after: State, clear: bool, *, same: bool | None = None,
           recovered: bool | None = None, note: str = "") -> Row:
    """One row, its evidence columns read off the states; ``same`` (nothing changed that should not) defaults to
    "no evidence lost"."""
    lost = data_lost(before, after)
    return Row(fault, clear_error=clear, unchanged=lost == 0 if same is None else same, data_lost=lost,
               wrongly_done=wrongly_done(after), orphans=orphans(after), stale_runs=stale_runs(after),
               recovered=recovered, note=note)


# ---- the faults ------------------------------------------------------------------------------------------------

def _descendant_stage(pid_group: int, stage: str) -> bool:
    """Whether a process of this process group runs ``unlearn.stages.<stage>``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pid_group:
                continue
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ProcessLookupError):
            continue
        if f"unlearn.stages.{stage}" in cmdline:
            return True
    return False


def kill_stage(project: Project, stage: str, rng: random.Random, log: Path, max_delay: float) -> str:
    """Start ``unlearn run``; once ``stage`` runs, SIGKILL the whole process tree after a random delay."""
    proc = project.popen([unlearn_bin(), "run", "--project", str(project.root)], log)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        if _descendant_stage(proc.pid, stage):
            break
        time.sleep(0.1)
    if proc.poll() is not None:
        return f"run ended (exit {proc.returncode}) before {stage} started"
    delay = rng.uniform(0.0, max_delay)
    time.sleep(delay)
    still = _descendant_stage(proc.pid, stage)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    return f"SIGKILL {delay:.1f}s into {stage}" + ("" if still else f" (after {stage} had ended)")


STALE_BY = {  # the param change that makes a stage (and what follows it) re-run
    "prepare": None,  # a new split seed would move the requested samples out of the train split
    "pretrain": ("pretrain.seed", 1),
    "base": None,
    "forget": ("forget.seed", 1),
    "unlearn": ("unlearn.finetune.epochs", 2),
    "verify": ("verify.seed", 1),
}
KILL_DELAY = {"prepare": 4.0, "pretrain": 8.0, "base": 3.0, "forget": 4.0, "unlearn": 10.0, "verify": 15.0}


def case_kill(base: Project, work: Path, stage: str, seed: int = 0) -> Row:
    """SIGKILL ``unlearn run`` at a random point of ``stage``, then re-run it: the re-run must succeed and leave
    no orphan version, no RUNNING run, no rewritten evidence."""
    project = clone(base, work / f"kill-{stage}")
    rng = random.Random(f"{stage}-{seed}")
    change = STALE_BY[stage]
    if change is None:  # a changed dep of the stage (its script, or the requests folder for base) re-runs it
        dep = project.root / ("data/requests/.fault" if stage == "base" else f"src/unlearn/stages/{stage}.py")
        with open(dep, "a") as fh:
            fh.write("\n# fault matrix: make the stage stale\n")
    else:
        project.set_param(*change)
    before = snapshot(project)
    note = kill_stage(project, stage, rng, work / f"kill-{stage}.log", KILL_DELAY[stage])
    rc, out = project.run([unlearn_bin(), "run", "--project", str(project.root)], timeout=1200)
    after = snapshot(project)
    return judged(f"SIGKILL during {stage}, then re-run", before, after, rc == 0 and TRACEBACK not in out,
                  recovered=rc == 0, note=note if rc == 0 else f"{note}; re-run exit {rc}: {_tail(out)}")


def case_mlflow_unreachable_run(base: Project, work: Path) -> Row:
    project = clone(base, work / "mlflow-run")
    project.set_param("verify.seed", 2)
    before = snapshot(project)
    uri = "http://127.0.0.1:9"
    rc, out = project.run([unlearn_bin(), "run", "--project", str(project.root)], timeout=600,
                          extra_env={"MLFLOW_TRACKING_URI": uri})
    after = snapshot(project)
    return judged("MLflow unreachable during `unlearn run`", before, after, clear_error(rc, out, r"127\.0\.0\.1:9"),
                  same=unchanged(before, after, lambda p: p.startswith("reports/")), note=_tail(out))


def _ingest_with_store(base: Project, work: Path, name: str, fault: str, uri: Callable[[Path], str],
                       pattern: str) -> Row:
    """Ingest a new request ``r-2`` with the tracking store at ``uri(work)``: the request must not become ``done``
    and the flow must end with one line naming the store."""
    project = clone(base, work / name)
    project.request("r-2", "5")
    before = snapshot(project)
    rc, out = project.run([unlearn_bin(), "ingest", "--project", str(project.root)], timeout=600,
                          extra_env={"MLFLOW_TRACKING_URI": uri(work)})
    after = snapshot(project)
    return judged(fault, before, after, clear_error(rc, out, pattern), note=_tail(out))


def case_mlflow_unreachable_ingest(base: Project, work: Path) -> Row:
    """The tracking server does not answer: the flow stops before it starts (the up-front check)."""
    return _ingest_with_store(base, work, "mlflow-ingest", "MLflow unreachable during the deletion flow",
                              lambda _: "http://127.0.0.1:9", r"127\.0\.0\.1:9")


def _garbage_store(work: Path) -> str:
    broken = work / "broken-mlflow.db"
    broken.write_bytes(b"not a database" * 100)
    return f"sqlite:///{broken}"


def case_mlflow_broken_ingest(base: Project, work: Path) -> Row:
    """The store fails inside the deletion flow (a sqlite URI passes the up-front check, its file is garbage)."""
    return _ingest_with_store(base, work, "mlflow-broken-ingest", "MLflow store unusable inside the deletion flow",
                              _garbage_store, r"broken-mlflow")


def case_audit_unreachable(base: Project, work: Path) -> Row:
    """``unlearn audit`` against a missing store must fail, never answer 'none'."""
    project = clone(base, work / "audit-missing")
    (project.root / "mlflow.db").unlink()
    before = snapshot(project)
    rc, out = project.run([unlearn_bin(), "audit", "digits-00003", "--project", str(project.root)], timeout=120)
    after = snapshot(project)
    created = (project.root / "mlflow.db").exists()
    # the registry is removed on purpose: its columns say nothing here; the files and ledger must stay as they were
    return Row("MLflow store missing during `unlearn audit`", clear_error=clear_error(rc, out, r"mlflow"),
               unchanged=unchanged(before, after) and not created, data_lost=0, wrongly_done=0,
               orphans=0, stale_runs=0, note=_tail(out))


def _enospc(project: Project, glob: str) -> dict[str, str]:
    return {"UNLEARN_FAULT_ENOSPC": str(project.root / glob)}


def case_enospc(base: Project, work: Path, what: str) -> Row:
    """A full disk while a stage writes ``what``; the re-run without the fault must then succeed."""
    globs = {"stage output": ("reports/certificates/*", "verify.seed"),
             "checkpoint": ("models/unlearned/*", "unlearn.finetune.epochs"),
             "artifact upload": ("mlruns/*", "verify.seed")}  # the sqlite store's artifact root
    glob, param = globs[what]
    project = clone(base, work / f"enospc-{what.replace(' ', '-')}")
    project.set_param(param, 2 if param == "unlearn.finetune.epochs" else 3)
    before = snapshot(project)
    rc, out = project.run(["dvc", "repro"], timeout=900, extra_env=_enospc(project, glob))
    mid = snapshot(project)
    rc2, out2 = project.run(["dvc", "repro"], timeout=900)
    after = snapshot(project)
    return judged(f"disk full during {what} ({glob})", before, after,
                  clear_error(rc, out, r"(no space left|disk full|ENOSPC)"),
                  same=data_lost(before, mid) == 0 and orphans(mid) == 0, recovered=rc2 == 0,
                  note=_tail(out) if rc2 == 0 else f"re-run exit {rc2}: {_tail(out2)}")


def case_enospc_ledger(base: Project, work: Path) -> Row | None:
    """A full disk under the ledger (a real 32 MiB tmpfs filled up); None when mounting is not permitted."""
    project = clone(base, work / "enospc-ledger")
    ledger_dir = project.root / "data/ledger"
    saved = work / "ledger-saved"
    shutil.copytree(ledger_dir, saved)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(ledger_dir)],
                             capture_output=True).returncode == 0
    if not mounted:
        return None
    kept = work / "ledger-after"
    try:
        for item in saved.iterdir():
            shutil.copy2(item, ledger_dir / item.name)
        project.request("r-2", "5")
        before = snapshot(project)
        try:
            with open(ledger_dir / ".filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 65536)
        except OSError:  # full: what the case is about
            pass
        rc, out = project.run([unlearn_bin(), "ingest", "--project", str(project.root)], timeout=900)
        (ledger_dir / ".filler").unlink()  # room for sqlite's shared-memory file, so the ledger can be read
        after = snapshot(project)
        shutil.copytree(ledger_dir, kept)
    finally:
        subprocess.run(["umount", "-l", str(ledger_dir)], capture_output=True)
    if kept.is_dir():  # the project keeps what the faulty run left in its ledger
        for item in kept.iterdir():
            shutil.copy2(item, ledger_dir / item.name)
    return judged("disk full during a ledger write", before, after, clear_error(rc, out, r"ledger"), note=_tail(out))


def case_two_runs(base: Project, work: Path) -> Row:
    """A second ``unlearn run`` while one runs: it must stop at once with a clear line; the first completes."""
    project = clone(base, work / "two-runs")
    project.set_param("verify.seed", 4)
    before = snapshot(project)
    first = project.popen([unlearn_bin(), "run", "--project", str(project.root)], work / "two-runs-first.log")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _descendant_stage(first.pid, "verify") \
            and first.poll() is None:
        time.sleep(0.2)
    start = time.monotonic()
    rc, out = project.run([unlearn_bin(), "run", "--project", str(project.root)], timeout=600)
    second_s = time.monotonic() - start
    first_rc = first.wait(900)
    after = snapshot(project)
    return judged("two `unlearn run` at once", before, after, clear_error(rc, out, r"(lock|already running)"),
                  recovered=first_rc == 0, note=f"second stopped after {second_s:.1f}s: {_tail(out)}")


def case_nan(base: Project, work: Path) -> Row:
    """A learning rate that overflows the weights: unlearning must stop on the non-finite loss, naming it."""
    project = clone(base, work / "nan")
    project.set_param("unlearn.finetune.lr", 1.0e30)
    project.set_param("unlearn.finetune.optimizer", "sgd")
    before = snapshot(project)
    rc, out = project.run([unlearn_bin(), "run", "--project", str(project.root)], timeout=900,
                          extra_env={"PREFECT_LOGGING_LEVEL": "INFO"})  # Prefect announces retries at INFO
    after = snapshot(project)
    retried = re.search(r"Retry \d+/\d+ will start", out) is not None
    return judged("NaN loss during unlearning", before, after,
                  clear_error(rc, out, r"(nan|non-finite)") and not retried,
                  note=("retried; " if retried else "") + _tail(out))


def case_corrupt(base: Project, work: Path, what: str) -> Row:
    """A corrupted checkpoint / manifest / certificate: the command that reads it names the file and fails; for
    a DVC output, ``dvc repro`` then rebuilds it byte for byte (reproducible outputs), so nothing is lost."""
    project = clone(base, work / f"corrupt-{what}")
    pristine = snapshot(project)
    rebuild = True
    if what == "checkpoint":  # the auditor's check names the model whose bytes no longer match
        target = project.root / "models/unlearned/finetune.pt"
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
        cmd = [unlearn_bin(), "certificate", "verify", str(project.root / "reports/certificates/finetune.json")]
        pattern = r"mismatch"
    elif what == "manifest":  # a stage that reads the prepared data checks its fingerprint
        target = project.root / "data/prepared/manifest.csv"
        lines = target.read_text().splitlines()
        lines[5] = lines[5].replace(",train,", ",test,") if ",train," in lines[5] else lines[5] + "x"
        target.write_text("\n".join(lines) + "\n")
        cmd = [sys.executable, "-m", "unlearn.stages.forget", "--data", "data/prepared", "--requests",
               "data/requests", "--out", str(work / "forget-out.json"), "--reference-pin",
               "data/requests/reference.json", "--reference-out", str(work / "reference-out.json")]
        pattern = r"(manifest|data/prepared)"
    else:  # a hand-flipped verdict: caught by the hash tag and by re-deriving the verdict from the evidence
        rebuild = False
        target = sorted((project.root / "reports/certificates").glob("*.json"))[0]
        cert = json.loads(target.read_text())
        cert["verdict"] = "fail" if cert.get("verdict") == "pass" else "pass"
        target.write_text(json.dumps(cert, indent=2, sort_keys=True) + "\n")
        cmd = [unlearn_bin(), "certificate", "verify", str(target)]
        pattern = r"(mismatch|verdict)"
    before = snapshot(project)
    rc, out = project.run(cmd, timeout=900)
    after = snapshot(project)
    recovered, note = None, _tail(out)
    if rebuild:
        rc2, out2 = project.run(["dvc", "repro"], timeout=900)
        after = snapshot(project)
        recovered = rc2 == 0 and after.files == pristine.files
        note += "; dvc repro rebuilt it byte for byte" if recovered else f"; dvc repro exit {rc2}: {_tail(out2)}"
        changed = not (after.files == pristine.files and after.versions == pristine.versions)
    else:
        changed = not unchanged(before, after)
    return judged(f"corrupted {what} ({target.relative_to(project.root)})", pristine, after,
                  clear_error(rc, out, pattern), same=not changed, recovered=recovered, note=note)


def _tail(output: str, n: int = 2) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^(error|ERROR)\b", ln) or "MISMATCH" in ln]
    return " | ".join((errors or lines)[-n:])[:300]


CASES: dict[str, Callable[[Project, Path], Row | None]] = {
    **{f"kill-{s}": (lambda st: lambda b, w: case_kill(b, w, st))(s) for s in STAGES},
    "mlflow-run": case_mlflow_unreachable_run,
    "mlflow-ingest": case_mlflow_unreachable_ingest,
    "mlflow-broken-ingest": case_mlflow_broken_ingest,
    "audit-missing-store": case_audit_unreachable,
    "enospc-stage-output": lambda b, w: case_enospc(b, w, "stage output"),
    "enospc-checkpoint": lambda b, w: case_enospc(b, w, "checkpoint"),
    "enospc-artifact": lambda b, w: case_enospc(b, w, "artifact upload"),
    "enospc-ledger": case_enospc_ledger,
    "two-runs": case_two_runs,
    "nan": case_nan,
    "corrupt-checkpoint": lambda b, w: case_corrupt(b, w, "checkpoint"),
    "corrupt-manifest": lambda b, w: case_corrupt(b, w, "manifest"),
    "corrupt-certificate": lambda b, w: case_corrupt(b, w, "certificate"),
}


def run_case(name: str, base: Project, work: Path) -> Row | None:
    start = time.perf_counter()
    row = CASES[name](base, work)
    if row is not None:
        row.seconds = time.perf_counter() - start
    return row


def table(rows: list[Row]) -> str:
    head = ("| fault | clear error | nothing changed that should not | data lost | requests wrongly done | "
            "orphan versions | RUNNING runs left | recovered by re-run | what it said |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    yn = {True: "y", False: "**n**", None: "n/a"}
    return head + "".join(
        f"| {r.fault} | {yn[r.clear_error]} | {yn[r.unchanged]} | {r.data_lost} | {r.wrongly_done} | {r.orphans} | "
        f"{r.stale_runs} | {yn[r.recovered]} | {r.note.replace('|', '/')} |\n" for r in rows)
