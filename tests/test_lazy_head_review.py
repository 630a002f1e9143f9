"""Review of the lazily read head and chunk lists (format 7): cases the change's own tests
do not reach."""

from __future__ import annotations

import json
import random
from unittest import mock

from engine_pair import EngineMachines
from memory_store import MemoryStore

from claude_sync.repository import MANIFEST_PREFIX, ChangedFiles, FileEntry, Repository, Snapshot
from claude_sync.repository import snapshots as snapshots_module
from claude_sync.repository.format import encode_json, snapshot_name


def seal_json(repo: Repository, name: str, obj: object) -> None:
    repo.store.objects[name] = repo.keys.seal(name, encode_json(obj))  # type: ignore[attr-defined]


def test_a_push_onto_a_version_1_head_drops_no_file_for_other_machines(tmp_path):
    """End to end: machine 0 pushes, its snapshot is rewritten as version 1 (as claude-sync
    before 0.2 wrote it); machine 1 pulls, adds an agent and pushes; machine 2 pulls
    CLAUDE.md too."""
    pair = EngineMachines(tmp_path)
    pair.write(0, "CLAUDE.md", "memory\n")
    pair.write(0, "agents/a.md", "agent a\n")
    pair.run(0, "push")
    repo = Repository.open(pair.store, pair.master)
    head = repo.load_snapshot(1)
    v1 = {"version": 1, "repo_id": repo.config.repo_id, "seq": 1, "parent": None}
    files = {p: e.to_json() for p, e in head.files.items()}
    seal_json(repo, snapshot_name(1), {**v1, "device": "old", "time": 1.0, "files": files})
    pair.run(1, "pull")
    assert pair.read(1, "CLAUDE.md") == "memory\n"
    pair.write(1, "agents/b.md", "agent b\n")
    pair.run(1, "push")
    pair.run(2, "pull")
    assert set(Repository.open(pair.store, pair.master).load_snapshot(2).files) == {
        "CLAUDE.md",
        "agents/a.md",
        "agents/b.md",
    }
    assert pair.read(2, "CLAUDE.md") == "memory\n"


def test_a_big_transcript_appended_on_two_machines_merges_with_chunk_lists(tmp_path):
    """Lists of 2 chunks: both machines append to a transcript of many chunks; the second
    push merges before pushing (head read lazily, entries resolved from lists), and both
    machines end with the same bytes, read back by a third."""
    rng = random.Random(7)
    session = "projects/-home-ann-app/0b7c5a52-31a5-4f49-a2a7-3d4a2b8e1f10.jsonl"

    def record(who: str) -> str:
        return (
            json.dumps(
                {
                    "type": "user",
                    "uuid": rng.randbytes(16).hex(),
                    "message": {"content": who + rng.randbytes(600).hex()},
                }
            )
            + "\n"
        )

    pair = EngineMachines(tmp_path)
    with mock.patch.object(snapshots_module, "LIST_CHUNKS", 2):
        pair.write(0, session, "".join(record("a") for _ in range(3000)))
        pair.run(0, "push")
        pair.run(1, "pull")
        for m in (0, 1):
            with (pair.root(m) / session).open("a") as f:
                f.write("".join(record(str(m)) for _ in range(40)))
        pair.run(0, "push")
        pair.run(1, "push")
        pair.run(0, "pull")
        pair.run(1, "pull")
        pair.run(2, "pull")
        assert pair.read(0, session) == pair.read(1, session) == pair.read(2, session)
        assert len(pair.read(2, session).splitlines()) == 3080  # both appends, once each
        repo = Repository.open(pair.store, pair.master)
        head = repo.load_snapshot(repo.head_seq(), cached_ok=False)
        assert head.files[session].lists
        assert head.manifest_names() <= set(pair.store.list(MANIFEST_PREFIX))


