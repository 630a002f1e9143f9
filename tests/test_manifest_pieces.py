"""A project's manifest group is split into pieces (format 5), so a push that
changes one transcript rewrites one piece of about PIECE_FILES entries, not the project's
whole list; readers see exactly the files the writer listed, whatever the history."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from unittest import mock

from engine_pair import EngineMachines
from hypothesis import given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from claude_sync import compression
from claude_sync.model import FileEntry as ModelEntry
from claude_sync.repository import (
    CHAINED_FORMAT,
    CONFIG_NAME,
    MANIFEST_PREFIX,
    PART_FILES,
    PIECE_FILES,
    SPLIT_SNAPSHOT_VERSION,
    ChangedFiles,
    FileEntry,
    Repository,
    Snapshot,
)
from claude_sync.repository import snapshots as snapshots_module
from claude_sync.state import State

PROJECT = "projects/-home-ann-app"


def entry(n: int) -> FileEntry:
    return FileEntry("0" * 64, n, n, 0o600, ((f"{n % 16:x}" * 64, n),))


def session(i: int) -> str:
    return f"{PROJECT}/{i:08x}-0000-4000-8000-000000000000.jsonl"


def new_parts(store: MemoryStore, before: set[str]) -> list[str]:
    return sorted(set(store.list(MANIFEST_PREFIX)) - before)


def listed(repo: Repository, part: str) -> int:
    """How many entries a stored manifest part lists."""
    body = compression.unpack(repo.keys.open(part, repo.store.get(part)), part)
    return sum(len(files) for files in json.loads(body)["groups"].values())


# Each step: a batch of (path index, new size or None to remove); sizes of 0 are real files.
steps = st.lists(
    st.lists(st.tuples(st.integers(0, 299), st.none() | st.integers(0, 5)), max_size=40),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None, print_blob=True)
@given(history=steps, seed=st.integers(0, 2**32 - 1))
def test_a_reader_sees_exactly_what_the_writer_listed(history, seed):
    """Random adds, changes and removes across many paths of one project (and a few other
    groups): every snapshot reads back, by a machine with no cache, as written."""
    store = MemoryStore()
    writer = Repository.create(store, None)
    reader = Repository.open(store, writer.keys.master)
    rng = random.Random(seed)
    files: dict[str, FileEntry] = {}
    # a project big enough to be split from the start, so steps exercise pieces
    files.update({session(i): entry(i % 6) for i in range(rng.randint(0, 300))})
    head = None
    for seq, step in enumerate(history, start=1):
        for i, size in step:
            path = session(i) if i % 7 else f"agents/a{i}.md"
            if size is None:
                files.pop(path, None)
            else:
                files[path] = entry(size)
        snapshot = Snapshot(seq, seq - 1 or None, "dev", 1.0, dict(files))
        assert writer.write_snapshot(snapshot, head)
        head = snapshot
        assert reader.load_snapshot(seq, cached_ok=False).files == files


@settings(max_examples=60, deadline=None, print_blob=True)
@given(
    history=steps,
    seed=st.integers(0, 2**32 - 1),
    part_files=st.sampled_from([1, 5, 40, PART_FILES]),
)
def test_a_push_written_as_its_changes_is_read_as_the_whole_list(history, seed, part_files):
    """A push writes its head, read a group at a time, plus what changed (ChangedFiles), in
    parts of any size: a machine with no cache reads back the whole list it stands for,
    path by path before decoding it all, and all at once."""
    with mock.patch.object(snapshots_module, "PART_FILES", part_files):
        store = MemoryStore()
        writer = Repository.create(store, None)
        reader = Repository.open(store, writer.keys.master)
        rng = random.Random(seed)
        files = {session(i): entry(i % 6) for i in range(rng.randint(0, 300))}
        assert writer.write_snapshot(Snapshot(1, None, "dev", 1.0, dict(files)), None)
        for seq, step in enumerate(history, start=2):
            head = writer.snapshot(writer.load_root(seq - 1), lazy=True)
            changes: dict[str, FileEntry | None] = {}
            for i, size in step:
                path = session(i) if i % 7 else f"agents/a{i}.md"
                changes[path] = None if size is None else entry(size)
                if size is None:
                    files.pop(path, None)
                else:
                    files[path] = entry(size)
            pushed = Snapshot(seq, seq - 1, "dev", 1.0, ChangedFiles(head.files, changes))
            assert writer.write_snapshot(pushed, head)
            assert dict(pushed.files) == files
            lazy = reader.snapshot(reader.load_root(seq), cached_ok=False, lazy=True)
            for path in rng.sample(sorted(set(files) | set(changes)), min(5, len(changes))):
                assert lazy.files.get(path) == files.get(path)
                assert (path in lazy.files) == (path in files)
            assert dict(lazy.files) == files
            assert reader.load_snapshot(seq, cached_ok=False).files == files


def test_a_push_after_an_append_decodes_only_that_project(tmp_path: Path) -> None:
    """At tens of thousands of files, decoding the head's whole list costs more than the
    rest of a push: an append decodes the entries of the appended transcript's project."""
    pair = EngineMachines(tmp_path)
    record = json.dumps({"type": "user", "message": {"role": "user", "content": "hi"}})
    for p in range(20):
        for i in range(10):
            pair.write(0, f"projects/-home-u-p{p}/{i:08x}-0000-4000-8000-0.jsonl", record + "\n")
    pair.run(0, "push")
    appended = pair.root(0) / "projects/-home-u-p3/00000001-0000-4000-8000-0.jsonl"
    with appended.open("a") as f:
        f.write(record + "\n")
    decoded = mock.patch.object(ModelEntry, "from_json", wraps=ModelEntry.from_json)
    with decoded as from_json:
        assert pair.run(0, "push").pushed == ["projects/-home-u-p3/00000001-0000-4000-8000-0.jsonl"]
    # the project's 10 entries, and the appended transcript's base from the state (the
    # whole list holds 200)
    assert from_json.call_count == 11
    pair.run(1, "pull")
    assert (pair.root(1) / "projects/-home-u-p3/00000001-0000-4000-8000-0.jsonl").read_text() == (
        2 * (record + "\n")
    )
    # The sessions `status` counts are the new snapshot's, taken from its parent's and the
    # push's changes: one session more here, one less on the other machine.
    pair.write(1, "projects/-home-u-p9/0000000a-0000-4000-8000-0.jsonl", record + "\n")
    (pair.root(1) / "projects/-home-u-p5/00000002-0000-4000-8000-0.jsonl").unlink()
    pair.run(1, "push")
    repo = Repository.open(pair.store, pair.master)
    head = repo.load_snapshot(repo.head_seq())
    state = State(tmp_path / "m1.db")
    try:
        recorded = state.snapshot_transcripts(head.id)
    finally:
        state.close()
    assert recorded == sorted(p for p in head.files if p.count("/") == 2)
    assert "projects/-home-u-p9/0000000a-0000-4000-8000-0.jsonl" in recorded
    assert len(recorded) == 201


