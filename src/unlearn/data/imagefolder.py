"""Images in a class-per-folder tree (``[<split>/]<class>/<file>``), as a directory or a ``.zip`` of one
(read in place, without extracting)."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from unlearn.data.sources import RawImages

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})


def load_imagefolder_source(root: str | Path | None) -> RawImages:
    """Load every image under ``root`` (a directory or a zip file) as RGB uint8.

    The class of an image is the name of its parent folder; its id is its path relative to ``root`` without
    the extension (e.g. ``train/airplane/0001``). Samples are sorted by id, classes by name. Hidden files and
    folders (``.*``, ``__MACOSX``), non-image files and files directly under ``root`` are ignored.

    Raises:
        ValueError: no ``root``, no images, two files with the same id, an undecodable image, or images of
            different sizes (names the first file whose size differs from the first image's).
        FileNotFoundError: ``root`` does not exist.
    """
    if root is None:
        raise ValueError("prepare.root must name the image folder or zip when prepare.source is 'imagefolder'")
    path = Path(root)
    if not path.exists():
        raise FileNotFoundError(f"imagefolder root {path} does not exist")
    if path.is_dir():
        files = {p.relative_to(path).as_posix(): p for p in path.rglob("*") if p.is_file()}
        entries = _image_entries(files)
        samples = [(sample_id, _reader_file(files[rel]), rel) for sample_id, rel in entries]
        return _decode(path, samples)
    if not zipfile.is_zipfile(path):
        raise ValueError(f"imagefolder root {path} is neither a directory nor a zip file")
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        entries = _image_entries(members)
        samples = [(sample_id, _reader_zip(archive, members[rel]), rel) for sample_id, rel in entries]
        return _decode(path, samples)


def _image_entries(names: dict[str, object]) -> list[tuple[str, str]]:
    """(id, relative path) of the image files among ``names``, sorted by id; rejects duplicate ids."""
    entries = []
    for rel in names:
        parts = rel.strip("/").split("/")
        if len(parts) < 2 or any(p.startswith(".") or p == "__MACOSX" for p in parts):
            continue
        stem, dot, ext = rel.rpartition(".")
        if dot and "/" not in ext and f".{ext.lower()}" in IMAGE_EXTENSIONS:
            entries.append((stem, rel))
    entries.sort()
    for (a, rel_a), (b, rel_b) in zip(entries, entries[1:]):
        if a == b:
            raise ValueError(f"imagefolder: {rel_a} and {rel_b} give the same sample id {a!r}")
    return entries


def _reader_file(p: Path) -> Callable[[], bytes]:
    return p.read_bytes


def _reader_zip(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    return lambda: archive.read(info)


def _decode(root: Path, samples: list[tuple[str, Callable[[], bytes], str]]) -> RawImages:
    """Decode all samples in one pass into a preallocated (N, H, W, 3) array."""
    from PIL import Image

    if not samples:
        raise ValueError(f"imagefolder root {root} holds no images in <class>/<file> folders "
                         f"(extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    class_of = [rel.strip("/").split("/")[-2] for _, _, rel in samples]
    classes = sorted(set(class_of))
    index = {c: i for i, c in enumerate(classes)}
    images: np.ndarray | None = None
    for i, (_, read, rel) in enumerate(samples):
        try:
            with Image.open(io.BytesIO(read())) as img:
                pixels = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{root}: cannot decode image {rel} ({exc})") from None
        if images is None:
            images = np.empty((len(samples), *pixels.shape), dtype=np.uint8)
        elif pixels.shape != images.shape[1:]:
            raise ValueError(f"{root}: image {rel} is {pixels.shape[1]}x{pixels.shape[0]} but the first image "
                             f"({samples[0][2]}) is {images.shape[2]}x{images.shape[1]}; "
                             "all images must share one size")
        images[i] = pixels
    assert images is not None
    labels = np.array([index[c] for c in class_of], dtype=np.int64)
    logger.info("imagefolder %s: %d images of %s, %d classes", root, len(images), images.shape[1:], len(classes))
    return RawImages(images, labels, [sample_id for sample_id, _, _ in samples], classes)
