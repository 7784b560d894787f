"""The gradient-penalty term: analytic input gradient on a linear softmax model, finite differences for the
double back-propagation, and the method's effect on a deliberately overfit tiny model."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn.config import GradientPenaltyParams
from unlearn.methods.gradient_penalty import signal_and_input_grad_norm


class LinearSoftmax(nn.Module):
    """Duck-typed learner: logits = W vec(x) + b; s(x) = cross-entropy."""

    family = "supervised"

    def __init__(self, d: int, k: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d, k).double()

    def signal_views(self, x):
        return [x]

    def signal(self, views, y):
        return F.cross_entropy(self.linear(views[0].flatten(1)), y, reduction="none")


def test_input_gradient_norm_equals_analytic_on_linear_softmax():
    torch.manual_seed(0)
    model = LinearSoftmax(12, 4)
    x, y = torch.randn(6, 1, 3, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])
    _, gnorm = signal_and_input_grad_norm(model, x, y, create_graph=False)
    p = torch.softmax(model.linear(x.flatten(1)), dim=1)
    analytic = ((p - F.one_hot(y, 4).double()) @ model.linear.weight).norm(dim=1)  # ||W^T (p - y)||
    torch.testing.assert_close(gnorm, analytic)


def test_double_backprop_matches_finite_differences():
    torch.manual_seed(1)
    model = LinearSoftmax(6, 3)
    x, y, tau = torch.randn(5, 1, 2, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1]), 0.3

    def penalty():
        _, g = signal_and_input_grad_norm(model, x, y, create_graph=True)
        return (g.mean() - tau) ** 2

    penalty().backward()
    analytic = model.linear.weight.grad.clone()
    eps, numeric = 1e-6, torch.zeros_like(analytic)
    w = model.linear.weight.data.view(-1)
    for idx in range(analytic.numel()):
        w[idx] += eps
        up = penalty().item()
        w[idx] -= 2 * eps
        down = penalty().item()
        w[idx] += eps
        numeric.view(-1)[idx] = (up - down) / (2 * eps)
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_signal_uses_eval_mode_and_restores_training_flag():
    model = LinearSoftmax(4, 2).train()
    signal_and_input_grad_norm(model, torch.randn(3, 1, 2, 2, dtype=torch.float64), torch.tensor([0, 1, 0]))
    assert model.training


def test_gp_params_paper_preset_is_the_design_starting_point():
    p = GradientPenaltyParams(preset="paper")
    assert (p.stage, p.lambda_gp, p.mu) == ("memgp", 1.0, 0.1)
    d = GradientPenaltyParams()  # the measured best: a descending output term, no gradient penalty
    assert (d.match, d.lambda_gp, d.walk) == ("outputs", 0.0, "forget")


# --- variants: gradient with respect to the penultimate features, walking the forget set, the matched statistic,
# --- and the method's effect on a deliberately overfit model

from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from unlearn.evaluation import predict_logits
from unlearn.learners import build_learner
from unlearn.methods import UnlearningData
from unlearn.methods.gradient_penalty import (gradient_penalty, matched_statistic, matching_terms,
                                              nonmember_output_targets, nonmember_values, rank_targets)
from unlearn.mia import logit_margin
from unlearn.training import fit, make_optimizer, seed_everything, trainable


class TwoLayer(LinearSoftmax):
    """features f = A vec(x); logits = W f + b; s = cross-entropy: ∇_f s = W^T (p - y)."""

    def __init__(self, d: int, h: int, k: int) -> None:
        super().__init__(h, k)
        self.body = nn.Linear(d, h).double()

    def features(self, x):
        return self.body(x.flatten(1))

    def signal_from_features(self, features, y):
        return F.cross_entropy(self.linear(features[0]), y, reduction="none")

    def signal(self, views, y):
        return self.signal_from_features([self.features(v) for v in views], y)


def test_feature_gradient_norm_equals_analytic_head_gradient():
    torch.manual_seed(2)
    model = TwoLayer(12, 5, 4)
    x, y = torch.randn(6, 1, 3, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])
    _, gnorm = signal_and_input_grad_norm(model, x, y, create_graph=False, wrt="features")
    p = torch.softmax(model.linear(model.features(x)), dim=1)
    analytic = ((p - F.one_hot(y, 4).double()) @ model.linear.weight).norm(dim=1)
    torch.testing.assert_close(gnorm, analytic)


def test_unknown_gradient_target_is_a_clear_error():
    with pytest.raises(ValueError, match="wrt must be"):
        signal_and_input_grad_norm(TwoLayer(4, 3, 2), torch.randn(2, 1, 2, 2, dtype=torch.float64),
                                   torch.tensor([0, 1]), wrt="pixels")


def test_confidence_statistic_is_the_true_class_probability():
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    s = F.cross_entropy(logits, y, reduction="none")
    torch.testing.assert_close(matched_statistic(s, "confidence"), torch.softmax(logits, 1)[:, 0])
    torch.testing.assert_close(matched_statistic(s, "loss"), s)


def digits_learner(width: int = 8):
    cfg = {"method": "supervised", "backbone": {"name": "small_cnn", "width": width}, "augment": "none",
           "in_channels": 1, "num_classes": 10, "training": {"epochs": 1, "batch_size": 32, "lr": 3e-3,
                                                             "weight_decay": 0.0, "optimizer": "adam", "seed": 0}}
    return build_learner(cfg)


def digits_split(n_members: int = 120, n_forget: int = 40, n_reference: int = 200, n_test: int = 200):
    """Members (retain + forget), reference non-members and test non-members of sklearn's digits, as tensors."""
    d = load_digits()
    x = torch.from_numpy(d.images / 16.0).float().unsqueeze(1)  # (1797, 1, 8, 8)
    y = torch.from_numpy(d.target).long()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    cuts = [0, n_members - n_forget, n_members, n_members + n_reference, n_members + n_reference + n_test]
    r, f, n, t = (order[a:b] for a, b in zip(cuts[:-1], cuts[1:]))
    return UnlearningData(x[r], y[r], x[f], y[f], x[n], y[n]), (x[t], y[t])


