"""Tests for unlearn.plots: each function writes a non-empty PNG atomically."""

from pathlib import Path

import numpy as np
import pytest

from unlearn.plots import plot_per_batch_loss, plot_roc_curves, plot_score_distributions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_plot_score_distributions(tmp_path):
    rng = np.random.default_rng(0)
    before = {"forget": rng.normal(2, 1, 100), "test": rng.normal(0, 1, 200)}
    after = {"forget": rng.normal(0.1, 1, 100), "test": rng.normal(0, 1, 200)}
    out = plot_score_distributions(before, after, tmp_path / "d" / "hist.png", title="t")
    assert out == tmp_path / "d" / "hist.png"
    assert_png(out)


def test_plot_roc_curves(tmp_path):
    rng = np.random.default_rng(0)
    curves = {
        "before": (rng.normal(2, 1, 100), rng.normal(0, 1, 300)),
        "after": (rng.normal(0, 1, 100), rng.normal(0, 1, 300)),
    }
    assert_png(plot_roc_curves(curves, tmp_path / "roc.png", title="roc"))


def test_plot_per_batch_loss(tmp_path):
    rng = np.random.default_rng(0)
    before = {"train": rng.uniform(0, 0.2, 20), "non-train": rng.uniform(1, 2, 20)}
    after = {"train": rng.uniform(1, 2, 20), "non-train": rng.uniform(1, 2, 20)}
    assert_png(plot_per_batch_loss(before, after, tmp_path / "loss.png"))


def test_bad_input_raises(tmp_path):
    with pytest.raises(ValueError):
        plot_score_distributions({}, {"a": np.ones(3)}, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_per_batch_loss({"a": np.array([])}, {"a": np.ones(3)}, tmp_path / "x.png")
    with pytest.raises(ValueError):
        plot_roc_curves({"a": (np.array([]), np.ones(3))}, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())
