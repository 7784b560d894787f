"""Seeded, class-stratified assignment of samples to train (members) / reference / test."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def assign_splits(labels: np.ndarray, n_train: int, n_reference: int, n_test: int | None, seed: int) -> np.ndarray:
    """Return the split name of every sample (unassigned samples, if any, get ``"unused"``).

    Args:
        labels: Shape: (N,).
        n_train, n_reference: split sizes. n_test: size, or None for every remaining sample.
    Returns:
        Shape: (N,) array of str.
    """
    n = len(labels)
    n_test = n - n_train - n_reference if n_test is None else n_test
    if n_test < 2 or n_train + n_reference + n_test > n:
        raise ValueError(f"prepare.splits: train {n_train} + reference {n_reference} + test {n_test} "
                         f"does not fit the {n} available images")
    idx = np.arange(n)
    train, rest = train_test_split(idx, train_size=n_train, stratify=labels, random_state=seed)
    ref, rest = train_test_split(rest, train_size=n_reference, stratify=labels[rest], random_state=seed + 1)
    if n_test < len(rest):
        rest, _ = train_test_split(rest, train_size=n_test, stratify=labels[rest], random_state=seed + 2)
    out = np.full(n, "unused", dtype=object)
    out[train], out[ref], out[rest] = "train", "reference", "test"
    return out.astype(str)