def test_a_first_push_of_many_files_writes_parts_of_bounded_size():
    """A later push that needs one group parses a part of at most about PART_FILES entries,
    not the first push's whole list."""
    store = MemoryStore()
    repo = Repository.create(store, None)
    files = {f"projects/-home-ann-p{i % 97}/{i:08x}.jsonl": entry(i % 6) for i in range(5000)}
    assert repo.write_snapshot(Snapshot(1, None, "dev", 1.0, files), None)
    sizes = [listed(repo, part) for part in store.list(MANIFEST_PREFIX)]
    assert len(sizes) == 3 and max(sizes) <= PART_FILES + PIECE_FILES
    assert repo.load_snapshot(1, cached_ok=False).files == files


def test_changing_one_session_rewrites_one_piece_whatever_the_project_size():
    for sessions in (1000, 4000):
        store = MemoryStore()
        repo = Repository.create(store, None)
        files = {session(i): entry(i % 6) for i in range(sessions)}
        head = Snapshot(1, None, "dev", 1.0, files)
        assert repo.write_snapshot(head, None)
        before = set(store.list(MANIFEST_PREFIX))
        changed = dict(files) | {session(17): entry(9)}
        assert repo.write_snapshot(Snapshot(2, 1, "dev", 2.0, changed), head)
        (part,) = new_parts(store, before)
        assert listed(repo, part) <= 2 * PIECE_FILES
        assert repo.load_snapshot(2, cached_ok=False).files == changed


