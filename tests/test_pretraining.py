"""Pretraining: the loss drops, an interrupted run resumes to the same weights, a foreign state is refused."""

import pytest
import torch

from unlearn.pretraining import train_from_scratch

CONFIG = {"method": "supervised", "backbone": {"name": "small_cnn", "width": 4}, "augment": "none",
          "in_channels": 1, "num_classes": 3,
          "training": {"epochs": 4, "batch_size": 8, "lr": 0.01, "weight_decay": 0.0, "optimizer": "adam",
                       "seed": 0}}


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(32, 1, 8, 8, generator=g), torch.randint(0, 3, (32,), generator=g)


class Interrupt(Exception):
    pass


COSINE = {**CONFIG, "training": {**CONFIG["training"], "lr_schedule": "cosine"}}


@pytest.mark.parametrize("config", [CONFIG, COSINE], ids=["constant-lr", "cosine-lr"])
def test_interrupted_training_resumes_to_identical_weights(tmp_path, config):
    x, y = _data()
    straight, loss_straight = train_from_scratch(config, x, y)
    state = tmp_path / "resume.pt"

    def crash(epoch, loss):
        if epoch == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_from_scratch(config, x, y, resume_path=state, checkpoint_every=2, on_epoch_end=crash)
    assert state.is_file()
    resumed, loss_resumed = train_from_scratch(config, x, y, resume_path=state, checkpoint_every=2)
    assert not state.exists()
    assert loss_resumed == pytest.approx(loss_straight)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_state_from_another_config_is_refused(tmp_path):
    x, y = _data()
    state = tmp_path / "resume.pt"
    with pytest.raises(Interrupt):
        train_from_scratch(CONFIG, x, y, resume_path=state, checkpoint_every=1,
                           on_epoch_end=lambda e, l: (_ for _ in ()).throw(Interrupt) if e == 2 else None)
    other = {**CONFIG, "training": {**CONFIG["training"], "lr": 0.02}}
    with pytest.raises(ValueError, match="different config"):
        train_from_scratch(other, x, y, resume_path=state)
    state.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupted"):
        train_from_scratch(CONFIG, x, y, resume_path=state)


def test_monitor_is_called_on_schedule():
    x, y = _data()
    seen = []
    train_from_scratch(CONFIG, x, y, monitor=lambda m, e: seen.append(e), monitor_every=3)
    assert seen == [3, 4]


def test_cosine_schedule_decays_per_epoch_and_constant_is_flat():
    from unlearn.pretraining import scheduled_lr

    lrs = [scheduled_lr(0.1, e, 5, "cosine") for e in range(1, 6)]
    assert lrs[0] == 0.1 and all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 0.01
    assert [scheduled_lr(0.1, e, 5) for e in range(1, 6)] == [0.1] * 5
    with pytest.raises(ValueError, match="unknown lr schedule"):
        scheduled_lr(0.1, 1, 5, "step")


def test_cosine_run_differs_from_a_constant_lr_run():
    x, y = _data()
    seen = []
    cosine, _ = train_from_scratch(COSINE, x, y, on_epoch_end=lambda e, loss: seen.append(e))
    constant, _ = train_from_scratch(CONFIG, x, y)
    assert seen == [1, 2, 3, 4]
    assert any(not torch.equal(a, b) for a, b in zip(cosine.state_dict().values(), constant.state_dict().values()))


def test_learner_config_records_the_schedule_only_when_not_constant():
    from unlearn.config import PretrainParams
    from unlearn.pretraining import learner_config

    assert "lr_schedule" not in learner_config(PretrainParams(), 1, 10)["training"]
    assert learner_config(PretrainParams(lr_schedule="cosine"), 1, 10)["training"]["lr_schedule"] == "cosine"
