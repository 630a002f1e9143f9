"""Portability: what would stop claude-sync on Windows or macOS, checked on Linux by taking
the POSIX-only parts of Python away (CI runs Linux only; see README "Development")."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
from conftest import Machine
from filelock import FileLock

from claude_sync import portable
from claude_sync.store.folder import FolderStore

#: Python as on Windows: no fcntl, no pwrite/sync/fchmod/link, no O_NOFOLLOW/O_CLOEXEC.
WINDOWS_LIKE = """
import os, sys
sys.modules["fcntl"] = None
for name in ("pwrite", "pread", "sync", "fchmod", "link", "O_NOFOLLOW", "O_CLOEXEC"):
    if hasattr(os, name):
        delattr(os, name)
from claude_sync.cli import main
sys.argv[0] = "claude-sync"
main()
"""


def run_windows_like(m: Machine, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", WINDOWS_LIKE, *args],
        env=m.environ(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=m.home,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_sync_works_without_the_posix_only_parts_of_python(machines, repo_dir):
    a, b = machines
    a.write("projects/-x/s.jsonl", "".join(f'{{"uuid": "{i}"}}\n' for i in range(2000)))
    a.write("settings.json", '{"model": "opus"}\n')
    run_windows_like(a, "init", str(repo_dir))
    run_windows_like(a, "push")
    run_windows_like(b, "init", str(repo_dir))
    run_windows_like(b, "pull")
    for rel in ("projects/-x/s.jsonl", "settings.json"):
        assert (b.claude / rel).read_bytes() == (a.claude / rel).read_bytes()
    a.append("projects/-x/s.jsonl", '{"uuid": "new"}\n')
    run_windows_like(a, "push")
    run_windows_like(b, "sync")
    assert (b.claude / "projects/-x/s.jsonl").read_text().endswith('{"uuid": "new"}\n')


def test_a_second_claude_sync_waits_for_the_lock_then_fails_cleanly(machines, repo_dir):
    a, _ = machines
    a.run("init", str(repo_dir))
    a.env["CLAUDE_SYNC_LOCK_TIMEOUT"] = "1"
    with FileLock(a.config_dir / "lock"):
        proc = a.run("push", check=False)
    assert proc.returncode == 1
    assert proc.stderr == "error: another claude-sync is still running on this machine\n"
    a.run("push")


@pytest.mark.parametrize("failure", [errno.EPERM, errno.EOPNOTSUPP, None])
def test_folder_store_without_hard_links_is_still_create_only(tmp_path, monkeypatch, failure):
    def no_link(src: str, dst: str) -> None:
        if failure is None:
            raise NotImplementedError
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(os, "link", no_link)
    store = FolderStore(tmp_path)
    assert store.put_if_absent("a/b", b"first")
    assert not store.put_if_absent("a/b", b"second")
    assert store.get("a/b") == b"first"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]


def test_folder_store_reports_other_link_errors(tmp_path, monkeypatch):
    def broken(src: str, dst: str) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "link", broken)
    with pytest.raises(Exception, match="cannot write"):
        FolderStore(tmp_path).put_if_absent("x", b"1")


def test_pwrite_and_sync_all_without_their_posix_calls(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "pwrite")
    monkeypatch.delattr(os, "sync")
    synced = []
    monkeypatch.setattr(portable, "fsync_path", synced.append)
    path = tmp_path / "f"
    path.write_bytes(b"." * 10)
    for offset, data in ((6, b"WORLD"[:4]), (0, b"HELLO")):
        fd = os.open(path, os.O_WRONLY)
        try:
            portable.pwrite(fd, data, offset)
        finally:
            os.close(fd)
    assert path.read_bytes() == b"HELLO.WORL"
    portable.sync_all([path])
    assert synced == [path]
