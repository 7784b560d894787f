"""The prepared dataset: uint8 arrays, a manifest (id, label, split, pixel sha256) and one fingerprint.

On disk (``data/prepared/``): ``images.npy`` (N, H, W, C) uint8, ``labels.npy`` (N,) int64,
``manifest.csv`` and ``dataset.json`` (fingerprint, classes, split counts). Loading re-hashes the pixels and
refuses a dataset whose fingerprint changed.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unlearn.io import atomic_write, read_json, save_npy, sha256_bytes, write_json

SPLITS = ("train", "reference", "test")


@dataclass(frozen=True)
class PreparedData:
    """The prepared dataset in memory.

    Attributes:
        images: Shape: (N, H, W, C) uint8.
        labels: Shape: (N,) int64.
        ids: sample ids, length N.
        splits: split name per sample, length N (train/reference/test).
        classes: class names.
        fingerprint: sha256 over the manifest rows.
    """

    images: np.ndarray
    labels: np.ndarray
    ids: list[str]
    splits: np.ndarray
    classes: list[str]
    fingerprint: str

    def indices(self, split: str) -> np.ndarray:
        """Positions of the samples of one split. Shape: (n,)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return np.flatnonzero(self.splits == split)

    def positions_of(self, ids: list[str]) -> np.ndarray:
        """Positions of the given sample ids; an unknown id raises ``ValueError`` naming it."""
        lookup = {sid: i for i, sid in enumerate(self.ids)}
        missing = [sid for sid in ids if sid not in lookup]
        if missing:
            raise ValueError(f"unknown sample id(s): {', '.join(missing[:5])}")
        return np.array([lookup[sid] for sid in ids], dtype=np.int64)


def pixel_hashes(images: np.ndarray) -> list[str]:
    """sha256 of each image's raw bytes. Shape in: (N, H, W, C)."""
    return [hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest() for img in images]


def fingerprint(ids: list[str], labels: np.ndarray, splits: np.ndarray, hashes: list[str], shape: tuple) -> str:
    """sha256 of the manifest rows plus the image shape: changes whenever any pixel, label or split changes."""
    lines = [f"shape={'x'.join(map(str, shape))}"]
    lines += [f"{i},{int(y)},{s},{h}" for i, y, s, h in zip(ids, labels, splits, hashes)]
    return sha256_bytes("\n".join(lines).encode())


def save_prepared(out_dir: str | Path, images: np.ndarray, labels: np.ndarray, ids: list[str],
                  splits: np.ndarray, classes: list[str], source: str) -> str:
    """Write the prepared dataset atomically, file by file; returns the fingerprint."""
    out = Path(out_dir)
    hashes = pixel_hashes(images)
    fp = fingerprint(ids, labels, splits, hashes, images.shape[1:])
    save_npy(out / "images.npy", images)
    save_npy(out / "labels.npy", labels.astype(np.int64))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sample_id", "label", "split", "sha256"])
    writer.writerows(zip(ids, labels.tolist(), splits.tolist(), hashes))
    atomic_write(out / "manifest.csv", lambda p: p.write_text(buf.getvalue(), encoding="utf-8"))
    counts = {s: int((splits == s).sum()) for s in SPLITS}
    write_json(out / "dataset.json", {"fingerprint": fp, "source": source, "classes": classes,
                                      "image_shape": list(images.shape[1:]), "counts": counts})
    return fp


def load_prepared(in_dir: str | Path, verify: bool = True) -> PreparedData:
    """Load ``data/prepared``; with ``verify`` re-hash every image and compare with the recorded fingerprint."""
    src = Path(in_dir)
    meta = read_json(src / "dataset.json")
    for name in ("images.npy", "labels.npy", "manifest.csv"):
        if not (src / name).is_file():
            raise FileNotFoundError(f"{src / name}: missing; run the prepare stage")
    images = np.load(src / "images.npy", allow_pickle=False)
    labels = np.load(src / "labels.npy", allow_pickle=False)
    with open(src / "manifest.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [r["sample_id"] for r in rows]
    splits = np.array([r["split"] for r in rows])
    if len(ids) != len(images) or len(labels) != len(images):
        raise ValueError(f"{src}: manifest has {len(ids)} rows but images.npy has {len(images)} images")
    if verify:
        hashes = pixel_hashes(images)
        bad = [r["sample_id"] for r, h in zip(rows, hashes) if r["sha256"] != h]
        if bad:
            raise ValueError(f"{src}: pixels changed for sample(s) {', '.join(bad[:5])}; re-run prepare")
        fp = fingerprint(ids, labels, splits, hashes, images.shape[1:])
        if fp != meta["fingerprint"]:
            raise ValueError(f"{src}/dataset.json: fingerprint {meta['fingerprint'][:12]} does not match the "
                             f"data ({fp[:12]}); the dataset changed, re-run prepare")
    return PreparedData(images, labels, ids, splits, list(meta["classes"]), meta["fingerprint"])
