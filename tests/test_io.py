"""Atomic writes: a full disk is one error naming the target, with no temp file left and the old file intact."""

from __future__ import annotations

import errno
import os

import pytest

from unlearn import io as uio


def _full_disk(exc_errno: int = errno.ENOSPC):
    def write(p):
        with open(p, "wb") as fh:
            fh.write(b"partial")
        raise OSError(exc_errno, os.strerror(exc_errno))
    return write


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_names_the_target_removes_the_temp_file_and_keeps_the_old_file(tmp_path, code):
    target = tmp_path / "models" / "gp.pt"
    target.parent.mkdir()
    target.write_bytes(b"old")
    with pytest.raises(OSError) as err:
        uio.atomic_write(target, _full_disk(code))
    assert err.value.errno == code and err.value.filename == str(target)
    assert f"{err.value.filename}: {err.value.strerror}".startswith(f"{target}: {os.strerror(code)}")
    assert "\n" not in str(err.value) and ".tmp" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["gp.pt"]


def test_disk_full_when_creating_the_temp_file(tmp_path, monkeypatch):
    def mkstemp(**kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / ".x.tmp"))

    monkeypatch.setattr(uio.tempfile, "mkstemp", mkstemp)
    with pytest.raises(OSError) as err:
        uio.write_json(tmp_path / "metrics.json", {"a": 1})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "metrics.json")
    assert list(tmp_path.iterdir()) == []


def test_disk_full_during_fsync_or_rename(tmp_path, monkeypatch):
    def replace(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(uio.os, "replace", replace)
    with pytest.raises(OSError) as err:
        uio.write_bytes(tmp_path / "a.bin", b"data")
    assert err.value.filename == str(tmp_path / "a.bin")
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_pass_through_unchanged(tmp_path):
    def write(p):
        raise PermissionError(errno.EACCES, "Permission denied", str(p))

    with pytest.raises(PermissionError):
        uio.atomic_write(tmp_path / "a.txt", write)
    assert list(tmp_path.iterdir()) == []


def test_write_bytes_writes_exactly_the_bytes(tmp_path):
    data = bytes(range(256)) * 3
    uio.write_bytes(tmp_path / "sub" / "a.bin", data)
    assert (tmp_path / "sub" / "a.bin").read_bytes() == data
    assert uio.sha256_file(tmp_path / "sub" / "a.bin") == uio.sha256_bytes(data)
