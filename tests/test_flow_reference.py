"""The deletion-request flow's cadence tasks on a project in miniature (no training): which runs pin the stored
retrain reference, which retrain it, and what is recorded (``requests.retrain_every``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from prefect.logging import disable_run_logger

from unlearn.io import read_json, sha256_file, write_json
from unlearn.requests.ingest import accepted_record

ROOT = Path(__file__).resolve().parents[1]
FP = "f" * 64


@pytest.fixture(scope="module")
def flow():
    spec = importlib.util.spec_from_file_location("flow_under_test", ROOT / "flows/deletion_requests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _project(tmp_path: Path, every: int) -> Path:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"requests": {"retrain_every": every}}))
    write_json(tmp_path / "data/prepared/dataset.json", {"fingerprint": FP})
    return tmp_path


def _run(flow, proj: Path, requests: dict[str, list[str]]) -> dict:
    """One run: accept ``requests``, choose; when it retrains, fake unlearn@retrain's outputs and record them."""
    record = accepted_record(requests, FP)
    write_json(proj / "data/requests/accepted.json", record)
    with disable_run_logger():
        ref = flow.choose_reference.fn(str(proj))
        if ref["refresh"]:
            model = proj / "models/unlearned/retrain.pt"
            model.parent.mkdir(parents=True, exist_ok=True)
            model.write_bytes(record["sha256"].encode())  # a distinct "checkpoint" per forget set
            write_json(proj / "reports/unlearn/retrain.json", {"forget_sha256": record["sha256"],
                                                               "sha256": sha256_file(model),
                                                               "reference": {"source": "retrained"}})
            flow.record_reference.fn(str(proj), record["sha256"])
    return ref


def test_runs_pin_the_stored_reference_between_refreshes(flow, tmp_path):
    proj = _project(tmp_path, every=2)
    requests = {"r-1": ["s-1", "s-2"]}
    assert _run(flow, proj, requests)["refresh"]
    current = read_json(proj / "models/references/current.json")
    assert current["runs"] == 1 and current["excluded"]["request_ids"] == ["r-1"]
    assert sha256_file(proj / f"models/references/{current['model_sha256']}.pt") == current["model_sha256"]

    requests["r-2"] = ["s-3"]
    ref = _run(flow, proj, requests)
    assert not ref["refresh"] and ref["runs_old"] == 1
    pin = read_json(proj / "data/requests/reference.json")
    assert (pin["model_sha256"], pin["runs_old"]) == (current["model_sha256"], 1)
    assert pin["excluded"]["sample_ids"] == ["s-1", "s-2"]

    requests["r-3"] = ["s-4", "s-5"]
    assert _run(flow, proj, requests)["refresh"]  # it has served 2 runs
    assert not (proj / "data/requests/reference.json").exists()
    assert read_json(proj / "models/references/current.json")["excluded"]["request_ids"] == ["r-1", "r-2", "r-3"]


def test_every_one_pins_nothing_and_keeps_no_record(flow, tmp_path):
    proj = _project(tmp_path, every=2)
    _run(flow, proj, {"r-1": ["s-1", "s-2"]})
    (proj / "params.yaml").write_text(yaml.safe_dump({"requests": {"retrain_every": 1}}))
    assert _run(flow, proj, {"r-1": ["s-1", "s-2"], "r-2": ["s-3"]})["refresh"]
    assert not (proj / "data/requests/reference.json").exists()
    assert not (proj / "models/references/current.json").exists()
