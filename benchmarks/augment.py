"""Augmentation throughput: why the pipeline's views come from :class:`unlearn.data.augment.BatchAugment`
rather than torchvision's v2 transforms. Writes benchmarks/results/augment.md.

torchvision v2 draws one set of random parameters per call. Called on a batch, every image gets the same crop,
flip and jitter, which contrastive learning cannot use (two views of a batch would differ by one global
transform). Called per image, it is correct but runs a Python loop per sample. BatchAugment draws per-image
parameters and applies them in a few batched tensor ops (affine grid + per-sample broadcasts).

    .venv/bin/python benchmarks/augment.py
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Callable

import torch
from torchvision.transforms import v2

from unlearn.data.augment import augment_preset
from unlearn.io import write_text

ROOT = Path(__file__).resolve().parents[1]


def simclr_v2() -> v2.Compose:
    """SimCLR's CIFAR recipe in torchvision v2 (crop 0.2-1, flip, colour jitter 0.8, grayscale 0.2)."""
    return v2.Compose([v2.RandomResizedCrop(32, scale=(0.2, 1.0), antialias=True), v2.RandomHorizontalFlip(),
                       v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(p=0.2),
                       v2.ToDtype(torch.float32, scale=True)])


def images_per_second(fn: Callable[[], torch.Tensor], n_images: int, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return n_images * repeats / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/augment.md"))
    ns = ap.parse_args()
    torch.manual_seed(0)
    batch_u8 = torch.randint(0, 256, (ns.batch, 3, 32, 32), dtype=torch.uint8)  # (B, C, H, W)
    batch_f = batch_u8.float() / 255
    tv, ours = simclr_v2(), augment_preset("cifar_simclr")
    rows = [
        ("torchvision v2, per image (Python loop; correct per-sample views)",
         images_per_second(lambda: torch.stack([tv(img) for img in batch_u8]), ns.batch, ns.repeats)),
        ("torchvision v2, whole batch in one call (one draw for all images: unusable for views)",
         images_per_second(lambda: tv(batch_u8), ns.batch, ns.repeats)),
        ("BatchAugment `cifar_simclr` (per-image draws, batched ops)",
         images_per_second(lambda: ours(batch_f), ns.batch, ns.repeats)),
    ]
    where = f"CPU ({torch.get_num_threads()} threads), torch {torch.__version__}, {platform.machine()}"
    lines = [f"# Augmentation throughput ({where})", "",
             f"SimCLR's CIFAR augmentations on a batch of {ns.batch} 32x32 RGB images, mean of {ns.repeats} calls "
             "(images/s, higher is better).", "", "| implementation | images/s |", "|---|---|"]
    lines += [f"| {name} | {rate:,.0f} |" for name, rate in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(ns.out, text)


if __name__ == "__main__":
    main()
