"""Input checks shared by the attacks that fit a model on feature matrices."""

from __future__ import annotations

import numpy as np


def check_features(features: np.ndarray, name: str) -> np.ndarray:
    """Validate a non-empty finite 2-D feature matrix and return it as float64. Shape: (N, F)."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    return x
