"""Pretraining benchmark: training throughput (images/s) per method x backbone on this machine, and kNN /
linear-probe test accuracy after a fixed budget on digits and on a 10k-image CIFAR-10 subset.
Writes benchmarks/results/pretrain.md.

    .venv/bin/python benchmarks/pretrain.py                 # throughput + digits + CIFAR-10 subset
    .venv/bin/python benchmarks/pretrain.py --skip-cifar
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import torch
from harness import prepared_in_memory, with_overrides

from unlearn.config import load_params
from unlearn.evaluation import extract_features, fit_linear_probe, knn_accuracy
from unlearn.io import write_text
from unlearn.learners import build_learner
from unlearn.pretraining import learner_config, train_from_scratch
from unlearn.training import resolve_device, to_tensor

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT.parent / "shared" / "datasets" / "cifar10-jpeg.zip"
METHODS = ["supervised", "simclr", "moco", "byol"]
BACKBONES = {"small_cnn (w32, 8x8x1)": ("small_cnn", 32, 1, 8, "digits"),
             "resnet_compact (w16, 32x32x3)": ("resnet_compact", 16, 3, 32, "cifar_simclr"),
             "resnet18 (32x32x3)": ("resnet18", 64, 3, 32, "cifar_simclr")}
DIGITS = {"pretrain": {"epochs": 100, "batch_size": 128, "augment": "digits", "lr": 0.001, "optimizer": "adam",
                       "queue_size": 512}}
CIFAR = {"prepare": {"source": "imagefolder", "root": str(ZIP), "max_images": 10000,
                     "splits": {"train": 6000, "reference": 1000, "test": 3000}},
         "pretrain": {"backbone": {"name": "resnet_compact", "width": 16}, "augment": "cifar_simclr",
                      "epochs": 15, "batch_size": 256, "lr": 0.001, "optimizer": "adam", "queue_size": 4096}}


def throughput(device: torch.device, steps: int) -> list[tuple[str, str, float]]:
    base = load_params(ROOT / "params.yaml")
    rows = []
    for label, (name, width, channels, size, augment) in BACKBONES.items():
        for method in METHODS:
            p = with_overrides(base, {"pretrain": {"method": method, "augment": augment,
                                                   "backbone": {"name": name, "width": width}}})
            learner = build_learner(learner_config(p.pretrain, channels, 10)).to(device)
            opt = torch.optim.Adam([q for q in learner.parameters() if q.requires_grad], lr=1e-3)
            x, y = torch.rand(128, channels, size, size, device=device), torch.randint(0, 10, (128,), device=device)
            n = steps if name != "resnet18" or device.type == "cuda" else 2
            for i in range(n + 1):
                if i == 1:
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    start = time.perf_counter()
                loss = learner.training_loss(x, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                learner.after_step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            rate = 128 * n / (time.perf_counter() - start)
            logging.info("%-30s %-10s %8.0f images/s", label, method, rate)
            rows.append((label, method, rate))
    return rows


def accuracy_after_budget(overrides: dict, device: torch.device) -> list[tuple[str, float, float, float]]:
    base = with_overrides(load_params(ROOT / "params.yaml"), overrides)
    data = prepared_in_memory(base)
    train, test = data.indices("train"), data.indices("test")
    x, y = to_tensor(data.images[train], device), torch.from_numpy(data.labels[train]).to(device)
    xt = to_tensor(data.images[test], device)
    rows = []
    for method in METHODS:
        p = with_overrides(base, {"pretrain": {"method": method}})
        start = time.perf_counter()
        learner, _ = train_from_scratch(learner_config(p.pretrain, data.images.shape[-1], len(data.classes)), x, y,
                                        desc=method)
        seconds = time.perf_counter() - start
        f_train, f_test = extract_features(learner, x), extract_features(learner, xt)
        knn = knn_accuracy(f_train, data.labels[train], f_test, data.labels[test])
        probe = 100 * fit_linear_probe(f_train, data.labels[train]).score(f_test, data.labels[test])
        logging.info("%-10s kNN %.1f probe %.1f (%.0fs)", method, knn, probe, seconds)
        rows.append((method, knn, probe, seconds))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-cifar", action="store_true")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/pretrain.md"))
    ns = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("unlearn.training").setLevel(logging.WARNING)
    device = resolve_device("auto")
    where = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    out = [f"# Pretraining benchmark ({where}, torch {torch.__version__}, {platform.machine()})", "",
           "## Training throughput (batch 128, Adam, images/s; higher is better)", "",
           "| backbone | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    rates = throughput(device, ns.steps)
    for label in BACKBONES:
        out.append(f"| {label} | " + " | ".join(f"{r:.0f}" for b, _, r in rates if b == label) + " |")
    sections = [("digits: 900 members, small_cnn w32, 100 epochs, Adam 1e-3, digits augmentations", DIGITS)]
    if not ns.skip_cifar and ZIP.is_file():
        sections.append(("CIFAR-10 subset (10k images: 6,000 train / 3,000 test), resnet_compact w16, 15 epochs, "
                         "batch 256, Adam 1e-3, SimCLR augmentations", CIFAR))
    elif not ns.skip_cifar:
        out += ["", f"CIFAR-10 rows skipped: {ZIP} not found."]
    for title, overrides in sections:
        out += ["", f"## Test accuracy after a fixed budget — {title}", "",
                "| method | kNN (k=200, cosine) | linear probe | train seconds |", "|---|---|---|---|"]
        out += [f"| {m} | {k:.1f} | {p:.1f} | {s:.0f} |" for m, k, p, s in accuracy_after_budget(overrides, device)]
    out += ["", "Anchor (lightly's CIFAR-10 benchmark, ResNet-18, 200 epochs, kNN): SimCLR 0.847, MoCo 0.838, "
            "BYOL 0.869. The CPU budget above is far smaller; a GPU run of resnet18 is needed to compare."]
    text = "\n".join(out) + "\n"
    print(text)
    write_text(ns.out, text)


if __name__ == "__main__":
    main()
