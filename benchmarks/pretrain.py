"""Pretraining benchmark: training throughput (images/s) per method x backbone on this machine, and kNN /
linear-probe test accuracy after a fixed budget on digits and on a 10k-image CIFAR-10 subset.
Writes benchmarks/results/pretrain.md.

    .venv/bin/python benchmarks/pretrain.py                 # throughput + digits + CIFAR-10 subset
    .venv/bin/python benchmarks/pretrain.py --sections throughput digits
    python benchmarks/pretrain.py --sections resnet18 --budget-seconds 90   # on a GPU: full CIFAR-10, ResNet-18

The ``resnet18`` section trains each method on the 50k CIFAR-10 training images for as many epochs as
``--budget-seconds`` allows at the throughput measured first, and compares kNN accuracy with lightly's anchors.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from harness import CIFAR_ZIP, prepared_in_memory, with_overrides

from unlearn.config import load_params
from unlearn.evaluation import extract_features, fit_linear_probe, knn_accuracy
from unlearn.io import write_text
from unlearn.learners import build_learner
from unlearn.pretraining import learner_config, train_from_scratch
from unlearn.training import resolve_device, to_tensor

ROOT = Path(__file__).resolve().parents[1]
ZIP = CIFAR_ZIP
METHODS = ["supervised", "simclr", "moco", "byol"]
BACKBONES = {"small_cnn (w32, 8x8x1)": ("small_cnn", 32, 1, 8, "digits"),
             "resnet_compact (w16, 32x32x3)": ("resnet_compact", 16, 3, 32, "cifar_simclr"),
             "resnet18 (32x32x3)": ("resnet18", 64, 3, 32, "cifar_simclr")}
DIGITS = {"pretrain": {"epochs": 100, "batch_size": 128, "augment": "digits", "lr": 0.001, "optimizer": "adam",
                       "queue_size": 512}}
R18_EPOCHS_MIN = 1
RESNET18 = {"prepare": {"source": "imagefolder", "root": str(ZIP), "max_images": None,
                        "splits": {"train": 50000, "reference": 10, "test": None}},
            "pretrain": {"backbone": {"name": "resnet18", "width": 64}, "augment": "cifar_simclr", "batch_size": 512,
                         "lr": 0.002, "optimizer": "adam", "lr_schedule": "cosine", "queue_size": 4096,
                         "temperature": 0.2, "projection_dim": 128}}
LIGHTLY_KNN = {"simclr": 84.7, "moco": 83.8, "byol": 86.9}
CIFAR = {"prepare": {"source": "imagefolder", "root": str(ZIP), "max_images": 10000,
                     "splits": {"train": 6000, "reference": 1000, "test": 3000}},
         "pretrain": {"backbone": {"name": "resnet_compact", "width": 16}, "augment": "cifar_simclr",
                      "epochs": 15, "batch_size": 256, "lr": 0.001, "optimizer": "adam", "queue_size": 4096}}


def throughput(device: torch.device, steps: int, only: str | None = None,
               batch: int = 128) -> list[tuple[str, str, float]]:
    base = load_params(ROOT / "params.yaml")
    rows = []
    for label, (name, width, channels, size, augment) in BACKBONES.items():
        if only is not None and label != only:
            continue
        for method in METHODS:
            p = with_overrides(base, {"pretrain": {"method": method, "augment": augment,
                                                   "backbone": {"name": name, "width": width}}})
            learner = build_learner(learner_config(p.pretrain, channels, 10)).to(device)
            opt = torch.optim.Adam([q for q in learner.parameters() if q.requires_grad], lr=1e-3)
            x = torch.rand(batch, channels, size, size, device=device)
            y = torch.randint(0, 10, (batch,), device=device)
            n = steps if name != "resnet18" or device.type == "cuda" else 2
            for i in range(n + 1):
                if i == 1:
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    loss = learner.training_loss(x, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                learner.after_step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            rate = batch * n / (time.perf_counter() - start)
            logging.info("%-30s %-10s %8.0f images/s", label, method, rate)
            rows.append((label, method, rate))
    return rows


def accuracy_after_budget(overrides: dict, device: torch.device, epochs: dict[str, int] | None = None,
                          probe_samples: int | None = None) -> list[tuple[str, int, float, float, float]]:
    """(method, epochs, kNN %, linear probe %, train seconds) per method; ``epochs`` overrides per method and
    ``probe_samples`` fits the probe on a class-balanced-in-expectation random subset of the train features."""
    base = with_overrides(load_params(ROOT / "params.yaml"), overrides)
    data = prepared_in_memory(base)
    train, test = data.indices("train"), data.indices("test")
    x, y = to_tensor(data.images[train], device), torch.from_numpy(data.labels[train]).to(device)
    xt = to_tensor(data.images[test], device)
    rows = []
    for method in (list(epochs) if epochs else METHODS):
        over = {"method": method, **({"epochs": epochs[method]} if epochs else {})}
        p = with_overrides(base, {"pretrain": over})
        start = time.perf_counter()
        learner, _ = train_from_scratch(learner_config(p.pretrain, data.images.shape[-1], len(data.classes)), x, y,
                                        desc=method, amp=p.pretrain.amp)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        f_train, f_test = extract_features(learner, x), extract_features(learner, xt)
        knn = knn_accuracy(f_train, data.labels[train], f_test, data.labels[test])
        sub = np.random.default_rng(0).permutation(len(f_train))[:probe_samples or len(f_train)]
        probe = 100 * fit_linear_probe(f_train[sub], data.labels[train][sub]).score(f_test, data.labels[test])
        logging.info("%-10s %d epochs kNN %.1f probe %.1f (%.0fs)", method, p.pretrain.epochs, knn, probe, seconds)
        rows.append((method, p.pretrain.epochs, knn, probe, seconds))
    return rows


def resnet18_epochs(device: torch.device, budget_seconds: float, n_train: int) -> dict[str, int]:
    """Epochs per method that fit ``budget_seconds`` at the measured ResNet-18 throughput (batch 512)."""
    rates = {m: r for _, m, r in throughput(device, 5, only="resnet18 (32x32x3)", batch=512)}  # incl. supervised
    return {m: max(R18_EPOCHS_MIN, int(budget_seconds * rates[m] / n_train)) for m in ("simclr", "moco", "byol")}


def accuracy_table(title: str, rows: list[tuple[str, int, float, float, float]], anchors: bool = False) -> list[str]:
    out = ["", f"## Test accuracy after a fixed budget — {title}", "",
           "| method | epochs | kNN (k=200, cosine) | linear probe | train seconds |"
           + (" lightly kNN, 200 epochs |" if anchors else ""), "|---|---|---|---|---|" + ("---|" if anchors else "")]
    for m, e, k, p, s in rows:
        anchor = f" {LIGHTLY_KNN[m]:.1f} |" if m in LIGHTLY_KNN else " – |"
        out.append(f"| {m} | {e} | {k:.1f} | {p:.1f} | {s:.0f} |" + (anchor if anchors else ""))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sections", nargs="+", default=["throughput", "digits", "cifar10k"],
                    choices=["throughput", "digits", "cifar10k", "resnet18"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--budget-seconds", type=float, default=90.0, help="resnet18: training seconds per method")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/pretrain.md"))
    ns = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if not os.environ.get("BENCH_VERBOSE"):
        logging.getLogger("unlearn.training").setLevel(logging.WARNING)
    device = resolve_device("auto")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    out = [f"# Pretraining benchmark ({where}, torch {torch.__version__}, {platform.machine()})"]
    if "throughput" in ns.sections:
        out += ["", "## Training throughput (batch 128, Adam, images/s; higher is better)", "",
                "| backbone | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
        rates = throughput(device, ns.steps)
        for label in BACKBONES:
            out.append(f"| {label} | " + " | ".join(f"{r:.0f}" for b, _, r in rates if b == label) + " |")
    if "digits" in ns.sections:
        out += accuracy_table("digits: 900 members, small_cnn w32, Adam 1e-3, digits augmentations",
                              accuracy_after_budget(DIGITS, device))
    cifar = [s for s in ("cifar10k", "resnet18") if s in ns.sections]
    if cifar and not ZIP.is_file():
        out += ["", f"CIFAR-10 sections skipped: {ZIP} not found (set UNLEARN_CIFAR_ZIP)."]
    elif "cifar10k" in cifar:
        out += accuracy_table("CIFAR-10 subset (10k images: 6,000 train / 3,000 test), resnet_compact w16, batch 256, "
                              "Adam 1e-3, SimCLR augmentations", accuracy_after_budget(CIFAR, device))
    if "resnet18" in cifar and ZIP.is_file():
        epochs = resnet18_epochs(device, ns.budget_seconds, 50000)
        out += accuracy_table(f"CIFAR-10 (50,000 train / 9,990 test, random stratified split), CIFAR ResNet-18, "
                              f"batch 512, "
                              f"Adam 2e-3 cosine, SimCLR augmentations, bf16 autocast, ~{ns.budget_seconds:.0f} s of "
                              "training per method (linear probe fitted on 10,000 train features)",
                              accuracy_after_budget(RESNET18, device, epochs, probe_samples=10000), anchors=True)
    text = "\n".join(out) + "\n"
    print(text)
    write_text(ns.out, text)


if __name__ == "__main__":
    main()
