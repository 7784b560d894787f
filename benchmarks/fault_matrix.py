"""The fault matrix: every fault of tests/faults/harness.py against a fresh tiny project, one row each.

    python benchmarks/fault_matrix.py [--cases kill-verify,nan,...] [--out benchmarks/results/fault_matrix.md]
                                      [--records benchmarks/results/records/fault_matrix.jsonl]

Builds the baseline project once (digits, one deletion request done, ~2 min on 2 cores), then runs each case on
a copy of it (SIGKILL cases re-run the pipeline: 1-3 min each). Prints each row as it finishes and the table at
the end; exits 1 when a row breaks a guarantee (data lost, a request wrongly done, an orphan version, ...).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "faults"))

import harness  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(harness.CASES), help="comma-separated case names")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/fault_matrix.md"))
    parser.add_argument("--records", default=str(ROOT / "benchmarks/results/records/fault_matrix.jsonl"))
    parser.add_argument("--work", default=None, help="working folder (default: a temp folder)")
    parser.add_argument("--base", default=None, help="reuse a baseline project built by an earlier run")
    parser.add_argument("--from-records", nargs="+", default=None, metavar="JSONL",
                        help="write the table from recorded rows (the last row of each case wins), run nothing")
    ns = parser.parse_args()
    if ns.from_records:
        rows = rows_from_records([Path(f) for f in ns.from_records])
        Path(ns.out).write_text(document(rows, sum(r.seconds for r in rows)))
        print(harness.table(rows))
        return 0 if all(r.ok for r in rows) else 1
    names = [n for n in ns.cases.split(",") if n]
    unknown = [n for n in names if n not in harness.CASES]
    if unknown:
        print(f"error: unknown case(s) {unknown}; known: {', '.join(harness.CASES)}", file=sys.stderr)
        return 2
    work = Path(ns.work or tempfile.mkdtemp(prefix="unlearn-faults-"))
    start = time.perf_counter()
    if ns.base:
        base = harness.open_baseline(Path(ns.base).resolve())
    else:
        print(f"building the baseline project in {work / 'base'} ...", flush=True)
        base = harness.build_baseline(work / "base")
    print(f"baseline ready ({time.perf_counter() - start:.0f}s)", flush=True)
    rows = []
    Path(ns.records).parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        row = harness.run_case(name, base, work)
        if row is None:
            print(f"{name}: skipped (not possible on this machine)", flush=True)
            continue
        rows.append(row)
        print(f"{name}: {'ok' if row.ok else 'BROKEN'} ({row.seconds:.0f}s) {row.note}", flush=True)
        with open(ns.records, "a") as fh:
            fh.write(json.dumps({"case": name, **row.as_dict(), "at": datetime.now(timezone.utc).isoformat()}) + "\n")
    Path(ns.out).write_text(document(rows, sum(r.seconds for r in rows)))
    print(harness.table(rows))
    return 0 if all(r.ok for r in rows) else 1


def rows_from_records(files: list[Path]) -> list[harness.Row]:
    """The last recorded row of each case, in the order of ``harness.CASES``."""
    last: dict[str, dict] = {}
    for path in files:
        for line in path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                last[record["case"]] = record
    fields = set(harness.Row.__dataclass_fields__)
    return [harness.Row(**{k: v for k, v in last[c].items() if k in fields}) for c in harness.CASES if c in last]


def document(rows: list[harness.Row], seconds: float) -> str:
    return (f"# Fault matrix\n\n`python benchmarks/fault_matrix.py` on {platform.node() or 'this machine'} "
            f"({platform.processor() or platform.machine()}, 2 cores, other benchmark processes running beside it), "
            f"{datetime.now(timezone.utc):%Y-%m-%d}. Each fault is injected into a copy of a tiny digits project "
            "with one deletion request already `done` (tests/faults/harness.py says how each is injected and "
            "judged). A full disk is an injected `OSError(ENOSPC)` on writes to the named paths (a "
            "`sitecustomize` on the stage processes' `PYTHONPATH`), except for the ledger, which gets a real full "
            "32 MiB tmpfs. Must be 0: data lost, requests wrongly done, orphan versions, RUNNING runs left.\n\n"
            + harness.table(rows) + f"\n{sum(r.ok for r in rows)} of {len(rows)} rows keep every guarantee; "
            f"{seconds:.0f}s of cases (the baseline build not counted).\n")


if __name__ == "__main__":
    sys.exit(main())
