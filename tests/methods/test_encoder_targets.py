"""The encoder form of gp's descending term (methods/encoder_targets.py), through gradient_penalty."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from unlearn.config import GradientPenaltyParams
from unlearn.learners import build_learner
from unlearn.methods import get_method
from unlearn.methods.base import UnlearningData
from unlearn.methods.encoder_targets import (alignment_scores, encoder_alignment_targets, encoder_alignment_term,
                                             finalize_momentum_encoders, rank_mapped_targets, view_alignment)
from unlearn.training import fit, make_optimizer, seed_everything, trainable


def encoder(method: str = "simclr", width: int = 8, augment: str = "digits"):
    return build_learner({"method": method, "backbone": {"name": "small_cnn", "width": width}, "augment": augment,
                          "in_channels": 1, "num_classes": 10, "projection_dim": 16, "queue_size": 32,
                          "momentum": 0.99, "temperature": 0.5,
                          "training": {"epochs": 1, "batch_size": 40, "lr": 3e-3, "weight_decay": 0.0,
                                       "optimizer": "adam", "seed": 0}})


def digits(n_retain=16, n_forget=24, n_reference=200, n_test=400):
    d = load_digits()
    x = torch.from_numpy(d.images / 16.0).float().unsqueeze(1)
    y = torch.from_numpy(d.target).long()
    o = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    cuts = np.cumsum([0, n_retain, n_forget, n_reference, n_test])
    r, f, n, t = (o[a:b] for a, b in zip(cuts[:-1], cuts[1:]))
    return UnlearningData(x[r], y[r], x[f], y[f], x[n], y[n]), x[t]


def pretrain(learner, data: UnlearningData, epochs: int):
    g = seed_everything(0)
    x = torch.cat([data.retain_x, data.forget_x])
    fit(learner, lambda idx: learner.training_loss(x[idx], None), len(x), epochs=epochs, batch_size=40,
        optimizer=make_optimizer(trainable(learner), "adam", 3e-3), generator=g)
    return learner


def test_term_gradient_matches_finite_differences():
    torch.manual_seed(0)
    learner = encoder(width=4).double().eval()
    views = [torch.rand(3, 1, 8, 8, dtype=torch.float64) for _ in range(3)]
    targets, scale = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64), 0.3
    weight = learner.backbone.net[2].weight

    def loss():
        return ((view_alignment(learner, views) - targets) / scale).pow(2).mean()

    (grad,) = torch.autograd.grad(loss(), weight)
    eps = 1e-6
    for idx in [(0, 0, 0, 0), (1, 2, 1, 2), (3, 1, 2, 0)]:
        with torch.no_grad():
            weight[idx] += eps
            up = loss().item()
            weight[idx] -= 2 * eps
            down = loss().item()
            weight[idx] += eps
        assert grad[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-8)


def test_view_alignment_is_mean_pairwise_cosine():
    learner = encoder(width=4).eval()
    views = [torch.rand(2, 1, 8, 8) for _ in range(3)]
    f = [torch.nn.functional.normalize(learner.features(v), dim=1) for v in views]
    expected = ((f[0] * f[1]).sum(1) + (f[0] * f[2]).sum(1) + (f[1] * f[2]).sum(1)) / 3
    torch.testing.assert_close(view_alignment(learner, views), expected)


def test_rank_targets_keep_the_rank_and_land_in_the_nonmember_range():
    members = torch.linspace(0.9, 1.0, 101)
    nonmembers = torch.linspace(0.5, 0.6, 101)
    t = rank_mapped_targets(torch.tensor([0.9, 0.95, 1.0]), members, nonmembers)
    assert torch.all(t[1:] > t[:-1]) and torch.all((t >= 0.5) & (t <= 0.6))
    assert t[1].item() == pytest.approx(0.55, abs=2e-3)


@pytest.mark.parametrize("mode", ["pair", "rank"])
def test_targets_shape_and_scale(mode):
    data, _ = digits()
    t, scale = encoder_alignment_targets(encoder(width=4), data, torch.Generator().manual_seed(0), mode=mode)
    assert t.shape == (len(data.forget_x),) and scale > 0 and torch.all(t.abs() <= 1)


def test_gp_encoder_term_lowers_the_alignment_attack_auc_on_an_overfit_encoder(one_thread):
    data, test_x = digits()
    original = pretrain(encoder(), data, epochs=300)

    def auc(model):
        torch.manual_seed(1)
        a_f, a_t = alignment_scores(model, data.forget_x, 16), alignment_scores(model, test_x, 16)
        return roc_auc_score(np.r_[np.ones(len(a_f)), np.zeros(len(a_t))], np.r_[a_f.numpy(), a_t.numpy()])

    before = auc(original)
    params = GradientPenaltyParams(match="outputs", mu=1.0, lambda_gp=0.0, walk="forget", epochs=100, lr=0.05,
                                   forget_batch_size=24, batch_size=16)
    after = auc(get_method("gp")(original, data, params, torch.Generator().manual_seed(0)))
    assert before > 0.6 and after < before - 0.05


@pytest.mark.parametrize("method", ["moco", "byol"])
def test_momentum_networks_consistent_after_unlearning(method, one_thread):
    data, _ = digits()
    original = pretrain(encoder(method, width=4), data, epochs=3)
    old_queue = original.queue.keys.clone() if method == "moco" else None
    params = GradientPenaltyParams(match="outputs", lambda_gp=0.0, walk="forget", epochs=2, forget_batch_size=12,
                                   batch_size=16)
    out = get_method("gp")(original, data, params, torch.Generator().manual_seed(0))
    pairs = ((out.backbone, out.key_backbone), (out.projection, out.key_projection)) if method == "moco" else \
        ((out.backbone, out.target_backbone), (out.projection, out.target_projection))
    for online, momentum in pairs:
        for (name, a), (_, b) in zip(online.state_dict().items(), momentum.state_dict().items()):
            torch.testing.assert_close(a, b, msg=name)
    if method == "moco":
        keys = out.queue.keys
        torch.testing.assert_close(keys.norm(dim=1), torch.ones(len(keys)))
        assert int(out.queue.ptr) == 0
        # no key of the original's queue (which holds keys of forgotten images) is left
        assert (keys @ old_queue.T).max() < 1 - 1e-4
        # every key is a retain image's key under the new key encoder: each matches one within augmentation noise
        out.eval()
        torch.manual_seed(0)
        retain_keys = out.key_projections(data.retain_x)
        assert (keys @ retain_keys.T).max(dim=1).values.min() > 0.5
    # the original is not modified
    assert not torch.equal(original.backbone.net[0].weight, out.backbone.net[0].weight)


def test_clear_errors_for_a_classifier_and_an_empty_reference():
    data, _ = digits()
    clf = build_learner({"method": "supervised", "backbone": {"name": "small_cnn", "width": 4}, "augment": "none",
                         "in_channels": 1, "num_classes": 10, "training": {"epochs": 1, "batch_size": 8,
                         "lr": 1e-3, "weight_decay": 0.0, "optimizer": "adam", "seed": 0}})
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="supervised model"):
        encoder_alignment_targets(clf, data, g)
    with pytest.raises(ValueError, match="supervised model"):
        finalize_momentum_encoders(clf, data.retain_x, g)
    empty = UnlearningData(data.retain_x, data.retain_y, data.forget_x, data.forget_y, data.reference_x[:0],
                           data.reference_y[:0])
    with pytest.raises(ValueError, match="reference non-members"):
        encoder_alignment_targets(encoder(width=4), empty, g)
    with pytest.raises(ValueError, match="reference"):
        get_method("gp")(encoder(width=4), empty, GradientPenaltyParams(match="outputs"), g)
    with pytest.raises(ValueError, match="mode must be"):
        encoder_alignment_targets(encoder(width=4), data, g, mode="nearest")
    missing = int(data.forget_y[0])
    keep = data.reference_y != missing
    no_class = UnlearningData(data.retain_x, data.retain_y, data.forget_x, data.forget_y, data.reference_x[keep],
                              data.reference_y[keep])
    with pytest.raises(ValueError, match=f"none of class {missing}"):
        encoder_alignment_targets(encoder(width=4), no_class, g)
    with pytest.raises(ValueError, match="views"):
        encoder_alignment_term(encoder(width=4), data.forget_x, torch.zeros(len(data.forget_x)), 1.0, n_views=1)
