"""CIFAR-10 / CIFAR-100 (Krizhevsky 2009) through torchvision: train and test sets concatenated."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from unlearn.data.sources import RawImages

logger = logging.getLogger(__name__)

SOURCES = ("cifar10", "cifar100")


def load_cifar_source(source: str, root: str | Path | None, download: bool = False) -> RawImages:
    """Load CIFAR-10 or CIFAR-100 (python version) from ``root``: 60,000 32x32 RGB images.

    Ids are ``<source>-<split>-<index>``, e.g. ``cifar10-train-00000`` ... ``cifar10-test-09999``; the train
    images come first. Class names are the dataset's own.

    Args:
        source: ``cifar10`` or ``cifar100``.
        root: directory holding (or to receive) torchvision's ``cifar-10-batches-py`` / ``cifar-100-python``.
        download: let torchvision download the archive when it is missing (``prepare.download``).

    Raises:
        ValueError: unknown source or no ``root``.
        FileNotFoundError: the files are missing or damaged and ``download`` is false.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown CIFAR source {source!r}; expected one of {', '.join(SOURCES)}")
    if root is None:
        raise ValueError(f"prepare.root must name the directory that holds (or will receive) the {source} files "
                         f"when prepare.source is {source!r}")
    from torchvision import datasets

    cls = datasets.CIFAR10 if source == "cifar10" else datasets.CIFAR100
    parts: list[tuple[str, object]] = []
    for split in ("train", "test"):
        try:
            parts.append((split, cls(str(root), train=split == "train", download=download)))
        except RuntimeError as exc:
            if download:
                raise
            folder = Path(root) / getattr(cls, "base_folder", "")
            raise FileNotFoundError(f"{source}: no valid dataset files in {folder} ({exc}); set "
                                    f"prepare.download: true to download them, or point prepare.root at the "
                                    f"directory that contains {folder.name}/") from None
    images = np.concatenate([np.asarray(ds.data, dtype=np.uint8) for _, ds in parts])
    labels = np.concatenate([np.asarray(ds.targets, dtype=np.int64) for _, ds in parts])
    ids = [f"{source}-{split}-{i:05d}" for split, ds in parts for i in range(len(ds.data))]
    classes = [str(c) for c in parts[0][1].classes]
    logger.info("%s: %d images, %d classes from %s", source, len(images), len(classes), root)
    return RawImages(images, labels, ids, classes)
