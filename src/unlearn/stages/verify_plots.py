"""The verify stage's figures (DESIGN.md §5): score distributions and ROC curves before/after, per-batch loss
of training vs non-training data before/after, and (encoders) cosine similarity of augmented views."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from unlearn.mia import THRESHOLD_ATTACKS
from unlearn.plots import plot_per_batch_loss, plot_roc_curves, plot_score_distributions
from unlearn.verification import ModelOutputs, attack_scores


def _per_batch_means(values: np.ndarray, batch: int = 32) -> np.ndarray:
    n = max(1, len(values) // batch)
    return np.array([chunk.mean() for chunk in np.array_split(values, n)])


def write_plots(out_dir: Path, outputs: dict[str, ModelOutputs], labels: dict[str, np.ndarray]) -> list[Path]:
    """One set of figures per unlearned model against the original; returns the PNG paths."""
    scores = {name: attack_scores(out, labels) for name, out in outputs.items()}
    before = scores["original"]
    paths = []
    for name, after in scores.items():
        if name == "original":
            continue
        conf_before = THRESHOLD_ATTACKS["confidence"]
        paths.append(plot_score_distributions(
            {"forget": conf_before(outputs["original"].logits["forget"], labels["forget"]),
             "non-member": conf_before(outputs["original"].logits["nonmember"], labels["nonmember"])},
            {"forget": after["confidence"]["forget"], "non-member": after["confidence"]["nonmember"]},
            out_dir / f"{name}_confidence.png", xlabel="predicted probability of the true class",
            title=f"{name}: forget vs non-members"))
        paths.append(plot_roc_curves(
            {f"{attack} ({tag})": (s["forget"], s["nonmember"])
             for tag, sc in (("before", before), ("after", after)) for attack, s in sc.items()},
            out_dir / f"{name}_roc.png", title=f"{name}: attacks, forget vs non-members"))
        paths.append(plot_per_batch_loss(
            {"training (retain)": _per_batch_means(-before["loss"]["retain"]),
             "non-training (test)": _per_batch_means(-before["loss"]["test"]),
             "forget": _per_batch_means(-before["loss"]["forget"])},
            {"training (retain)": _per_batch_means(-after["loss"]["retain"]),
             "non-training (test)": _per_batch_means(-after["loss"]["test"]),
             "forget": _per_batch_means(-after["loss"]["forget"])},
            out_dir / f"{name}_batch_loss.png"))
        if "encodermi" in after:
            paths.append(plot_score_distributions(
                {"forget": before["encodermi"]["forget"], "non-member": before["encodermi"]["nonmember"]},
                {"forget": after["encodermi"]["forget"], "non-member": after["encodermi"]["nonmember"]},
                out_dir / f"{name}_view_cosine.png", xlabel="mean cosine similarity of augmented views",
                title=f"{name}: EncoderMI"))
    return paths
