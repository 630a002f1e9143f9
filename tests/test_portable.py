"""Portability: what would stop claude-sync on Windows or macOS, checked on Linux by taking
the POSIX-only parts of Python away (CI runs Linux only; see README "Development")."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest
from conftest import Machine
from filelock import FileLock
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync import casefold, portable
from claude_sync.casefold import plan_renames
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


# -- case-insensitive file systems ----------------------------------------------------------


class CaseInsensitiveDir:
    """A simulated macOS/Windows folder: one file per name ignoring case, first name kept."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        for name, data in files.items():
            self.write(name, data)

    def write(self, name: str, data: bytes) -> None:
        kept = self.files.get(name.casefold(), (name, b""))[0]
        self.files[name.casefold()] = (kept, data)

    def read(self, name: str) -> bytes:
        return self.files[name.casefold()][1]


names = st.sampled_from(["agents/a.md", "agents/A.md", "agents/A (case 2).md", "x/.Rc", "x/.rc"])


@settings(max_examples=500, print_blob=True)
@given(present=st.sets(names), writes=st.sets(names))
def test_pull_into_a_case_insensitive_folder_never_overwrites(present, writes):
    # Such a folder holds one of the names that differ only in case.
    present = set({p.casefold(): p for p in sorted(present)}.values())
    target = CaseInsensitiveDir({p: f"old {p}".encode() for p in present})
    renames = plan_renames(writes, present)
    for path in writes:
        target.write(renames.get(path, path), f"new {path}".encode())
    for path in writes:
        assert target.read(renames.get(path, path)) == f"new {path}".encode()
    for path in present - writes:
        if all(renames.get(w, w).casefold() != path.casefold() for w in writes):
            assert target.read(path) == f"old {path}".encode()
        else:  # only the same path (same case) may replace a file
            raise AssertionError(f"{path} overwritten")
    assert set(renames) <= writes


def test_renames_keep_the_folder_and_extension():
    assert plan_renames(["agents/Review.md"], ["agents/review.md"]) == {
        "agents/Review.md": "agents/Review (case 2).md"
    }
    assert plan_renames(["a/B.tar.gz", "a/b.tar.gz"], []) == {"a/b.tar.gz": "a/b (case 2).tar.gz"}
    assert plan_renames(["a/.Rc"], ["a/.rc", "a/.Rc (case 2)"]) == {"a/.Rc": "a/.Rc (case 3)"}
    assert plan_renames(["a/x.md"], ["a/x.md"]) == {}


def test_case_probe_on_this_file_system(tmp_path):
    assert casefold.is_case_insensitive(tmp_path) is False  # Linux: case-sensitive
    assert list(tmp_path.iterdir()) == []


CASE_INSENSITIVE = """
from claude_sync import casefold
casefold.is_case_insensitive = lambda folder: True
"""


def test_pull_writes_a_name_differing_only_in_case_beside_the_file(machines, repo_dir):
    a, b = machines
    a.write("agents/Review.md", "from a\n")
    a.run("init", str(repo_dir))
    a.run("push")
    b.write("agents/review.md", "b's own\n")
    b.run("init", str(repo_dir))
    proc = b.run_after(CASE_INSENSITIVE, "pull", "--json")
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads(proc.stdout)["warnings"]
    assert warnings == [
        "agents/Review.md differs from another file only in case: kept as agents/Review (case 2).md"
    ]
    assert (b.claude / "agents/review.md").read_text() == "b's own\n"
    assert (b.claude / "agents/Review (case 2).md").read_text() == "from a\n"
    assert not (b.claude / "agents/Review.md").exists()


def test_modes_are_kept_where_they_mean_something(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_text("x")
    os.chmod(path, 0o640)
    assert portable.mode_of(path.stat()) == 0o640
    portable.set_mode(path, 0o100600)
    assert path.stat().st_mode & 0o777 == 0o600
    monkeypatch.setattr(portable, "WINDOWS", True)
    # Windows' read-only flag is no mode: its files are stored private, modes not applied.
    os.chmod(path, 0o666)
    assert portable.mode_of(path.stat()) == 0o600
    portable.set_mode(path, 0o444)
    assert path.stat().st_mode & 0o777 == 0o666
