"""Checkpoint round trips through save_checkpoint / read_checkpoint / load_learner; reproducible bytes; the
architecture check against params."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from unlearn.io import sha256_bytes, sha256_file
from unlearn.learners import build_learner, load_learner
from unlearn.models.checkpoint import (architecture_diff, check_architecture, read_checkpoint, save_checkpoint,
                                       save_torch, torch_bytes)


def config(method: str, width: int = 4) -> dict:
    return {"method": method, "backbone": {"name": "small_cnn", "width": width}, "augment": "none",
            "in_channels": 1, "num_classes": 3, "temperature": 0.5, "projection_dim": 8, "queue_size": 16,
            "momentum": 0.9, "training": {"epochs": 2, "batch_size": 8, "lr": 1e-2, "weight_decay": 0.0,
                                          "optimizer": "adam", "seed": 0}}


@pytest.mark.parametrize("method", ["supervised", "simclr", "moco", "byol"])
def test_round_trip_gives_identical_outputs(tmp_path, method):
    torch.manual_seed(0)
    learner = build_learner(config(method))
    x = torch.rand(4, 1, 8, 8)
    learner.training_loss(x, torch.zeros(4, dtype=torch.long))  # moves BN statistics and the MoCo queue
    learner.after_step()
    learner.eval()
    path = tmp_path / "model.pt"
    digest = save_checkpoint(path, learner, learner.config())
    assert len(digest) == 64
    assert read_checkpoint(path)["config"] == config(method)
    loaded, payload = load_learner(path)
    loaded.eval()
    assert payload["config"] == learner.config()
    torch.testing.assert_close(loaded.features(x), learner.features(x), rtol=0, atol=0)
    for name, value in learner.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_truncated_file_names_the_path(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, build_learner(config("simclr")), config("simclr"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="model.pt"):
        load_learner(path)


def test_wrong_architecture_is_rejected(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, build_learner(config("supervised", width=8)), config("supervised", width=4))
    with pytest.raises(ValueError, match="do not fit the architecture"):
        load_learner(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "absent.pt")


def test_moco_queue_survives_round_trip(tmp_path):
    torch.manual_seed(0)
    learner = build_learner(config("moco"))
    learner.queue.enqueue(F.normalize(torch.randn(5, 8), dim=1))
    path = tmp_path / "moco.pt"
    save_checkpoint(path, learner, learner.config())
    loaded, _ = load_learner(path)
    assert int(loaded.queue.ptr) == 5 and torch.equal(loaded.queue.keys, learner.queue.keys)


def test_identical_weights_give_identical_bytes_whatever_the_path(tmp_path):
    """Issue 12 defect 5: torch.save named the zip records after the (random) temp file of the atomic write."""
    torch.manual_seed(0)
    learner = build_learner(config("simclr"))
    (tmp_path / "b").mkdir()
    first = save_checkpoint(tmp_path / "a.pt", learner, learner.config())
    second = save_checkpoint(tmp_path / "b" / "other-name.pt", learner, learner.config())
    assert first == second == sha256_file(tmp_path / "a.pt") == sha256_file(tmp_path / "b" / "other-name.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b" / "other-name.pt").read_bytes()
    # and a different weight gives different bytes: the hash is not constant
    with torch.no_grad():
        next(learner.parameters()).add_(1.0)
    assert save_checkpoint(tmp_path / "c.pt", learner, learner.config()) != first


def test_checkpoint_bytes_are_the_same_in_a_fresh_process(tmp_path):
    """The bytes depend on nothing process-specific (no temp name, no id, no time)."""
    code = ("import sys, torch; from unlearn.learners import build_learner; "
            "from unlearn.models.checkpoint import save_checkpoint; torch.manual_seed(0); "
            f"c = {config('supervised')!r}; print(save_checkpoint(sys.argv[1], build_learner(c), c))")
    digests = {subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{i}.pt")], check=True,
                              capture_output=True, text=True).stdout.strip() for i in range(2)}
    assert len(digests) == 1
    loaded, _ = load_learner(tmp_path / "0.pt")
    assert loaded.config() == config("supervised")


def test_save_torch_bytes_load_with_weights_only(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "history": [1.0, 0.5]}
    digest = save_torch(tmp_path / "state.pt", state)
    assert digest == sha256_bytes(torch_bytes(state)) == sha256_file(tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    assert torch.equal(loaded["w"], state["w"]) and loaded["history"] == [1.0, 0.5]
    assert not list(tmp_path.glob(".*.tmp"))


def test_every_torch_save_in_the_package_goes_through_save_torch():
    """One serialiser: a direct ``torch.save(obj, path)`` would embed the (temp) file name again."""
    src = Path(__file__).resolve().parents[2] / "src" / "unlearn"
    offenders = [str(p.relative_to(src)) for p in sorted(src.rglob("*.py"))
                 if "torch.save(" in p.read_text(encoding="utf-8") and p.name != "checkpoint.py"]
    assert offenders == []


def test_architecture_check_names_the_file_and_every_differing_key(tmp_path):
    stored = config("supervised", width=4)
    expected = {**config("supervised", width=8), "num_classes": 10,
                "training": {**stored["training"], "epochs": 99}}  # the training budget is not architecture
    with pytest.raises(ValueError) as err:
        check_architecture(tmp_path / "original.pt", stored, expected)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'original.pt'}: ") and "\n" not in msg
    assert "backbone.width: 4 in the checkpoint, 8 in params.yaml pretrain" in msg and "num_classes: 3" in msg
    assert "training" not in msg and "temperature" not in msg
    check_architecture(tmp_path / "original.pt", stored, {**stored, "training": {"epochs": 1}})  # no error


def test_architecture_diff_reads_lists_and_tuples_alike_and_ignores_bookkeeping():
    stored = {"method": "simclr", "backbone": {"name": "small_cnn", "blocks": [1, 1]}, "seconds": 3.2}
    assert architecture_diff(stored, {"method": "simclr", "backbone": {"name": "small_cnn", "blocks": (1, 1)}}) == {}
    assert architecture_diff(stored, {"method": "byol", "backbone": {"name": "small_cnn", "blocks": [2, 2]},
                                      "projection_dim": 64}) == {
        "method": ("simclr", "byol"), "backbone.blocks": ([1, 1], [2, 2]), "projection_dim": (None, 64)}


def test_the_unlearn_stage_refuses_a_base_model_of_another_architecture(tmp_path):
    """Issue 12 defect 7: a valid checkpoint of another architecture was unlearned without complaint."""
    from types import SimpleNamespace

    import numpy as np

    from unlearn.config import Params
    from unlearn.pretraining import learner_config
    from unlearn.stages.unlearn import load_base_model

    params = Params()
    data = SimpleNamespace(images=np.zeros((2, 8, 8, 1), np.uint8), classes=[str(c) for c in range(10)])
    ours = learner_config(params.pretrain, 1, 10)
    path = tmp_path / "base.pt"
    save_checkpoint(path, build_learner(ours), ours)
    assert load_base_model(str(path), params, data, torch.device("cpu")).config() == ours

    other = {**ours, "backbone": {**ours["backbone"], "width": 16}, "num_classes": 3}
    save_checkpoint(path, build_learner(other), other)
    with pytest.raises(ValueError) as err:
        load_base_model(str(path), params, data, torch.device("cpu"))
    msg = str(err.value)
    assert msg.startswith(f"{path}: checkpoint of another architecture") and "\n" not in msg
    width = params.pretrain.backbone.width
    assert f"backbone.width: 16 in the checkpoint, {width} in params.yaml pretrain" in msg and "num_classes: 3" in msg
