"""The local state database: its schema moves forward without losing what it holds."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import sqlite3
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync.errors import SyncError, no_space
from claude_sync.model import FileEntry
from claude_sync.repository import BlobLocation
from claude_sync.session_summary import SessionSummary
from claude_sync.state import SCHEMA_VERSION, CachedFile, State, StatKey, chunks_text

SHA = "a" * 64


def entry(sha: str = SHA) -> FileEntry:
    return FileEntry(sha256=sha, size=1, mtime_ns=5, mode=0o644, chunks=(("b" * 64, 1),))


def test_a_state_written_before_the_base_hash_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE base (path TEXT PRIMARY KEY, entry TEXT, seq INTEGER)")
    old.execute(
        "INSERT INTO base VALUES (?, ?, ?)", ("agents/a.md", json.dumps(entry().to_json()), 3)
    )
    old.commit()
    old.close()

    state = State(path)
    assert state.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert state.base_shas() == {"agents/a.md": SHA}
    bases = state.bases()
    assert bases.sha("agents/a.md") == SHA and bases["agents/a.md"] == entry()
    assert state.forget_bases_after(2) == ["agents/a.md"]
    state.close()
    # Opened again: nothing left to migrate, nothing lost.
    State(path).close()


def test_the_base_hash_follows_every_write_of_the_entry(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    state.set_base("agents/a.md", entry(), 1)
    state.set_base("agents/a.md", entry("c" * 64), 2)
    # An older claude-sync writes bases as three values: the hash is SQLite's to keep.
    state.db.execute(
        "INSERT OR REPLACE INTO base VALUES (?, ?, ?)",
        ("agents/b.md", json.dumps(entry("d" * 64).to_json()), 2),
    )
    assert state.base_shas() == {"agents/a.md": "c" * 64, "agents/b.md": "d" * 64}
    state.set_base("agents/a.md", None, 3)
    assert state.base_shas() == {"agents/b.md": "d" * 64}


def test_a_base_keeps_no_transcript_summary(tmp_path: Path) -> None:
    """A pull records the head's entries as bases: their summaries are for `sessions`, which
    reads the snapshot, and a push's bases never had them."""
    state = State(tmp_path / "state.db")
    summary = SessionSummary("fix the build", "/srv/app", 1.0, 2.0, 3, "main", "laptop")
    state.set_bases([("projects/-srv-app/s.jsonl", entry().with_session(summary))], 1)
    (raw,) = state.db.execute("SELECT entry FROM base").fetchone()
    assert "session" not in json.loads(raw) and "fix the build" not in raw
    assert state.bases()["projects/-srv-app/s.jsonl"] == entry()


