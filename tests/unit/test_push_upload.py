"""A file that changes between the scan and the upload is not stored under the id of what the
scan read: the engine in-process, two machines sharing one in-memory repository.

A push seals the new chunks its scan reads; what the scan did not seal (a merged file, a blob
left only in a pack marked by prune) is read again for the upload, the case tested here with
the scan's sealing turned off."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines
from memory_store import MemoryStore

from claude_sync import portable
from claude_sync.engine import Engine
from claude_sync.errors import BackendError, SyncError
from claude_sync.read_worker import read_whole
from claude_sync.reading import SMALL_READ, FileReader
from claude_sync.repository import Repository
from claude_sync.resources import select
from claude_sync.state import State
from claude_sync.uploads import NewChunks, Uploads


def edited_during_upload(pair: EngineMachines, rel: str, text: str) -> mock._patch:  # type: ignore[type-arg]
    upload = Uploads.upload

    def edit_then_upload(uploads: Uploads, *args: object) -> None:
        pair.write(0, rel, text)
        upload(uploads, *args)  # type: ignore[arg-type]

    return mock.patch.object(Uploads, "upload", edit_then_upload)


def sealed_at_upload() -> mock._patch:  # type: ignore[type-arg]
    """The scan seals nothing: every new chunk is read again by the upload."""
    return mock.patch.object(NewChunks, "__call__", lambda sink, blob_id, data: None)


def test_a_file_edited_during_the_upload_waits_for_the_next_push(tmp_path: Path) -> None:
    pair = EngineMachines(tmp_path)
    pair.write(0, "agents/x.md", "scanned\n")
    with sealed_at_upload(), edited_during_upload(pair, "agents/x.md", "edited!\n"):
        result = pair.run(0, "push")
    assert result.pushed == []
    assert any("agents/x.md changed while being pushed" in w for w in result.warnings)
    assert pair.run(0, "push").pushed == ["agents/x.md"]
    pair.run(1, "pull")
    assert pair.read(1, "agents/x.md") == "edited!\n"


def test_a_file_that_counted_on_the_edited_one_for_its_data_waits_too(tmp_path: Path) -> None:
    """Two files with the same content share one blob, uploaded once: when the file it was
    read from changed, the other file must not be listed with a blob that was never stored."""
    pair = EngineMachines(tmp_path)
    pair.write(0, "agents/a.md", "same text\n")
    pair.write(0, "agents/b.md", "same text\n")
    # The newest file is uploaded first: the shared blob is read from a, which changes.
    os.utime(pair.root(0) / "agents/b.md", (1_700_000_000, 1_700_000_000))
    with sealed_at_upload(), edited_during_upload(pair, "agents/a.md", "different\n"):
        result = pair.run(0, "push")
    assert "agents/a.md" not in result.pushed
    pair.run(1, "pull")
    if "agents/b.md" in result.pushed:
        assert pair.read(1, "agents/b.md") == "same text\n"
    pair.run(0, "push")
    pair.run(1, "pull")
    assert (pair.read(1, "agents/a.md"), pair.read(1, "agents/b.md")) == (
        "different\n",
        "same text\n",
    )


def test_a_file_edited_after_the_scan_goes_as_the_scan_read_it(tmp_path: Path) -> None:
    """The scan sealed what it read: the snapshot lists those bytes, and the edit goes with
    the next push."""
    pair = EngineMachines(tmp_path)
    pair.write(0, "agents/x.md", "scanned\n")
    with edited_during_upload(pair, "agents/x.md", "edited!\n"):
        assert pair.run(0, "push").pushed == ["agents/x.md"]
    pair.run(1, "pull")
    assert pair.read(1, "agents/x.md") == "scanned\n"
    assert pair.run(0, "push").pushed == ["agents/x.md"]
    pair.run(1, "pull")
    assert pair.read(1, "agents/x.md") == "edited!\n"


@contextlib.contextmanager
def opened(paths: list[Path]) -> Iterator[collections.Counter[str]]:
    """How many times each of paths is opened inside the block."""
    counts: collections.Counter[str] = collections.Counter()
    wanted = {str(p) for p in paths}
    recording = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if recording[0] and event == "open" and str(args[0]) in wanted:
            counts[str(args[0])] += 1

    sys.addaudithook(hook)  # cannot be removed: it stops recording instead
    try:
        yield counts
    finally:
        recording[0] = False


SESSION = "projects/-home-u-code-app/0b7c5a52-31a5-4f49-a2a7-3d4a2b8e1f10.jsonl"


def test_a_push_reads_each_new_file_once(tmp_path: Path) -> None:
    """The scan's read is the upload's, and a small transcript's summary is read from the
    same bytes: a first push does not read its files twice."""
    pair = EngineMachines(tmp_path)
    rng = random.Random(7)
    big = "".join(f"line {i} {rng.random()}\n" for i in range(150_000))  # ~4 MiB, many chunks
    pair.write(0, "agents/big.md", big)
    pair.write(0, "agents/small.md", "small\n")
    prompt = {"type": "user", "message": {"role": "user", "content": "hello there"}}
    pair.write(0, SESSION, json.dumps(prompt) + "\n")
    paths = ["agents/big.md", "agents/small.md", SESSION]
    files = [pair.root(0) / p for p in paths]
    asked: collections.Counter[str] = collections.Counter()  # to read ahead (nothing read)
    with (
        opened(files) as counts,
        mock.patch.object(portable, "prefetch", lambda ahead: asked.update(p for p, _ in ahead)),
    ):
        result = pair.run(0, "push")
    assert result.pushed == sorted(paths)
    assert counts == {str(f): 1 for f in files}
    # (the first bigger file is read at once, not asked for ahead)
    assert set(asked) <= {str(f) for f in files} and set(asked.values()) == {1}
    summary = Repository.open(pair.store, pair.master).load_snapshot(1).files[SESSION].session
    assert summary is not None and summary.title == "hello there"
    # what the scan sent counts: random digits compress to less than half, not less
    assert result.uploaded_bytes > len(big) // 4
    pair.run(1, "pull")
    assert pair.read(1, "agents/big.md") == big


def test_a_first_push_packs_recent_sessions_together(tmp_path: Path) -> None:
    """A push seals files newest first, so after a first push of years of history a pull of
    recent sessions only (lazy pull) needs few packs."""
    pair = EngineMachines(tmp_path)
    rng = random.Random(3)
    now = time.time()
    ages = list(range(120))
    rng.shuffle(ages)  # the scan meets them in name order: any order of ages
    paths = {}
    for n, age in enumerate(ages):
        path = f"projects/-home-u-code-app/{n:08d}-{rng.getrandbits(64):016x}.jsonl"
        record = {"type": "user", "message": {"content": rng.randbytes(225_000).hex()}}
        pair.write(0, path, json.dumps(record) + "\n")
        os.utime(pair.root(0) / path, (now - age * 86400, now - age * 86400))
        paths[path] = age
    pair.run(0, "push")
    files = Repository.open(pair.store, pair.master).load_snapshot(1).files
    state = State(tmp_path / "m0.db")
    try:
        pack_of = state.blob_packs(b for e in files.values() for b, _ in e.chunks)
    finally:
        state.close()
    recent = {pack_of[b] for p, e in files.items() if paths[p] < 12 for b, _ in e.chunks}
    assert len(set(pack_of.values())) >= 4  # ~27 MiB in packs of 8 MiB
    assert len(recent) <= 2  # the newest tenth: ~2.7 MiB


def test_a_machine_that_pushes_what_another_stored_does_not_send_it_again(tmp_path: Path) -> None:
    """The scan seals only what the repository lacks, as its indexes say now (another
    machine's included), not as this machine last saw them."""
    pair = EngineMachines(tmp_path)
    data = random.Random(5).randbytes(3_000_000).hex()
    pair.write(0, "agents/shared.md", data)
    assert pair.run(0, "push").uploaded_bytes > len(data) // 4
    pair.write(1, "agents/shared.md", data)  # the same file, made there too
    pair.write(1, "agents/own.md", "only here\n")
    result = pair.run(1, "push")
    assert "agents/own.md" in result.pushed
    assert result.uploaded_bytes < 64 * 1024


class _FailingPacks(MemoryStore):
    """A repository whose packs cannot be written (a dropped connection, as a raw OSError)."""

    def put_if_absent(self, name: str, data: bytes) -> bool:
        if name.startswith("data/"):
            raise ConnectionResetError(104, "Connection reset by peer")
        return super().put_if_absent(name, data)


def test_a_repository_that_fails_while_the_scan_sends_fails_the_push(tmp_path: Path) -> None:
    """The scan sends full packs as it reads: a failure there is the repository's, and
    stops the push; it is not taken for a file that cannot be read (and skipped)."""
    pair = EngineMachines(tmp_path)
    pair.store.__class__ = _FailingPacks
    pair.write(0, "agents/big.md", random.Random(9).randbytes(12_000_000).hex())
    with pytest.raises(SyncError, match="cannot write to the repository"):
        pair.run(0, "push")
    pair.store.__class__ = MemoryStore
    assert pair.run(0, "push").pushed == ["agents/big.md"]


class _NoIndexes(MemoryStore):
    """A repository whose index listing fails (a timeout, say)."""

    def _list(self, prefix: str, start_after: str) -> list[str]:
        if prefix.startswith("index"):
            raise BackendError("cannot list the repository's indexes: timed out")
        return super()._list(prefix, start_after)


def test_a_push_that_cannot_learn_what_the_repository_holds_fails_without_hanging(
    tmp_path: Path,
) -> None:
    """The readers wait for the indexes at their first chunk: when reading those fails,
    they are let go and the push fails with the repository's error."""
    pair = EngineMachines(tmp_path)
    pair.write(0, "agents/a.md", random.Random(2).randbytes(3_000_000).hex())
    pair.store.__class__ = _NoIndexes
    with pytest.raises(SyncError, match="timed out"):
        pair.run(0, "push")
    pair.store.__class__ = MemoryStore
    assert pair.run(0, "push").pushed == ["agents/a.md"]


def test_a_small_file_that_grew_after_the_walk_is_read_in_few_calls(tmp_path: Path) -> None:
    """Read whole, a file is read in blocks of at least SMALL_READ once it proves longer
    than its stat said: never a system call per couple of bytes."""
    path = tmp_path / "grew.md"
    path.write_bytes(b"x" * 300_000)
    reads: list[int] = []
    real_read = os.read

    def counted(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    with mock.patch.object(os, "read", counted):
        data, st = read_whole(path, 1, SMALL_READ)  # the walk saw one byte
    assert data == b"x" * 300_000 and st.st_size == 300_000
    assert len(reads) <= 300_000 // SMALL_READ + 3


def test_ctrl_c_while_the_push_learns_what_is_stored_reads_no_more_files(tmp_path: Path) -> None:
    """Ctrl-C while a first push reads the repository's indexes (every one of a big
    repository) stops it there: the files queued for reading are not read."""
    machines = EngineMachines(tmp_path)
    for i in range(60):
        machines.write(0, f"skills/s/f{i}.bin", os.urandom(1 << 20).hex())
    read = []
    checked = FileReader.read_checked

    def counted(self: FileReader, *args: object, **kwargs: object) -> object:
        read.append(1)
        return checked(self, *args, **kwargs)  # type: ignore[arg-type]

    def interrupted(self: Engine) -> set[str]:
        time.sleep(0.05)
        raise KeyboardInterrupt

    engine = machines.engine(0)
    with (
        mock.patch.object(FileReader, "read_checked", counted),
        mock.patch.object(Engine, "known_blobs", interrupted),
        pytest.raises(KeyboardInterrupt),
    ):
        engine.push(select([], {}))
    engine.state.close()
    assert len(read) < 30, len(read)
