"""Shared by the method tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny 8x8 models gain nothing from intra-op threads; on a shared 2-core machine they only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