def test_the_stat_cache_gives_back_what_it_was_given(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    chunks = (("b" * 64, 0, 3), ("c" * 64, 3, 2))
    state.remember_files([("agents/a.md", CachedFile(StatKey(5, 6, 7, 8), 0o644, SHA, chunks))])
    cached = state.cached_files()["agents/a.md"]
    assert cached.stat == StatKey(5, 6, 7, 8) and cached.mode == 0o644 and cached.sha256 == SHA
    assert cached.chunks == chunks and cached.chunks is cached.chunks  # parsed once


@settings(max_examples=40, deadline=None)
@given(
    known=st.integers(min_value=0, max_value=1200),
    wanted=st.sets(st.integers(min_value=0, max_value=1500), max_size=1500),
)
def test_blobs_are_located_whether_few_or_most_are_wanted(known: int, wanted: set[int]) -> None:
    """A first pull wants most of the blobs (one pass over the table), a later one a few
    (looked up): either way exactly those the cache knows are found, where they are."""
    with tempfile.TemporaryDirectory() as folder:
        state = State(Path(folder) / "state.db")
        locations = {f"{n:064x}": BlobLocation(f"data/p{n % 7}", n, n + 1) for n in range(known)}
        state.add_index("index/i", locations)
        ids = {f"{n:064x}" for n in wanted}
        assert state.locate(ids) == {b: loc for b, loc in locations.items() if b in ids}
        state.close()


def test_a_snapshot_s_transcripts_are_kept_for_that_snapshot_only(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    assert state.snapshot_transcripts("s1") is None
    state.set_snapshot_transcripts("s1", ["projects/p/a.jsonl", "projects/p/b.jsonl"])
    assert state.snapshot_transcripts("s1") == ["projects/p/a.jsonl", "projects/p/b.jsonl"]
    state.set_snapshot_transcripts("s2", [])
    assert state.snapshot_transcripts("s2") == []
    assert state.snapshot_transcripts("s1") is None


def test_a_full_disk_is_said_as_such(tmp_path: Path) -> None:
    """SQLite's `database or disk is full` read like damage, and the state's error told the
    user to delete it: a full disk is now named, wherever it stops a command."""
    path = tmp_path / "state.db"
    State(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA max_page_count = 1")  # what a full disk does to SQLite
    with pytest.raises(sqlite3.OperationalError) as caught:
        db.execute("CREATE TABLE big (x)")
        db.execute("INSERT INTO big VALUES (randomblob(100000))")
    db.close()
    assert no_space(caught.value) == (
        "no space left on the disk for this machine's state database: free some space and "
        "run the command again"
    )
    full = OSError(errno.ENOSPC, "No space left on device", "/home/u/.claude/agents/a.md")
    assert "to write /home/u/.claude/agents/a.md" in (no_space(full) or "")
    assert no_space(OSError(errno.EACCES, "Permission denied")) is None
    assert no_space(sqlite3.OperationalError("no such table")) is None


def test_a_state_path_too_long_for_sqlite_is_said_as_such(tmp_path: Path) -> None:
    folder = tmp_path
    while len(str(folder)) < 600:
        folder = folder / ("d" * 100)
    folder.mkdir(parents=True)
    with pytest.raises(SyncError, match="longer than SQLite takes"):
        State(folder / "state.db")


def _open_temporary_files() -> list[str]:
    """SQLite's temporary files this process holds (deleted once opened, still open)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if "etilqs" in (target := os.readlink(f"/proc/self/fd/{fd}")):
                found.append(target)
    return found


def big_entry(rng: random.Random) -> FileEntry:
    """An entry the size of a transcript's in a pull (its summary's ~140 bytes as a longer
    chunk list)."""
    ids = [f"{rng.getrandbits(256):064x}" for _ in range(6)]
    return FileEntry(f"b3:{ids[0]}", 4000, 1, 0o644, tuple((i, 1000) for i in ids))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_long_transaction_keeps_its_undo_records_in_memory(tmp_path: Path) -> None:
    """The install of a big pull writes tens of thousands of rows in one transaction; each
    statement's undo record once spilled to a temporary file, and every later row was
    written there too (a 50,000-file pull: 370,000 writes)."""
    rng = random.Random(2)
    paths = [
        f"projects/~-code-api-{rng.randrange(500):03d}/{uuid.UUID(int=rng.getrandbits(128))}.jsonl"
        for _ in range(15000)
    ]
    state = State(tmp_path / "state.db")
    with state.transaction():
        for i in range(0, len(paths), 1024):
            part = [(p, big_entry(rng)) for p in paths[i : i + 1024]]
            state.remember_files(
                (p, CachedFile(StatKey(e.size, 1, 2, 3), 0o644, e.sha256, e.located_chunks()))
                for p, e in part
            )
            state.set_bases(part, 1)
        assert _open_temporary_files() == []
    state.close()


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(exclude_categories=()), max_size=70),
            st.integers(0, 1 << 50),
            st.integers(0, 1 << 40),
        ),
        max_size=5,
    )
)
def test_a_files_chunks_are_stored_as_json_dumps_writes_them(chunks) -> None:
    """The stat cache's chunk text, written without json.dumps, is json.dumps' own."""
    assert chunks_text(tuple(chunks)) == json.dumps(tuple(chunks))
