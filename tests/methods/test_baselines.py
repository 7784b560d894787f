"""The baseline unlearning methods on tiny models: each runs, moves the weights and leaves the original alone;
family restrictions, SalUn's mask, the ℓ1 schedule, SCRUB's KL and GA's effect on an overfit model."""

import copy
import importlib
from typing import get_args

import pytest
import torch
import torch.nn.functional as F

from unlearn.config import (AlignmentCalibrationParams, GradientAscentParams, L1SparseParams, MethodName,
                            NegGradPlusParams, RandomLabelsParams, RetrainParams, SalUnParams, ScrubParams,
                            UnlearnParams)
from unlearn.learners import build_learner
from unlearn.methods import METHODS, UnlearningData, get_method
from unlearn.methods.random_labels import wrong_labels
from unlearn.methods.salun import forget_gradient_magnitude, masked_gradients, saliency_masks
from unlearn.methods.scrub import distill_kl
from unlearn.training import fit, make_optimizer, seed_everything, trainable

l1_module = importlib.import_module("unlearn.methods.l1_sparse")  # the package attribute is the function

BUDGET = dict(epochs=1, lr=1e-2, batch_size=8)
PARAMS = {
    "ga": GradientAscentParams(**BUDGET),
    "neggrad_plus": NegGradPlusParams(**BUDGET, alpha=0.9),
    "rl": RandomLabelsParams(**BUDGET),
    "l1_sparse": L1SparseParams(**BUDGET, gamma=1e-3),
    "scrub": ScrubParams(**BUDGET, msteps=1),
    "salun": SalUnParams(**BUDGET),
    "muc": AlignmentCalibrationParams(**BUDGET),
}
SUPERVISED_ONLY = ["rl", "scrub", "salun"]
ENCODER_ONLY = ["muc"]
BOTH = ["ga", "neggrad_plus", "l1_sparse"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/methods/conftest.py


def tiny_learner(method: str, num_classes: int = 3):
    cfg = {"method": method, "backbone": {"name": "small_cnn", "width": 4}, "augment": "digits", "in_channels": 1,
           "num_classes": num_classes, "temperature": 0.5, "projection_dim": 8,
           "training": {"epochs": 1, "batch_size": 8, "lr": 1e-2, "weight_decay": 0.0, "optimizer": "adam",
                        "seed": 0}}
    return build_learner(cfg)


def tiny_data(n_retain: int = 32, n_forget: int = 8, n_reference: int = 16, num_classes: int = 3) -> UnlearningData:
    def split(n):
        return torch.rand(n, 1, 8, 8), torch.randint(0, num_classes, (n,))
    return UnlearningData(*split(n_retain), *split(n_forget), *split(n_reference))


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same(before: dict, model) -> None:
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key


@pytest.mark.parametrize("name,family", [(m, "supervised") for m in SUPERVISED_ONLY + BOTH]
                         + [(m, "simclr") for m in ENCODER_ONLY + BOTH])
def test_method_moves_weights_and_leaves_original_untouched(name, family):
    seed_everything(0)
    original, data = tiny_learner(family), tiny_data()
    before = snapshot(original)
    unlearned = get_method(name)(original, data, PARAMS[name], torch.Generator().manual_seed(0))
    assert unlearned is not original and type(unlearned) is type(original)
    assert_same(before, original)
    moved = [k for k, p in unlearned.named_parameters() if not torch.equal(p, dict(original.named_parameters())[k])]
    assert moved, f"{name} did not change any weight"
    assert all(torch.isfinite(p).all() for p in unlearned.parameters())


@pytest.mark.parametrize("name,family", [(m, "simclr") for m in SUPERVISED_ONLY]
                         + [(m, "supervised") for m in ENCODER_ONLY])
def test_method_rejects_the_other_family_by_name(name, family):
    original = tiny_learner(family)
    with pytest.raises(ValueError, match=rf"^{name}: .*\(got {family}\)"):
        get_method(name)(original, tiny_data(), PARAMS[name], torch.Generator().manual_seed(0))


def test_rl_message_names_method_and_family():
    with pytest.raises(ValueError, match=r"rl: random labels needs a supervised model \(got simclr\)"):
        get_method("rl")(tiny_learner("simclr"), tiny_data(), PARAMS["rl"], torch.Generator())


@pytest.mark.parametrize("name", ["ga", "neggrad_plus", "rl", "scrub", "salun"])
def test_empty_forget_set_is_a_clear_error(name):
    data = tiny_data(n_forget=0)
    with pytest.raises(ValueError, match=rf"^{name}: the forget set is empty"):
        get_method(name)(tiny_learner("supervised"), data, PARAMS[name], torch.Generator())


def test_muc_cosine_calibration_runs_without_reference():
    seed_everything(0)
    original, data = tiny_learner("simclr"), tiny_data(n_reference=0)
    with pytest.raises(ValueError, match="muc: the reference"):
        get_method("muc")(original, data, PARAMS["muc"], torch.Generator())
    params = AlignmentCalibrationParams(**BUDGET, calibration="cosine")
    unlearned = get_method("muc")(original, data, params, torch.Generator().manual_seed(0))
    assert any(not torch.equal(a, b) for a, b in zip(unlearned.parameters(), original.parameters()))


def test_retrain_uses_the_originals_seed_unless_given_another():
    original, data = tiny_learner("supervised"), tiny_data()
    retrain = get_method("retrain")

    def weights(params: RetrainParams) -> list[torch.Tensor]:
        return [p.detach().clone() for p in retrain(original, data, params, torch.Generator()).parameters()]

    default, again, reseeded = weights(RetrainParams()), weights(RetrainParams()), weights(RetrainParams(seed=7))
    assert all(torch.equal(a, b) for a, b in zip(default, again))  # the training seed fixes it, not the caller
    assert any(not torch.equal(a, b) for a, b in zip(default, reseeded))


def test_unknown_method_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown unlearning method 'magic'; available: .*salun.*scrub"):
        get_method("magic")


def test_registry_and_params_schema_agree():
    assert set(get_args(MethodName)) == set(METHODS)
    defaults = UnlearnParams(methods=["retrain", *PARAMS])
    for name in METHODS:
        assert getattr(defaults, name) is not None


# ----- SalUn -----------------------------------------------------------------------------------------------------

def test_saliency_masks_keep_the_largest_share_over_all_tensors():
    a, b = torch.tensor([[5.0, 0.1], [0.2, 4.0]]), torch.tensor([3.0, 0.3, 0.4, 2.0])
    masks = saliency_masks([a, b], 0.5)
    assert masks[0].tolist() == [[1.0, 0.0], [0.0, 1.0]] and masks[1].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert sum(m.sum().item() for m in saliency_masks([a, b], 0.25)) == 2
    with pytest.raises(ValueError, match="mask ratio"):
        saliency_masks([a], 0.0)


def test_masked_gradients_zero_masked_entries_and_remove_hooks():
    w = torch.nn.Parameter(torch.ones(4))
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    with masked_gradients([w], [mask]):
        (w * torch.arange(4.0)).sum().backward()
    assert w.grad.tolist() == [0.0, 0.0, 2.0, 0.0]
    w.grad = None
    (w * torch.arange(4.0)).sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_salun_leaves_non_salient_weights_exactly_unchanged():
    seed_everything(0)
    original, data = tiny_learner("supervised"), tiny_data()
    params = SalUnParams(epochs=2, lr=1e-2, batch_size=8, mask_ratio=0.3)
    weights = trainable(original)
    masks = saliency_masks(forget_gradient_magnitude(original, weights, data.forget_x, data.forget_y, 8), 0.3)
    unlearned = get_method("salun")(original, data, params, torch.Generator().manual_seed(0))
    salient_moved = 0
    for old, new, mask in zip(weights, trainable(unlearned), masks):
        frozen = mask == 0
        assert torch.equal(new[frozen], old[frozen])
        salient_moved += int((new[~frozen] != old[~frozen]).sum())
    assert salient_moved > 0
    kept = sum(m.sum().item() for m in masks) / sum(m.numel() for m in masks)
    assert kept == pytest.approx(0.3, abs=1e-3)
    assert all(not p._backward_hooks for p in unlearned.parameters())


def test_wrong_labels_are_never_the_true_label():
    y = torch.randint(0, 4, (500,))
    z = wrong_labels(y, 4, torch.Generator().manual_seed(0))
    assert (z != y).all() and z.min() >= 0 and z.max() <= 3
    assert set(z[y == 0].tolist()) == {1, 2, 3}


# ----- ℓ1-sparse ------------------------------------------------------------------------------------------------

def test_l1_weight_decays_linearly_per_epoch():
    assert [l1_module.l1_weight(0.2, e, 5) for e in range(5)] == pytest.approx([0.2, 0.16, 0.12, 0.08, 0.04])
    with pytest.raises(ValueError):
        l1_module.l1_weight(0.2, 5, 5)


def test_l1_sparse_applies_the_epoch_schedule(monkeypatch):
    seen = []

    def recording(gamma, epoch, epochs):
        seen.append(epoch)
        return gamma * (1 - epoch / epochs)

    monkeypatch.setattr(l1_module, "l1_weight", recording)
    seed_everything(0)
    params = L1SparseParams(epochs=3, lr=1e-2, batch_size=8, gamma=1e-3)
    l1_module.l1_sparse(tiny_learner("supervised"), tiny_data(), params, torch.Generator().manual_seed(0))
    assert seen == [0] * 4 + [1] * 4 + [2] * 4  # 32 retain samples / batch 8 = 4 steps per epoch


def test_l1_penalty_shrinks_the_weights():
    def l1_after(gamma):
        seed_everything(0)
        original, data = tiny_learner("supervised"), tiny_data()
        params = L1SparseParams(epochs=2, lr=1e-2, batch_size=8, optimizer="sgd", gamma=gamma)
        model = l1_module.l1_sparse(original, data, params, torch.Generator().manual_seed(0))
        return sum(p.abs().sum().item() for p in model.parameters())

    assert l1_after(0.05) < l1_after(0.0)


# ----- SCRUB ----------------------------------------------------------------------------------------------------

def test_distill_kl_matches_a_naive_reference():
    torch.manual_seed(0)
    s, t, temp = torch.randn(5, 4), torch.randn(5, 4), 4.0
    p_t, p_s = torch.softmax(t / temp, 1), torch.softmax(s / temp, 1)
    naive = temp ** 2 * (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    torch.testing.assert_close(distill_kl(s, t, temp), naive)
    assert distill_kl(t, t, temp).abs().item() < 1e-6


# ----- GA behaviour ---------------------------------------------------------------------------------------------

def test_gradient_ascent_raises_the_forget_loss_of_an_overfit_model():
    seed_everything(0)
    model = tiny_learner("supervised", num_classes=2)
    model.augment = torch.nn.Identity()
    data = tiny_data(n_retain=24, n_forget=8, num_classes=2)
    x, y = torch.cat([data.retain_x, data.forget_x]), torch.cat([data.retain_y, data.forget_y])
    fit(model, lambda idx: model.training_loss(x[idx], y[idx]), len(x), epochs=60, batch_size=8,
        optimizer=make_optimizer(model.parameters(), "adam", 2e-2), generator=torch.Generator().manual_seed(0))

    def forget_loss(m):
        with torch.no_grad():
            return F.cross_entropy(m.eval().logits(data.forget_x), data.forget_y).item()

    before = forget_loss(model)
    assert before < 0.1, "the model should fit its training set"
    unlearned = get_method("ga")(copy.deepcopy(model), data,
                                 GradientAscentParams(epochs=3, lr=1e-2, batch_size=8),
                                 torch.Generator().manual_seed(0))
    assert forget_loss(unlearned) > 5 * before, (before, forget_loss(unlearned))