def test_a_repository_of_an_older_format_keeps_whole_groups():
    """claude-sync of formats 3 and 4 reads only whole groups: until `upgrade`, a new writer
    writes version 2 snapshots there."""
    store = MemoryStore()
    repo = Repository.create(store, None)
    body = repo.config_body() | {"version": CHAINED_FORMAT}
    store.delete(CONFIG_NAME)
    store.put_if_absent(
        CONFIG_NAME, repo.keys.seal(CONFIG_NAME, compression.pack(json.dumps(body).encode()))
    )
    repo = Repository.open(store, repo.keys.master)
    files = {session(i): entry(1) for i in range(200)}
    assert repo.write_snapshot(Snapshot(1, None, "dev", 1.0, files), None)
    root = repo.load_root(1)
    assert root.body["version"] == 2 and isinstance(root.body["parts"][PROJECT], str)
    repo.upgrade()
    head = repo.load_snapshot(1)
    assert repo.write_snapshot(Snapshot(2, 1, "dev", 2.0, files | {session(1): entry(2)}), head)
    root = repo.load_root(2)
    assert root.body["version"] == SPLIT_SNAPSHOT_VERSION
    assert len(root.body["parts"][PROJECT]) == 8
    assert repo.load_snapshot(2, cached_ok=False).files == files | {session(1): entry(2)}


def chunked(rng: random.Random, count: int) -> tuple[tuple[str, int], ...]:
    return tuple((rng.randbytes(32).hex(), rng.randint(1, 9)) for _ in range(count))


def big(chunks: tuple[tuple[str, int], ...]) -> FileEntry:
    size = sum(n for _, n in chunks)
    return FileEntry(f"{size:064x}", size, size, 0o600, chunks)


