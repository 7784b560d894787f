"""The command line's own surface: --version, and `unlearn report` outside a project says what to run first."""

from __future__ import annotations

import pytest

from unlearn.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("unlearn ")


def test_report_outside_a_project_says_what_to_run_first(tmp_path, capsys):
    assert main(["report", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "unlearn run" in err and "summary.json" in err and "\n" not in err


def test_report_reads_the_project_summary(tmp_path, capsys):
    import json

    (tmp_path / "reports").mkdir()
    rows = [{"model": "original", "UA": 0.0, "RA": 100.0, "TA": 96.9, "mia_efficacy": 0.04, "attack_auc": 0.6,
             "attack": "lira", "seconds": 1.0, "verdict": "caught (control)"}]
    (tmp_path / "reports/summary.json").write_text(json.dumps({"rows": rows}))
    assert main(["report", "--project", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["model"] == "original"