def test_a_push_that_loses_its_race_retries_on_the_new_head_with_chunk_lists(tmp_path):
    """Machine 0's push of an append meets machine 1's push of another append of the same
    big transcript and of another file, written just before machine 0's snapshot: machine 0
    plans again on the new head (merging the transcript) and loses neither machine's
    change."""
    rng = random.Random(9)
    session = "projects/-home-ann-app/0b7c5a52-31a5-4f49-a2a7-3d4a2b8e1f10.jsonl"

    def record(who: str) -> str:
        body = {"type": "user", "uuid": rng.randbytes(16).hex(), "message": {"content": who}}
        return json.dumps(body | {"pad": rng.randbytes(600).hex()}) + "\n"

    pair = EngineMachines(tmp_path)
    with mock.patch.object(snapshots_module, "LIST_CHUNKS", 2):
        pair.write(0, session, "".join(record("a") for _ in range(3000)))
        pair.write(0, "agents/x.md", "x\n")
        pair.run(0, "push")
        pair.run(1, "pull")
        for m in (0, 1):
            with (pair.root(m) / session).open("a") as f:
                f.write("".join(record(f"m{m}") for _ in range(40)))
        pair.write(1, "agents/y.md", "y\n")
        store = pair.store
        put = store.put_if_absent
        raced: list[str] = []

        def racing_put(name: str, data: bytes) -> bool:
            if name.startswith("snapshots/") and not raced:
                raced.append(name)
                pair.run(1, "push")
            return put(name, data)

        store.put_if_absent = racing_put  # type: ignore[method-assign]
        pair.run(0, "push")
        store.put_if_absent = put  # type: ignore[method-assign]
        assert raced
        for m in (0, 1, 2):
            pair.run(m, "pull")
        assert pair.read(0, session) == pair.read(1, session) == pair.read(2, session)
        text = pair.read(2, session)
        assert text.count('"m0"') == text.count('"m1"') == 40
        assert pair.read(2, "agents/y.md") == "y\n" and pair.read(2, "agents/x.md") == "x\n"


def test_a_machine_whose_config_predates_the_upgrade_keeps_big_entries_whole():
    """Machine B (format 7) writes a big file with chunk lists; machine A, whose copy of the
    config still says 6, changes another file of the same piece and then appends to the big
    file; B appends again. Every snapshot reads back as written, and names only objects
    that exist."""
    from dataclasses import replace

    rng = random.Random(3)

    def chunks(n: int) -> tuple[tuple[str, int], ...]:
        return tuple((rng.randbytes(32).hex(), rng.randint(1, 9)) for _ in range(n))

    def big(c: tuple[tuple[str, int], ...]) -> FileEntry:
        size = sum(n for _, n in c)
        return FileEntry(f"{size:064x}", size, size, 0o600, c)

    path, other = "projects/-p/big.jsonl", "projects/-p/small.jsonl"
    with mock.patch.object(snapshots_module, "LIST_CHUNKS", 2):
        store = MemoryStore()
        b = Repository.create(store, None)
        a = Repository.open(store, b.keys.master)
        a.config = replace(a.config, version=6)
        files = {path: big(chunks(7)), other: big(chunks(1))}
        assert b.write_snapshot(Snapshot(1, None, "b", 1.0, dict(files)), None)
        steps = [
            (a, {other: big(chunks(1))}),
            (a, {path: big(files[path].chunks + chunks(3))}),
            (b, {path: big(files[path].chunks + chunks(3) + chunks(2))}),
            (a, {other: None}),
        ]
        for seq, (repo, changes) in enumerate(steps, start=2):
            head = repo.snapshot(repo.load_root(seq - 1), lazy=True)
            snap = Snapshot(
                seq, seq - 1, "x", 1.0, ChangedFiles(head.files, changes), parent_id=head.id
            )
            assert repo.write_snapshot(snap, head)
            for p, e in changes.items():
                if e is None:
                    files.pop(p)
                else:
                    files[p] = e
            for reader in (a, b):
                read = reader.load_snapshot(seq, cached_ok=False)
                assert {p: e.chunks for p, e in read.files.items()} == {
                    p: e.chunks for p, e in files.items()
                }
                assert read.manifest_names() <= set(store.list(MANIFEST_PREFIX))