# Each step: (path, what happens): append n chunks, rewrite with n chunks, or remove.
file_steps = st.lists(
    st.lists(
        st.tuples(
            st.integers(0, 5),
            st.sampled_from(["append", "rewrite", "remove"]),
            st.integers(0, 30),
        ),
        max_size=4,
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=80, deadline=None, print_blob=True)
@given(history=file_steps, seed=st.integers(0, 2**32 - 1), lazy_head=st.booleans())
def test_a_big_file_reads_back_as_its_chunks_whatever_its_appends_and_rewrites(
    history, seed, lazy_head
):
    """Format 7: a file of many chunks names chunk lists of LIST_CHUNKS (4 here) chunks
    each. Whatever the history of appends, rewrites and removals, a machine with no cache
    reads each file back as exactly its chunks; an append writes no list again but the
    one its new chunks fill; prune's view of what a snapshot needs names every list."""
    with mock.patch.object(snapshots_module, "LIST_CHUNKS", 4):
        store = MemoryStore()
        writer = Repository.create(store, None)
        reader = Repository.open(store, writer.keys.master)
        rng = random.Random(seed)
        files: dict[str, FileEntry] = {}
        head: Snapshot | None = None
        for seq, step in enumerate(history, start=1):
            changes: dict[str, FileEntry | None] = {}
            appended: dict[str, int] = {}
            for i, action, n in step:
                path = f"{PROJECT}/big{i}.jsonl"
                before = files.get(path)
                if action == "remove":
                    changes[path] = None
                    files.pop(path, None)
                    continue
                old = before.chunks if before is not None and action == "append" else ()
                if action == "append" and path not in appended:
                    appended[path] = len(old)
                files[path] = changes[path] = big(old + chunked(rng, n))
            # The base is read back, as a push reads its head: lazily or whole.
            base = (
                None
                if head is None
                else writer.snapshot(writer.load_root(head.seq), lazy=lazy_head)
            )
            listing = ChangedFiles(base.files, changes) if base is not None else dict(files)
            before_objects = set(store.list(MANIFEST_PREFIX))
            snapshot = Snapshot(seq, head.seq if head else None, "dev", 1.0, listing)
            assert writer.write_snapshot(snapshot, base)
            head = snapshot
            written = set(store.list(MANIFEST_PREFIX)) - before_objects
            new_lists = [n for n in written if "chunks" in json.loads(unsealed(writer, n))]
            # Appends alone (no rewrite in this step): only lists their new chunks filled.
            if all(a == "append" for _, a, _ in step) and len({i for i, _, _ in step}) == len(step):
                filled = sum(
                    max(0, len(files[p].chunks) - 1) // 4 - max(0, old - 1) // 4
                    for p, old in appended.items()
                )
                assert len(new_lists) <= filled
            read = reader.snapshot(reader.load_root(seq), cached_ok=False, lazy=True)
            assert dict(read.files) == files
            for path, entry in read.files.items():
                assert entry.chunks == files[path].chunks
                assert len(entry.lists) == max(0, len(entry.chunks) - 1) // 4
            everything = reader.load_snapshot(seq, cached_ok=False)
            assert {n for n in everything.manifest_names()} >= {
                n for e in everything.files.values() for n, _, _ in e.lists
            }
            assert everything.manifest_names() <= set(store.list(MANIFEST_PREFIX))


def unsealed(repo: Repository, name: str) -> bytes:
    return compression.unpack(repo.keys.open(name, repo.store.get(name)), name)


def test_an_append_to_a_big_transcript_rewrites_no_chunk_list_and_prune_keeps_them(
    tmp_path: Path,
) -> None:
    """End to end, with lists of 2 chunks: an append to a transcript of many chunks sends
    its new chunk, not the whole chunk list again; another machine gets it byte for byte;
    prune keeps the lists the head names and sweeps those nothing names any more."""
    from claude_sync import maintenance
    from claude_sync.engine import Engine

    pair = EngineMachines(tmp_path)
    rng = random.Random(5)
    session = f"{PROJECT}/0b7c5a52-31a5-4f49-a2a7-3d4a2b8e1f10.jsonl"

    def record() -> str:
        return json.dumps({"type": "user", "message": {"content": rng.randbytes(600).hex()}})

    text = "".join(record() + "\n" for _ in range(4000))  # ~4.9 MiB: 3 chunks or more
    pair.write(0, session, text)
    with mock.patch.object(snapshots_module, "LIST_CHUNKS", 2):
        pair.run(0, "push")
        repo = Repository.open(pair.store, pair.master)
        first = repo.load_snapshot(1).files[session]
        assert len(first.lists) == (len(first.chunks) - 1) // 2 >= 1
        before = set(pair.store.list(MANIFEST_PREFIX))
        appended = "".join(record() + "\n" for _ in range(50))  # ~60 KiB
        with (pair.root(0) / session).open("a") as f:
            f.write(appended)
        pair.run(0, "push")
        second = repo.load_snapshot(2).files[session]
        # the old lists all stand (the last chunk, which the append may cut again, is in none)
        assert second.lists[: len(first.lists)] == first.lists
        new = set(pair.store.list(MANIFEST_PREFIX)) - before
        assert len(new) <= 2  # the part of the changed piece, and a list the append filled
        pair.run(1, "pull")
        assert pair.read(1, session) == text + appended

        # Rewritten whole: its old lists are named by no snapshot prune keeps.
        pair.write(0, session, "".join(record() + "\n" for _ in range(2500)))
        pair.run(0, "push")
        engine = Engine(
            pair.root(0),
            Repository.open(pair.store, pair.master),
            State(tmp_path / "m0.db"),
            "m0",
            tmp_path / "m0-work",
        )
        try:
            with mock.patch.dict(os.environ, {maintenance.MIN_GRACE_ENV: "0"}):
                for _ in range(2):  # mark, then sweep
                    maintenance.prune(engine, keep_last=1, keep_within=None, grace=0, dry_run=False)
            assert maintenance.verify(engine, read_data=True) == []
            head = engine.repo.load_snapshot(3)
            left = set(pair.store.list(MANIFEST_PREFIX))
            assert head.manifest_names() == left
            assert not {n for n, _, _ in second.lists} & left
        finally:
            engine.state.close()
        pair.run(2, "pull")
        assert pair.read(2, session) == pair.read(0, session)