def overfit(learner, data: UnlearningData, epochs: int = 150):
    generator = seed_everything(0)
    x, y = torch.cat([data.retain_x, data.forget_x]), torch.cat([data.retain_y, data.forget_y])
    fit(learner, lambda idx: learner.training_loss(x[idx], y[idx]), len(x), epochs=epochs, batch_size=32,
        optimizer=make_optimizer(trainable(learner), "adam", 3e-3), generator=generator)
    return learner


def forget_vs_test_auc(learner, data: UnlearningData, test) -> float:
    """AUC of the stable logit-margin attack: forget set (members) vs held-out test samples."""
    m = logit_margin(predict_logits(learner, data.forget_x), data.forget_y.numpy())
    n = logit_margin(predict_logits(learner, test[0]), test[1].numpy())
    return roc_auc_score(np.r_[np.ones(len(m)), np.zeros(len(n))], np.r_[m, n])


def test_gp_lowers_the_attack_auc_of_a_deliberately_overfit_model(one_thread):
    data, test = digits_split(n_members=60, n_forget=20)  # few members: the model memorises them
    original = overfit(digits_learner(width=16), data)
    before = forget_vs_test_auc(original, data, test)
    params = GradientPenaltyParams(preset="paper", epochs=20, batch_size=32, forget_batch_size=20)
    unlearned = gradient_penalty(original, data, params, seed_everything(0))
    after = forget_vs_test_auc(unlearned, data, test)
    assert before > 0.7, f"the overfit original should leak (AUC {before:.3f})"
    assert after < before - 0.1, f"GP did not lower the forget-vs-test AUC: {before:.3f} -> {after:.3f}"


