"""Issue 12 defect 9: one clear line instead of a traceback, and no Prefect retry of a deterministic failure."""

from __future__ import annotations

import errno
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from unlearn.stages import common
from unlearn.training import NonFiniteLossError, fit

ROOT = Path(__file__).resolve().parents[1]


def test_a_nan_loss_names_the_method_epoch_and_step():
    model = nn.Linear(2, 1)
    x = torch.randn(8, 2)
    calls = []

    def loss(idx):
        calls.append(1)
        out = model(x[idx]).mean()
        return out * float("nan") if len(calls) == 3 else out

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError) as err:
        fit(model, loss, 8, epochs=2, batch_size=4, optimizer=opt, generator=torch.Generator().manual_seed(0),
            desc="gp-memgp")
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert "gp-memgp" in msg and "nan" in msg and "epoch 2/2" in msg and "step 1/2" in msg and "\n" not in msg


def _stage(tmp_path, monkeypatch, raise_what, params_bytes=b"{}\n"):
    params = tmp_path / "params.yaml"
    params.write_bytes(params_bytes)
    monkeypatch.setattr(sys, "argv", ["stage", "--params", str(params)])

    def main(ns, p):
        raise raise_what

    with pytest.raises(SystemExit) as exit_:
        common.run(main, common.parser("a stage"))
    return exit_.value.code


@pytest.mark.parametrize("exc, code, words", [
    (ValueError("forget.json: missing key 'sample_ids'"), 2, "forget.json: missing key 'sample_ids'"),
    (FileNotFoundError("models/original.pt: file not found"), 2, "models/original.pt: file not found"),
    (NonFiniteLossError("gp-memgp: loss became nan at epoch 1/5, step 3/14; lower the lr"), 2, "gp-memgp"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/models/gp.pt"), 2,
     "/data/models/gp.pt: No space left on device"),
    (OSError(errno.ECONNREFUSED, "Connection refused"), 1, "Connection refused"),
])
def test_stage_errors_are_one_line_with_an_exit_code_that_says_whether_to_retry(tmp_path, monkeypatch, capsys,
                                                                                 exc, code, words):
    assert _stage(tmp_path, monkeypatch, exc) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err and "Traceback" not in err


def test_a_disk_full_error_without_a_path_still_says_what_happened(tmp_path, monkeypatch, capsys):
    assert _stage(tmp_path, monkeypatch, OSError(errno.ENOSPC, "No space left on device")) == 2
    assert capsys.readouterr().err.strip() == "error: No space left on device"


def test_a_non_utf8_params_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    assert _stage(tmp_path, monkeypatch, AssertionError("not reached"), b"seed: \xff\n") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "params.yaml" in err and "not UTF-8" in err and "\n" not in err


def test_the_cli_prints_one_line_for_bad_params(tmp_path, capsys):
    from unlearn.cli import main

    bad = tmp_path / "params.yaml"
    bad.write_text("pretrain:\n  seed: -1\n")
    assert main(["check-params", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: pretrain.seed") and "\n" not in err


@pytest.fixture(scope="module")
def pipeline_module():
    spec = importlib.util.spec_from_file_location("pipeline_under_test", ROOT / "flows/pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stage_exit_code_is_read_through_dvc(pipeline_module):
    """``dvc repro`` exits 255 whatever the stage did; the stage's own code is in DVC's last error line."""
    out = "error: boom\nERROR: failed to reproduce 's': failed to run: python s.py, exited with 2\n"
    assert pipeline_module.stage_exit_code(out, 255) == 2
    assert pipeline_module.stage_exit_code("ERROR: ... exited with -9", 255) == -9
    assert pipeline_module.stage_exit_code("ERROR: unexpected error", 255) == 255


@pytest.mark.parametrize("code, retry", [(2, False), (1, True), (-9, True), (255, True)])
def test_prefect_retries_only_failures_a_retry_can_fix(pipeline_module, code, retry):
    exc = pipeline_module.StageFailed("unlearn", 255, "error: x", stage_code=code)
    assert pipeline_module.retryable(exc) is retry
    assert pipeline_module.retryable(RuntimeError("transient")) is True


def test_a_stage_failure_reads_as_one_line_with_the_stage_error(pipeline_module):
    exc = pipeline_module.StageFailed("unlearn", 255, "2026 INFO x\nerror: gp-memgp: loss became nan\nERROR: failed "
                                      "to reproduce 'unlearn@gp': failed to run: python ..., exited with 2",
                                      stage_code=2)
    assert exc.summary() == "stage 'unlearn' failed (exit 2): gp-memgp: loss became nan"


@pytest.mark.parametrize("pin", [[1, 2], {"registered_model": "m", "version": 1}])
def test_a_malformed_start_pin_is_one_error_naming_it(tmp_path, pin):
    import argparse
    import json

    from unlearn.config import Params
    from unlearn.stages.base import main

    start = tmp_path / "start.json"
    start.write_text(json.dumps(pin))
    ns = argparse.Namespace(start=str(start), store=str(tmp_path / "store"), original=str(tmp_path / "o.pt"),
                            out=str(tmp_path / "base.pt"), info=str(tmp_path / "base.json"))
    with pytest.raises(ValueError) as err:
        main(ns, Params())
    assert str(start) in str(err.value) and "model_sha256" in str(err.value)
    assert not (tmp_path / "base.pt").exists() and not (tmp_path / "base.json").exists()
