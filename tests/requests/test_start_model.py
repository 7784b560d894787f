"""The base stage: the model a run of sequential unlearning starts from (the original, or a pinned production
checkpoint from the local store, checked by sha256 and architecture)."""

import argparse
import shutil
from pathlib import Path

import pytest

from unlearn.config import Params
from unlearn.io import read_json, sha256_file, write_json
from unlearn.learners import build_learner
from unlearn.models.checkpoint import save_checkpoint
from unlearn.pretraining import learner_config
from unlearn.stages.base import main


def _ckpt(path, width=8):
    params = Params.model_validate({"pretrain": {"backbone": {"width": width}}})
    learner = build_learner(learner_config(params.pretrain, 8, 10))
    return save_checkpoint(path, learner, learner.config())


@pytest.fixture
def paths(tmp_path):
    ns = argparse.Namespace(original=tmp_path / "original.pt", start=tmp_path / "start.json",
                            store=tmp_path / "store", out=tmp_path / "base.pt", info=tmp_path / "base.json")
    _ckpt(ns.original)
    return ns


def refuses_tampered_then_missing(stored: Path, call, missing_message: str) -> None:
    """A pinned checkpoint whose bytes changed, then one that is gone, are each refused with a clear error."""
    stored.write_bytes(b"tampered")
    with pytest.raises(ValueError, match="store was altered"):
        call()
    stored.unlink()
    with pytest.raises(FileNotFoundError, match=missing_message):
        call()


def test_without_a_pin_the_base_is_the_original(paths):
    main(paths, Params())
    assert sha256_file(paths.out) == sha256_file(paths.original)
    assert read_json(paths.info) == {"from": "original", "version": None, "sha256": sha256_file(paths.original),
                                     "path": str(paths.out)}


def test_a_pinned_production_checkpoint_is_checked_and_copied(paths):
    sha = _ckpt(paths.store / "tmp.pt")
    shutil.move(paths.store / "tmp.pt", paths.store / f"{sha}.pt")
    write_json(paths.start, {"registered_model": "m", "version": "7", "model_sha256": sha, "forget_sha256": "f" * 64})
    main(paths, Params())
    assert sha256_file(paths.out) == sha
    info = read_json(paths.info)
    assert (info["from"], info["version"], info["sha256"]) == ("production", "7", sha)

    refuses_tampered_then_missing(paths.store / f"{sha}.pt", lambda: main(paths, Params()), "not in the local store")


def test_a_checkpoint_of_another_architecture_is_refused(paths):
    sha = _ckpt(paths.store / "tmp.pt", width=16)
    shutil.move(paths.store / "tmp.pt", paths.store / f"{sha}.pt")
    write_json(paths.start, {"registered_model": "m", "version": "3", "model_sha256": sha})
    with pytest.raises(ValueError, match="same architecture"):
        main(paths, Params())


def test_a_pinned_retrain_reference_must_be_in_the_store_intact_and_of_the_same_architecture(paths, tmp_path):
    """unlearn@retrain copies a pinned reference instead of retraining, checked like the base stage's pin."""
    from unlearn.stages.unlearn import main as unlearn_main

    sha = _ckpt(paths.store / "tmp.pt", width=16)
    shutil.move(paths.store / "tmp.pt", paths.store / f"{sha}.pt")
    reference = tmp_path / "reference.json"
    write_json(reference, {"source": "pinned", "model_sha256": sha, "status": "stale", "runs_old": 1,
                           "excluded": {"sha256": "e" * 64, "n": 2, "request_ids": [], "sample_ids": ["a", "b"]}})
    ns = argparse.Namespace(method="retrain", reference=str(reference), store=str(paths.store),
                            original=str(paths.original), out=str(tmp_path / "retrain.pt"),
                            metrics=str(tmp_path / "retrain.json"))
    with pytest.raises(ValueError, match="another model config"):
        unlearn_main(ns, Params())
    refuses_tampered_then_missing(paths.store / f"{sha}.pt", lambda: unlearn_main(ns, Params()),
                                  "delete data/requests/reference.json")
    assert not (tmp_path / "retrain.pt").exists()
