"""Raw image sources. Each returns a :class:`RawImages`: uint8 pixels, integer labels, stable sample ids."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawImages:
    """Images as delivered by a source.

    Attributes:
        images: uint8 pixels. Shape: (N, H, W, C).
        labels: int64 class indices. Shape: (N,).
        ids: one stable, source-unique string id per sample (what deletion requests name).
        classes: class names, indexed by label.
    """

    images: np.ndarray
    labels: np.ndarray
    ids: list[str]
    classes: list[str]

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if len(self.labels) != n or len(self.ids) != n:
            raise ValueError(f"{n} images but {len(self.labels)} labels and {len(self.ids)} ids")
        if len(set(self.ids)) != n:
            raise ValueError("sample ids are not unique")


def load_digits_source() -> RawImages:
    """scikit-learn's embedded 8x8 digits (1,797 images, 10 classes), pixel values 0..16 scaled to 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]  # (N, 8, 8, 1)
    ids = [f"digits-{i:05d}" for i in range(len(pixels))]
    return RawImages(pixels, bunch.target.astype(np.int64), ids, [str(c) for c in bunch.target_names])


def load_source(source: str, root: str | None = None, download: bool = False) -> RawImages:
    """Dispatch on the ``prepare.source`` name."""
    if source == "digits":
        return load_digits_source()
    if source in ("cifar10", "cifar100"):
        from unlearn.data.cifar import load_cifar_source

        return load_cifar_source(source, root, download)
    if source == "imagefolder":
        from unlearn.data.imagefolder import load_imagefolder_source

        return load_imagefolder_source(root)
    raise ValueError(f"unknown data source {source!r}; expected digits, cifar10, cifar100 or imagefolder")


def balanced_subset(raw: RawImages, max_images: int, seed: int) -> RawImages:
    """A class-balanced random subset of at most ``max_images`` samples (ids kept)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(raw.labels)
    per_class = max_images // len(classes)
    keep = np.concatenate([rng.permutation(np.flatnonzero(raw.labels == c))[:per_class] for c in classes])
    keep.sort()
    return RawImages(raw.images[keep], raw.labels[keep], [raw.ids[i] for i in keep], raw.classes)
