"""One atomic-write helper with one set of guarantees: temporary file in the same folder,
fsync of the file, rename, fsync of the folder; nothing half-written, no temporary left."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import claude_sync
from claude_sync import durable
from claude_sync.portable import create_only_rename


def _synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of what was fsynced, in order (the file's temporary name, then the folder)."""
    done: list[str] = []
    real = os.fsync

    def record(fd: int) -> None:
        done.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    return done


def test_writes_fsyncs_file_then_folder_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "f"
    synced = _synced(monkeypatch)
    assert durable.write_atomically(target, b"new", prefix=".tmp-")
    assert target.read_bytes() == b"new"
    assert [Path(p).parent for p in synced] == [tmp_path, tmp_path.parent]
    assert Path(synced[0]).name.startswith(".tmp-") and synced[1] == str(tmp_path)
    assert os.listdir(tmp_path) == ["f"]


def test_a_failed_or_abandoned_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def fail(fh: object) -> None:
        raise OSError("disk gone")

    with pytest.raises(OSError):
        durable.write_atomically(target, fail)
    assert not durable.write_atomically(target, b"new", before_rename=lambda tmp: False)
    with pytest.raises(FileExistsError):
        durable.write_atomically(target, b"new", rename=create_only_rename)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


def test_private_files_are_the_owners_alone(tmp_path):
    durable.write_atomically(tmp_path / "f", b"x", private=True)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "module", ["config.py", "session_archive.py", "engine.py", "store/folder.py"]
)
def test_modules_write_files_through_the_one_helper(module):
    source = (Path(claude_sync.__file__).parent / module).read_text()
    calls = [
        node.func.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert "mkstemp" not in calls
