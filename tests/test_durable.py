"""One atomic-write helper with one set of guarantees: temporary file in the same folder,
fsync of the file, rename, fsync of the folder; nothing half-written, no temporary left."""

from __future__ import annotations

import ast
import os
import threading
import time
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


def test_a_long_run_of_writes_is_written_back_while_it_goes_on(monkeypatch):
    """The disk is told to start every `every` bytes, from a thread of its own, not at once
    for all; the thread is gone when the writes are done."""
    synced: list[str] = []
    monkeypatch.setattr(os, "sync", lambda: synced.append(threading.current_thread().name))
    with durable.WriteBack(every=100) as write_back:
        write_back.wrote(60)
        assert write_back._thread is None  # nothing yet: less than `every`
        write_back.wrote(60)
        deadline = time.monotonic() + 10
        while not synced and time.monotonic() < deadline:
            time.sleep(0.01)
        assert synced == ["write-back"]
        thread = write_back._thread
    assert thread is not None and not thread.is_alive()
    assert synced == ["write-back"]  # (the last part is the caller's own sync)


def test_many_small_files_are_written_back_as_they_go_too(monkeypatch):
    """A new file counts for its inode and name besides its bytes: a pull of thousands of
    small files is not all left to the sync at its end."""
    synced: list[str] = []
    monkeypatch.setattr(os, "sync", lambda: synced.append("sync"))
    every = 8 * durable.FILE_WRITE_BACK
    with durable.WriteBack(every=every) as write_back:
        write_back.wrote(100, files=4)
        assert write_back._thread is None
        write_back.wrote(100, files=4)
        deadline = time.monotonic() + 10
        while not synced and time.monotonic() < deadline:
            time.sleep(0.01)
    assert synced == ["sync"]


def test_without_os_sync_nothing_is_started(monkeypatch):
    monkeypatch.delattr(os, "sync")
    with durable.WriteBack(every=10) as write_back:
        write_back.wrote(1000)
        assert write_back._thread is None
