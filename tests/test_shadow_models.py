"""Shadow-model training (tiny, CPU) and how its outputs reach the evidence and the certificate."""

import numpy as np
import pytest
import torch

from unlearn.certificate import build_certificate
from unlearn.config import PretrainParams, Thresholds
from unlearn.pretraining import learner_config
from unlearn.shadow_models import ShadowModelOutputs, shadow_config, shadow_halves, train_shadows
from unlearn.verification import ModelOutputs, score_outputs, shadow_reference

K = 3


def tiny_config(method: str = "supervised") -> dict:
    params = PretrainParams(method=method, backbone={"name": "small_cnn", "width": 4}, epochs=2, batch_size=16,
                            projection_dim=8)
    return learner_config(params, in_channels=1, num_classes=K)


def reference(n: int = 48, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), np.arange(n) % K


def test_halves_are_disjoint_stratified_and_seeded():
    y = np.r_[np.zeros(7), np.ones(10), np.full(5, 2)].astype(int)
    a_in, a_out = shadow_halves(y, 0)
    assert np.intersect1d(a_in, a_out).size == 0 and np.union1d(a_in, a_out).size == len(y)
    assert [int((y[a_in] == c).sum()) for c in range(3)] == [4, 5, 3]
    assert np.array_equal(shadow_halves(y, 0)[0], a_in) and not np.array_equal(shadow_halves(y, 1)[0], a_in)


def test_config_keeps_the_recipe_and_scales_the_batch_to_keep_steps_per_epoch():
    cfg = {"method": "supervised", "training": {"epochs": 60, "batch_size": 128, "seed": 0, "lr": 3e-3}}
    out = shadow_config(cfg, 7, n_in=200, original_size=900)  # original: 900 // 128 = 7 steps per epoch
    assert out["training"] == {"epochs": 60, "batch_size": 28, "seed": 7, "lr": 3e-3}  # 200 // 28 = 7 steps
    assert cfg["training"]["seed"] == 0  # the original's config is not mutated
    assert shadow_config(cfg, 1)["training"]["batch_size"] == 128


@pytest.mark.parametrize("method", ["supervised", "simclr"])
def test_train_shadows_returns_out_model_outputs_for_every_set(method):
    images, labels = reference()
    eval_x = {"forget": torch.rand(5, 1, 8, 8), "test": torch.rand(7, 1, 8, 8)}
    calls = []

    def recording_map(fn, indices, seeds):
        calls.append((list(indices), list(seeds)))
        return map(fn, indices, seeds)

    n_shadow = 2 if method == "supervised" else 1  # encoders: one shadow checks the probe path, fast
    shadows = train_shadows(tiny_config(method), images, labels, eval_x, K, n_shadow=n_shadow, seed=3,
                            original_size=96, map_fn=recording_map)
    assert calls == [([0, 1][:n_shadow], [3000, 3001][:n_shadow])]
    for s in shadows:
        assert s.in_logits.shape == (24, K) and s.out_logits.shape == (24, K)
        assert {k: v.shape for k, v in s.eval_logits.items()} == {"forget": (5, K), "test": (7, K)}
        assert np.all(np.isfinite(s.in_logits)) and np.all(np.isfinite(s.eval_logits["test"]))
    if n_shadow == 2:  # distinct seeds: distinct halves
        assert not np.array_equal(np.sort(shadows[0].in_logits, axis=None), np.sort(shadows[1].in_logits, axis=None))


def synthetic_shadow(index: int, rng: np.random.Generator, sizes: dict[str, int]) -> ShadowModelOutputs:
    def logits(n, margin):
        y = rng.integers(0, K, n)
        z = rng.normal(size=(n, K))
        z[np.arange(n), y] += margin
        return z, y

    (zi, yi), (zo, yo) = logits(100, 6.0), logits(100, 2.0)
    return ShadowModelOutputs(index, index, zi, yi, zo, yo,
                              {k: rng.normal(size=(n, K)) + 2.0 * np.eye(K)[np.arange(n) % K]
                               for k, n in sizes.items()}, 0.0)


def test_shadow_and_lira_reach_attacks_train_vs_test_and_the_certificate():
    rng = np.random.default_rng(0)
    sizes = {"retain": 120, "forget": 40, "test": 90, "nonmember": 60}
    labels = {k: np.arange(n) % K for k, n in sizes.items()}
    ref = shadow_reference([synthetic_shadow(i, rng, sizes) for i in range(2)], labels)
    assert ref.n_models == 2 and ref.out_margins["forget"].shape == (2, 40)

    def evidence(forget_margin):
        margin = {"retain": 6.0, "forget": forget_margin, "test": 2.0, "nonmember": 2.0}
        lg = {k: rng.normal(size=(n, K)) + margin[k] * np.eye(K)[labels[k]] for k, n in sizes.items()}
        return score_outputs(ModelOutputs(lg, None, ref), labels, n_bootstrap=50)

    original, retrain = evidence(6.0), evidence(2.0)
    for ev in (original, retrain):
        assert {"shadow", "lira"} <= set(ev["attacks"]) and {"shadow", "lira"} <= set(ev["train_vs_test"])
    assert original["attacks"]["lira"]["auc"] > 0.8 and original["train_vs_test"]["shadow"]["auc"] > 0.8
    assert "tpr_at_0.1pct_fpr" in original["attacks"]["shadow"] and "balanced_accuracy" in original["attacks"]["lira"]
    art = {"path": "m.pt", "sha256": "a" * 64}
    cert = build_certificate(method="gp", method_params={}, model=art, parent=art, retrain_ref=art,
                             dataset_fingerprint="b" * 64,
                             forget={"sha256": "c" * 64, "n": 40, "kind": "random", "request_ids": []},
                             thresholds=Thresholds(), metrics={"unlearned": original, "original": original,
                                                               "retrain": retrain}, seconds=1.0, git_commit=None)
    assert cert["verdict"] == "fail"  # a no-op unlearner is caught (by every attack, shadow and LiRA included)
    assert any(r.startswith("lira attack") for r in cert["reasons"])
