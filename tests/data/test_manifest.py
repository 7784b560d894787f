import numpy as np
import pytest

from unlearn.data.manifest import load_prepared, save_prepared
from unlearn.data.sources import load_digits_source
from unlearn.data.splits import assign_splits


def _prepare(out, seed=0):
    raw = load_digits_source()
    splits = assign_splits(raw.labels, 900, 400, None, seed)
    return save_prepared(out, raw.images, raw.labels, raw.ids, splits, raw.classes, "digits")


def test_digits_source_is_uint8_with_unique_ids():
    raw = load_digits_source()
    assert raw.images.shape == (1797, 8, 8, 1) and raw.images.dtype == np.uint8
    assert raw.images.max() == 255 and len(set(raw.ids)) == 1797


def test_fingerprint_is_deterministic_and_seed_sensitive(tmp_path):
    a, b = _prepare(tmp_path / "a"), _prepare(tmp_path / "b")
    c = _prepare(tmp_path / "c", seed=1)
    assert a == b != c
    assert (tmp_path / "a" / "manifest.csv").read_bytes() == (tmp_path / "b" / "manifest.csv").read_bytes()


def test_splits_are_disjoint_stratified_and_sized(tmp_path):
    _prepare(tmp_path)
    data = load_prepared(tmp_path)
    sizes = {s: len(data.indices(s)) for s in ("train", "reference", "test")}
    assert sizes == {"train": 900, "reference": 400, "test": 497}
    counts = np.bincount(data.labels[data.indices("train")])
    assert counts.min() >= 85  # stratified: ~90 per class


def test_changed_pixels_are_refused(tmp_path):
    _prepare(tmp_path)
    images = np.load(tmp_path / "images.npy")
    images[5, 0, 0, 0] ^= 1
    np.save(tmp_path / "images.npy", images)
    with pytest.raises(ValueError, match="digits-00005"):
        load_prepared(tmp_path)


def test_changed_manifest_fingerprint_is_refused(tmp_path):
    _prepare(tmp_path)
    text = (tmp_path / "manifest.csv").read_text().replace(",train,", ",test,", 1)
    (tmp_path / "manifest.csv").write_text(text)
    with pytest.raises(ValueError, match="fingerprint"):
        load_prepared(tmp_path)


def test_unknown_id_is_named(tmp_path):
    _prepare(tmp_path)
    with pytest.raises(ValueError, match="digits-99999"):
        load_prepared(tmp_path).positions_of(["digits-00001", "digits-99999"])


def test_splits_that_do_not_fit_are_an_error():
    with pytest.raises(ValueError, match="prepare.splits"):
        assign_splits(np.repeat(np.arange(10), 10), 80, 30, None, 0)
