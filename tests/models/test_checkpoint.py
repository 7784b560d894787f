"""Checkpoint round trips through save_checkpoint / read_checkpoint / load_learner."""

import pytest
import torch
import torch.nn.functional as F

from unlearn.learners import build_learner, load_learner
from unlearn.models.checkpoint import read_checkpoint, save_checkpoint


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
