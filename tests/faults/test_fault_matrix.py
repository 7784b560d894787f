"""The fault matrix in CI: each fault injected into a copy of one tiny project must end with a clear error (or a
clean recovery by re-running), nothing changed that should not, no data lost, no request wrongly ``done``, no
orphan registry version and no run left ``RUNNING``. ``benchmarks/fault_matrix.py`` runs every case (SIGKILL in
every stage included) and commits the table; this runs the cases that guard the defects of the audit issue."""

from __future__ import annotations

import pytest

from harness import build_baseline, run_case

pytestmark = pytest.mark.slow

# The benchmark runs every case. In CI: the cases that guard the audit issue's defects and have no other test;
# two runs at once and a NaN loss are covered end to end by tests/test_run_lock.py and tests/test_stage_errors.py.
CI_CASES = ["kill-verify", "mlflow-run", "mlflow-broken-ingest", "audit-missing-store", "enospc-stage-output",
            "enospc-ledger", "corrupt-checkpoint", "corrupt-certificate"]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return build_baseline(tmp_path_factory.mktemp("faults") / "base")


@pytest.mark.parametrize("case", CI_CASES)
def test_fault(case, baseline, tmp_path):
    row = run_case(case, baseline, tmp_path)
    if row is None:
        pytest.skip(f"{case}: mounting a small tmpfs is not permitted here (needs root and CAP_SYS_ADMIN)")
    assert row.data_lost == 0, row
    assert row.wrongly_done == 0, row
    assert row.orphans == 0, row
    assert row.stale_runs == 0, row
    assert row.unchanged, row
    assert row.clear_error, row
    assert row.recovered is not False, row
