"""The class-per-folder image loader, on a tiny PNG tree and a zip of it."""

import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unlearn.data.imagefolder import load_imagefolder_source

REAL_ZIP = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "cifar10-jpeg.zip"


def write_png(path: Path, value: int, size: tuple[int, int] = (4, 3), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, value // 2, 255 - value)).save(path)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    write_png(root / "train" / "dog" / "b.png", 10)
    write_png(root / "train" / "cat" / "a.png", 20)
    write_png(root / "test" / "cat" / "c.png", 30, mode="L")  # grayscale is converted to RGB
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    write_png(root / "train" / ".hidden" / "x.png", 40)
    return root


def zip_of(root: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(root.rglob("*")):
            archive.write(file, file.relative_to(root).as_posix())
    return path


def check(raw) -> None:
    assert raw.ids == ["test/cat/c", "train/cat/a", "train/dog/b"]
    assert raw.classes == ["cat", "dog"]
    assert raw.labels.tolist() == [0, 0, 1]
    assert raw.images.shape == (3, 3, 4, 3) and raw.images.dtype == np.uint8
    assert raw.images[1, 0, 0].tolist() == [20, 10, 235]
    assert raw.images[0, 0, 0].tolist() == [30, 30, 30]


def test_directory(tree):
    check(load_imagefolder_source(str(tree)))


def test_zip_matches_directory(tree, tmp_path):
    raw = load_imagefolder_source(zip_of(tree, tmp_path / "images.zip"))
    check(raw)
    np.testing.assert_array_equal(raw.images, load_imagefolder_source(tree).images)


def test_mismatched_sizes_name_the_file(tree, tmp_path):
    write_png(tree / "train" / "dog" / "z.png", 50, size=(5, 5))
    with pytest.raises(ValueError, match="train/dog/z.png"):
        load_imagefolder_source(tree)
    with pytest.raises(ValueError, match="train/dog/z.png"):
        load_imagefolder_source(zip_of(tree, tmp_path / "images.zip"))


def test_missing_root_empty_tree_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_imagefolder_source(tmp_path / "nowhere")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        load_imagefolder_source(tmp_path / "empty")
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(ValueError, match="neither a directory nor a zip"):
        load_imagefolder_source(tmp_path / "plain.txt")
    broken = tmp_path / "broken" / "cat" / "a.png"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cat/a.png"):
        load_imagefolder_source(tmp_path / "broken")
    with pytest.raises(ValueError, match="prepare.root"):
        load_imagefolder_source(None)


def test_duplicate_ids_rejected(tree):
    write_png(tree / "train" / "cat" / "a.jpg", 20)
    with pytest.raises(ValueError, match="same sample id"):
        load_imagefolder_source(tree)


@pytest.mark.skipif(os.environ.get("UNLEARN_SLOW_TESTS") != "1" or not REAL_ZIP.is_file(),
                    reason="needs UNLEARN_SLOW_TESTS=1 and ../shared/datasets/cifar10-jpeg.zip (reads 60,000 JPEGs)")
def test_real_cifar10_jpeg_zip():
    start = time.perf_counter()
    raw = load_imagefolder_source(REAL_ZIP)
    assert raw.images.shape == (60000, 32, 32, 3)
    assert len(raw.classes) == 10 and raw.ids[0] == "test/airplane/0000"
    assert np.bincount(raw.labels).tolist() == [6000] * 10
    assert time.perf_counter() - start < 120
