"""The CIFAR source: clear errors without files, ids and classes from the dataset (torchvision faked)."""

import numpy as np
import pytest
import torchvision.datasets

from unlearn.data.cifar import load_cifar_source


def test_missing_files_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare.download: true"):
        load_cifar_source("cifar10", str(tmp_path), download=False)
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        load_cifar_source("cifar100", str(tmp_path), download=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="prepare.root"):
        load_cifar_source("cifar10", None, download=False)
    with pytest.raises(ValueError, match="unknown CIFAR source"):
        load_cifar_source("cifar7", str(tmp_path), download=False)


class FakeCIFAR10:
    base_folder = "cifar-10-batches-py"
    classes = ["airplane", "automobile"]

    def __init__(self, root: str, train: bool, download: bool) -> None:
        n = 3 if train else 2
        self.data = np.full((n, 32, 32, 3), 7 if train else 9, dtype=np.uint8)
        self.targets = [i % 2 for i in range(n)]


def test_train_then_test_with_stable_ids(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    raw = load_cifar_source("cifar10", str(tmp_path), download=False)
    assert raw.ids == ["cifar10-train-00000", "cifar10-train-00001", "cifar10-train-00002",
                       "cifar10-test-00000", "cifar10-test-00001"]
    assert raw.labels.tolist() == [0, 1, 0, 0, 1] and raw.labels.dtype == np.int64
    assert raw.classes == ["airplane", "automobile"]
    assert raw.images.shape == (5, 32, 32, 3) and raw.images[3, 0, 0, 0] == 9
