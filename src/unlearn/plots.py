"""PNG figures for unlearning reports (score histograms, ROC curves, losses).

Figures are built with the object-oriented ``matplotlib.figure.Figure`` API,
which renders with Agg and never touches pyplot's global state or backend,
so importing this module has no side effects and it is safe headless.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import roc_curve

from unlearn.mia.stats import roc_auc

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LOG_FPR_MIN: float = 1e-3


def _new_figure(
    ncols: int, width: float = 5.0, sharey: bool = False
) -> tuple[Figure, np.ndarray]:
    """Create a figure with ``ncols`` side-by-side axes (Shape: (ncols,))."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, 4.0), layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False, sharey=sharey)[0]


def _save_atomic(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG to a temp file next to ``path``, then os.replace."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", prefix=f".{out.stem}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=120)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        fig.clear()
    return out


def _check_groups(groups: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    """Validate a non-empty mapping of label -> non-empty finite 1-D array."""
    if not groups:
        raise ValueError(f"{name} must contain at least one group")
    out = {}
    for label, values in groups.items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}[{label!r}] must be a non-empty finite 1-D array")
        out[label] = arr
    return out


def plot_score_distributions(
    before: dict[str, np.ndarray],
    after: dict[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    xlabel: str = "member score",
    title: str = "",
) -> Path:
    """Side-by-side score histograms before and after unlearning.

    Args:
        before: Group name (e.g. "forget", "test") -> scores. Shapes: (N_g,).
        after: Same groups after unlearning. Shapes: (N_g,).
        path: Output PNG path.
        xlabel: X-axis label.
        title: Figure title.

    Returns:
        The written path.
    """
    panels = {"before unlearning": _check_groups(before, "before"),
              "after unlearning": _check_groups(after, "after")}
    pooled = np.concatenate([a for g in panels.values() for a in g.values()])
    bins = np.histogram_bin_edges(pooled, bins=50)
    fig, axes = _new_figure(2)
    for ax, (name, groups) in zip(axes, panels.items()):
        for label, scores in groups.items():
            ax.hist(scores, bins=bins, density=True, alpha=0.5,
                    label=f"{label} (n={scores.size})")
        ax.set(title=name, xlabel=xlabel, ylabel="density")
        ax.legend()
    fig.suptitle(title)
    return _save_atomic(fig, path)


def plot_roc_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Attack ROC curves on a log-scale FPR axis (1e-3 to 1), AUC in the legend.

    Args:
        curves: Label -> (member_scores (N_m,), nonmember_scores (N_n,)).
        path: Output PNG path.
        title: Axes title.

    Returns:
        The written path.
    """
    if not curves:
        raise ValueError("curves must contain at least one entry")
    fig, (ax,) = _new_figure(1, width=5.5)
    for label, (members, nonmembers) in curves.items():
        auc = roc_auc(members, nonmembers)
        y = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
        fpr, tpr, _ = roc_curve(y, np.r_[members, nonmembers])
        ax.plot(np.maximum(fpr, LOG_FPR_MIN), tpr, label=f"{label} (AUC={auc:.3f})")
    diag = np.logspace(np.log10(LOG_FPR_MIN), 0.0, 100)
    ax.plot(diag, diag, "k--", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set(xlim=(LOG_FPR_MIN, 1.0), ylim=(0.0, 1.0), xlabel="false positive rate",
           ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    return _save_atomic(fig, path)


def plot_per_batch_loss(
    before: dict[str, np.ndarray],
    after: dict[str, np.ndarray],
    path: str | os.PathLike[str],
) -> Path:
    """Per-batch mean loss of training vs non-training data, before and after.

    Args:
        before: Group name (e.g. "train", "non-train") -> per-batch mean
            losses. Shapes: (B_g,).
        after: Same groups after unlearning. Shapes: (B_g,).
        path: Output PNG path.

    Returns:
        The written path.
    """
    panels = {"before unlearning": _check_groups(before, "before"),
              "after unlearning": _check_groups(after, "after")}
    fig, axes = _new_figure(2, sharey=True)
    for ax, (name, groups) in zip(axes, panels.items()):
        for label, losses in groups.items():
            ax.plot(np.arange(losses.size), losses, marker=".", label=label)
        ax.set(title=name, xlabel="batch", ylabel="mean loss")
        ax.legend()
    return _save_atomic(fig, path)
