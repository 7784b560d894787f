"""Data: sources, the prepared-data manifest, splits, augmentations."""