def test_walking_the_forget_set_takes_one_step_per_forget_batch(monkeypatch, one_thread):
    data, _ = digits_split(n_members=60, n_forget=20, n_reference=40, n_test=10)
    original = digits_learner(width=4)
    steps = []
    monkeypatch.setattr(type(original), "after_step", lambda self: steps.append(1), raising=False)
    params = GradientPenaltyParams(preset="paper", epochs=3, walk="forget", forget_batch_size=8, batch_size=16,
                                   normalize=True,
                                   penalty_on="features")
    gradient_penalty(original, data, params, seed_everything(0))
    assert len(steps) == 3 * (20 // 8)  # the last partial forget batch is dropped, as in every epoch walk


def test_nonmember_values_depend_on_the_matched_statistic():
    data, _ = digits_split(n_members=20, n_forget=10, n_reference=30, n_test=10)
    learner = digits_learner(width=4)
    g_loss, s_loss = (v.mean().item() for v in nonmember_values(learner, data.reference_x, data.reference_y,
                                                                  match="loss"))
    g_conf, s_conf = (v.mean().item() for v in nonmember_values(learner, data.reference_x, data.reference_y,
                                                                  match="confidence"))
    assert g_loss == pytest.approx(g_conf) and 0 < s_conf < 1 < s_loss  # ~log(10) loss, ~0.1 probability


def test_rank_targets_are_the_reference_quantiles_at_midpoint_levels():
    reference = torch.arange(100, dtype=torch.float64)  # quantile q of 0..99 is 99 q
    torch.testing.assert_close(rank_targets(reference, 4), torch.tensor([12.375, 37.125, 61.875, 86.625],
                                                                        dtype=torch.float64))


def test_quantile_matching_sees_the_distribution_not_just_the_mean():
    ref = torch.linspace(0.0, 2.0, 101, dtype=torch.float64)  # mean 1
    same_mean = torch.ones(8, dtype=torch.float64)  # mean 1, no spread: the mean match cannot tell
    shuffled = rank_targets(ref, 8)[torch.randperm(8)]  # the reference's own quantiles, in any order
    for g_f, t_f, want_zero in ((same_mean, same_mean, False), (shuffled, shuffled, True)):
        mean_terms = matching_terms(g_f, t_f, ref, ref, "mean", normalize=False)
        rank_terms = matching_terms(g_f, t_f, ref, ref, "quantiles", normalize=False)
        assert all(t.item() == pytest.approx(0.0, abs=1e-12) for t in mean_terms)
        assert all((t.item() == pytest.approx(0.0, abs=1e-12)) == want_zero for t in rank_terms)


def test_quantile_matching_is_differentiable_through_the_sort():
    t_f = torch.tensor([3.0, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    _, matching = matching_terms(t_f.detach(), t_f, ref, ref, "quantiles", normalize=False)
    matching.backward()  # sorted [0, 1, 3] vs targets [1/3, 1, 5/3]: d/dt of mean |diff|
    torch.testing.assert_close(t_f.grad, torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64) / 3)


def test_unknown_comparison_is_a_clear_error():
    with pytest.raises(ValueError, match="compare must be"):
        matching_terms(torch.ones(2), torch.ones(2), torch.ones(3), torch.ones(3), "median", normalize=False)


def test_gp_with_quantile_matching_runs_and_changes_the_weights(one_thread):
    data, _ = digits_split(n_members=40, n_forget=16, n_reference=40, n_test=10)
    original = digits_learner(width=4)
    for stage in ("memgp", "paired"):
        params = GradientPenaltyParams(epochs=1, batch_size=16, forget_batch_size=8, reference_batch_size=16,
                                       compare="quantiles", stage=stage, preset="paper")
        unlearned = gradient_penalty(original, data, params, seed_everything(0))
        changed = [not torch.equal(a, b) for a, b in zip(original.parameters(), unlearned.parameters())]
        assert any(changed), stage


def test_output_targets_are_the_originals_outputs_on_same_class_nonmembers():
    data, _ = digits_split(n_members=40, n_forget=16, n_reference=60, n_test=10)
    original = digits_learner(width=4)
    targets = nonmember_output_targets(original, data, torch.Generator().manual_seed(0))
    with torch.no_grad():
        original.eval()
        ref_probs = torch.softmax(original.logits(data.reference_x), dim=1)
    assert targets.shape == (16, 10)
    for target, label in zip(targets, data.forget_y):  # each row is one same-class non-member's output
        same_class = ref_probs[data.reference_y == label]
        assert (same_class - target).abs().amax(dim=1).min() < 1e-6


def test_output_targets_need_same_class_nonmembers_and_a_classifier():
    data, _ = digits_split(n_members=40, n_forget=16, n_reference=60, n_test=10)
    missing = int(data.forget_y[0])
    keep = data.reference_y != missing
    no_class = UnlearningData(data.retain_x, data.retain_y, data.forget_x, data.forget_y,
                              data.reference_x[keep], data.reference_y[keep])
    with pytest.raises(ValueError, match=f"none of class {missing}"):
        nonmember_output_targets(digits_learner(width=4), no_class, torch.Generator().manual_seed(0))
    encoder = build_learner({"method": "simclr", "backbone": {"name": "small_cnn", "width": 4}, "augment": "none",
                             "in_channels": 1, "num_classes": 10, "training": {"epochs": 1, "batch_size": 8,
                             "lr": 1e-3, "weight_decay": 0.0, "optimizer": "adam", "seed": 0}})
    with pytest.raises(ValueError, match="is an encoder"):
        nonmember_output_targets(encoder, data, torch.Generator().manual_seed(0))


def test_gp_with_output_matching_moves_forget_predictions_towards_nonmember_outputs(one_thread):
    data, test = digits_split(n_members=60, n_forget=20)
    seed_everything(0)  # the learner's initial weights come from the global generator
    original = overfit(digits_learner(width=16), data)
    params = GradientPenaltyParams(epochs=40, walk="forget", forget_batch_size=10, batch_size=32, match="outputs",
                                   mu=1.0, lambda_gp=0.0)
    targets = nonmember_output_targets(original, data, seed_everything(0))
    unlearned = gradient_penalty(original, data, params, seed_everything(0))

    def distance(learner) -> float:
        with torch.no_grad():
            learner.eval()
            return F.kl_div(F.log_softmax(learner.logits(data.forget_x), 1), targets, reduction="batchmean").item()

    assert distance(unlearned) < 0.5 * distance(original)
    # seeded, so deterministic: 0.727 -> 0.643 at 40 epochs on this split (a no-op changes nothing)
    assert forget_vs_test_auc(unlearned, data, test) < forget_vs_test_auc(original, data, test) - 0.05


# --- class-wise forgetting, the presets, early stopping (issue 14)

import importlib

from unlearn.config import GP_PRESETS
from unlearn.methods.gradient_penalty import (forget_membership_auc, forgotten_classes,
                                              retained_class_distribution)


def classwise_split(forgotten: int = 3, n_members: int = 200, n_reference: int = 300, n_test: int = 300):
    """Digits members with every sample of class ``forgotten`` in the forget set, plus reference and test."""
    data, (tx, ty) = digits_split(n_members=n_members, n_forget=0, n_reference=n_reference, n_test=n_test)
    x, y = data.retain_x, data.retain_y
    f = y == forgotten
    return UnlearningData(x[~f], y[~f], x[f], y[f], data.reference_x, data.reference_y), (tx, ty)


def test_classwise_targets_sum_to_one_with_zero_mass_on_forgotten_classes():
    data, _ = classwise_split(forgotten=3)
    assert forgotten_classes(data) == [3]
    original = digits_learner(width=4)
    for classwise in ("nonmember", "own", "nearest"):
        targets = nonmember_output_targets(original, data, torch.Generator().manual_seed(0), classwise=classwise,
                                           temperature=2.0)
        assert targets.shape == (len(data.forget_y), 10)
        torch.testing.assert_close(targets.sum(dim=1), torch.ones(len(targets)))
        assert torch.all(targets[:, 3] == 0)
        assert torch.all(targets[:, [c for c in range(10) if c != 3]] > 0)


def test_retained_class_distribution_is_the_softmax_of_the_retained_logits():
    logits = torch.tensor([[1.0, 5.0, 2.0, 0.0], [0.0, 0.0, 3.0, -1.0]])
    got = retained_class_distribution(logits, [1], temperature=2.0)
    keep = [0, 2, 3]
    want = torch.zeros_like(logits)
    want[:, keep] = torch.softmax(logits[:, keep] / 2.0, dim=1)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="every class is forgotten"):
        retained_class_distribution(logits, [0, 1, 2, 3])


def test_partly_forgotten_classes_keep_the_same_class_nonmember_target():
    data, _ = classwise_split(forgotten=3)
    # one retained sample of class 3 makes the class only partly forgotten: same-class non-member targets again
    mixed = UnlearningData(torch.cat([data.retain_x, data.forget_x[:1]]), torch.cat([data.retain_y, data.forget_y[:1]]),
                           data.forget_x[1:], data.forget_y[1:], data.reference_x, data.reference_y)
    assert forgotten_classes(mixed) == []
    original = digits_learner(width=4)
    targets = nonmember_output_targets(original, mixed, torch.Generator().manual_seed(0))
    with torch.no_grad():
        original.eval()
        ref_probs = torch.softmax(original.logits(data.reference_x[data.reference_y == 3]), dim=1)
    assert all((ref_probs - t).abs().amax(dim=1).min() < 1e-6 for t in targets)


def test_a_missing_reference_class_is_a_clear_error():
    data, _ = classwise_split(forgotten=3)
    original = digits_learner(width=4)

    def without(c: int) -> UnlearningData:
        keep = data.reference_y != c
        return UnlearningData(data.retain_x, data.retain_y, data.forget_x, data.forget_y, data.reference_x[keep],
                              data.reference_y[keep])

    gen = torch.Generator().manual_seed(0)
    # the default class-wise target is a non-member of the forgotten class itself
    with pytest.raises(ValueError, match="every forgotten class.*none of class 3"):
        nonmember_output_targets(original, without(3), gen)
    assert nonmember_output_targets(original, without(3), gen, classwise="own").shape[0] == len(data.forget_y)
    nearest = retained_class_distribution(torch.from_numpy(predict_logits(original, data.forget_x)).float(),
                                          [3]).argmax(dim=1)
    needed = int(nearest[0])  # the nearest retained class of the first forgotten sample
    with pytest.raises(ValueError, match=f"nearest retained class.*none of class {needed}"):
        nonmember_output_targets(original, without(needed), gen, classwise="nearest")
    with pytest.raises(ValueError, match="classwise_target must be"):
        nonmember_output_targets(original, data, gen, classwise="uniform")


def accuracy_on(learner, x, y) -> float:
    return float((predict_logits(learner, x).argmax(1) == y.numpy()).mean())


def test_default_gp_forgets_a_whole_class_and_keeps_the_others(one_thread):
    seed_everything(0)  # the learner's initialisation draws from the global generator
    data, (tx, ty) = classwise_split(forgotten=3)
    original = overfit(digits_learner(width=16), data, epochs=60)
    keep = ty != 3
    before_forget, before_test = accuracy_on(original, data.forget_x, data.forget_y), accuracy_on(
        original, tx[keep], ty[keep])
    params = GradientPenaltyParams(epochs=40)  # the default configuration, a shorter budget
    unlearned = gradient_penalty(original, data, params, seed_everything(0))
    after_forget, after_test = accuracy_on(unlearned, data.forget_x, data.forget_y), accuracy_on(
        unlearned, tx[keep], ty[keep])
    # a retrained model never predicts the forgotten class: its forget accuracy is 0
    assert before_forget > 0.9 and after_forget < 0.1, (before_forget, after_forget)
    assert after_test > before_test - 0.05, (before_test, after_test)  # 270 test images: 0.05 = 13 of them
    assert accuracy_on(unlearned, data.retain_x, data.retain_y) > 0.95


def test_paper_preset_is_algorithm_2_and_explicit_keys_override_it():
    p = GradientPenaltyParams(preset="paper")
    assert (p.stage, p.match, p.lambda_gp, p.mu, p.walk, p.epochs, p.optimizer, p.lr) == (
        "memgp", "loss", 1.0, 0.1, "retain", 5, "sgd", 0.01)
    assert p.model_dump() == {**GradientPenaltyParams().model_dump(), **GP_PRESETS["paper"], "preset": "paper"}
    assert GradientPenaltyParams(preset="paper", epochs=3).epochs == 3
    with pytest.raises(Exception, match="preset"):
        GradientPenaltyParams(preset="fast")


def test_paper_preset_reproduces_the_algorithm_2_loss_on_a_fixed_batch(monkeypatch, one_thread):
    gp_module = importlib.import_module("unlearn.methods.gradient_penalty")  # the package re-exports the function

    data, _ = digits_split(n_members=60, n_forget=12, n_reference=40, n_test=10)
    original = digits_learner(width=4)
    params = GradientPenaltyParams(preset="paper", forget_batch_size=16)  # one forget batch = the whole forget set
    captured = {}

    def fake_fit(model, batch_loss, n, **kw):
        model.train()
        captured["loss"] = batch_loss(torch.arange(16)).item()  # retain batch 0..15, forget batch: all 12
        captured["model"] = model

    monkeypatch.setattr(gp_module, "fit", fake_fit)
    gradient_penalty(original, data, params, seed_everything(0))
    model = captured["model"]
    # L = MEMtrain(B_r) + λ (mean ‖∇x s(x_f)‖ − τ_g)² + μ |mean s(x_f) − τ_s|, τ from the original on D_n
    s_n, g_n = signal_and_input_grad_norm(original, data.reference_x, data.reference_y, create_graph=False)
    s_f, g_f = signal_and_input_grad_norm(model, data.forget_x, data.forget_y, create_graph=False)
    model.train()
    memtrain = model.training_loss(data.retain_x[:16], data.retain_y[:16]).item()
    want = memtrain + 1.0 * (g_f.mean() - g_n.mean()).item() ** 2 + 0.1 * abs((s_f.mean() - s_n.mean()).item())
    assert captured["loss"] == pytest.approx(want, rel=1e-4)


def test_early_stop_ends_the_run_once_the_forget_set_looks_like_nonmembers(monkeypatch, one_thread):
    gp_module = importlib.import_module("unlearn.methods.gradient_penalty")  # the package re-exports the function

    data, _ = classwise_split(forgotten=3)
    original = overfit(digits_learner(width=8), data, epochs=30)
    assert forget_membership_auc(original, data) > 0.5
    calls = []
    real = gp_module.forget_membership_auc
    monkeypatch.setattr(gp_module, "forget_membership_auc", lambda *a: calls.append(real(*a)) or calls[-1])
    params = GradientPenaltyParams(epochs=40, early_stop=0.5, check_every=2)  # any AUC stops at the first check
    gradient_penalty(original, data, params, seed_everything(0))
    assert len(calls) == 1


def test_anchor_keeps_reference_outputs_and_needs_a_classifier(one_thread):
    data, _ = classwise_split(forgotten=3)
    original = overfit(digits_learner(width=8), data, epochs=30)

    def drift(learner) -> float:  # KL from the original's outputs on the reference non-members
        p0 = torch.softmax(torch.from_numpy(predict_logits(original, data.reference_x)).float(), 1)
        return F.kl_div(torch.log_softmax(torch.from_numpy(predict_logits(learner, data.reference_x)).float(), 1),
                        p0, reduction="batchmean").item()

    free = gradient_penalty(original, data, GradientPenaltyParams(epochs=10, lr=0.05), seed_everything(0))
    held = gradient_penalty(original, data, GradientPenaltyParams(epochs=10, lr=0.05, anchor=1.0,
                                                                  reference_batch_size=32), seed_everything(0))
    assert drift(held) < drift(free)


def test_left_out_logits_are_outside_the_softmax_and_get_no_gradient():
    from unlearn.methods.gradient_penalty import soft_cross_entropy

    logits = torch.tensor([[1.0, 4.0, 0.5], [2.0, -1.0, 0.0]], requires_grad=True)
    target = torch.tensor([[0.7, 0.0, 0.3], [0.2, 0.5, 0.3]])
    leave_out = torch.tensor([[False, True, False], [False, False, False]])
    loss = soft_cross_entropy(logits, target, leave_out)
    want = (-(target[0, [0, 2]] * torch.log_softmax(logits[0, [0, 2]], 0)).sum()
            - (target[1] * torch.log_softmax(logits[1], 0)).sum()) / 2
    torch.testing.assert_close(loss, want)
    loss.backward()
    assert logits.grad[0, 1] == 0 and logits.grad[1, 1] != 0


def test_reset_redraws_only_the_forgotten_head_rows_and_track_needs_nonmember_pairs(one_thread):
    from unlearn.methods.gradient_penalty import reset_head_rows

    learner = digits_learner(width=4)
    before = learner.head.weight.detach().clone()
    reset_head_rows(learner, [3])
    changed = (learner.head.weight.detach() != before).any(dim=1)
    assert changed.tolist() == [c == 3 for c in range(10)]
    data, _ = classwise_split(forgotten=3)
    with pytest.raises(ValueError, match="track' needs classwise_target 'nonmember'"):
        gradient_penalty(digits_learner(width=4), data, GradientPenaltyParams(epochs=1, classwise_target="own",
                                                                       forgotten_logits="track"),
                         seed_everything(0))
