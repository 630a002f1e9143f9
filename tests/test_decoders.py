"""Every decoder meets hostile input with a clean SyncError: never a crash, never a hang.

The storage provider can write anything; with the key it cannot forge, but a bug in a writer,
a newer version or a damaged disk can still produce authenticated garbage. So the fuzzing
seals arbitrary plaintexts under the right key and name, to reach past authentication.
"""

from __future__ import annotations

import contextlib
import json
import os
import string
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from claude_sync import compression, crypto
from claude_sync.config import load_settings
from claude_sync.engine import Engine
from claude_sync.errors import SyncError
from claude_sync.repository import (
    MANIFEST_PREFIX,
    ChangedFiles,
    FileEntry,
    PackWriter,
    Repository,
    Snapshot,
    snapshot_name,
)
from claude_sync.state import State

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def snapshot_like() -> st.SearchStrategy[object]:
    entry = st.fixed_dictionaries(
        {
            "sha256": st.sampled_from(["0" * 64, "x", 5]),
            "size": st.integers(-2, 5),
            "mtime_ns": st.integers() | st.text(max_size=3),
            "mode": st.integers(-1, 70000),
            "chunks": st.lists(st.tuples(st.sampled_from(["a" * 64, "zz"]), st.integers(-1, 5))),
        }
    )
    return (
        st.fixed_dictionaries(
            {
                "version": st.sampled_from([1, 2, "1"]),
                "repo_id": st.text(max_size=4),
                "seq": st.integers(0, 3),
                "parent": st.none() | st.integers() | st.text(max_size=2),
                "device": json_values,
                "time": json_values,
                "files": st.dictionaries(st.text(max_size=10), entry | json_values, max_size=3),
            }
        )
        | json_values
    )


@pytest.fixture(scope="module")
def repo() -> Repository:
    return Repository.create(MemoryStore(), None)


def seal_json(repo: Repository, name: str, obj: object) -> None:
    data = compression.pack(json.dumps(obj).encode())
    repo.store.objects[name] = repo.keys.seal(name, data)  # type: ignore[attr-defined]


@FAST
@given(obj=snapshot_like())
def test_snapshot_decoder(repo, obj):
    name = snapshot_name(1)
    if isinstance(obj, dict) and obj.get("repo_id") == "":
        obj["repo_id"] = repo.config.repo_id
    seal_json(repo, name, obj)
    try:
        snap = repo.load_snapshot(1)
    except SyncError:
        return
    assert snap.seq == 1 and all(e.size == sum(n for _, n in e.chunks) for e in snap.files.values())


PART = MANIFEST_PREFIX + "b" * 64


@FAST
@given(
    version=st.sampled_from([2, 3]),
    parts=st.dictionaries(
        st.sampled_from(["", "agents", "x/y"]),
        st.sampled_from([PART, "zz"]) | st.lists(st.sampled_from([PART, "zz"]), max_size=3),
    )
    | json_values,
    body=st.fixed_dictionaries(
        {
            "version": st.sampled_from([1, 2, 3]),
            "groups": st.dictionaries(
                st.sampled_from(["", "agents", "x/y"]),
                st.dictionaries(st.sampled_from(["CLAUDE.md", "agents/a.md", "x/y/z"]), json_values)
                | json_values,
            )
            | json_values,
        }
    )
    | json_values,
)
def test_manifest_part_decoder(repo, version, parts, body):
    root = {"version": version, "repo_id": repo.config.repo_id, "seq": 3, "parent": 2}
    seal_json(repo, snapshot_name(3), {**root, "device": "d", "time": 1.0, "parts": parts})
    seal_json(repo, PART, body)
    try:
        snap = repo.load_snapshot(3)
    except SyncError:
        return
    assert all(e.size == sum(n for _, n in e.chunks) for e in snap.files.values())


@FAST
@given(raw=st.binary(max_size=200))
def test_sealed_bytes_of_any_kind(repo, raw):
    for name in (snapshot_name(2), "index/" + "a" * 64):
        repo.store.objects[name] = repo.keys.seal(name, raw)  # type: ignore[attr-defined]
    with pytest.raises(SyncError):
        repo.load_snapshot(2)
    with contextlib.suppress(SyncError):
        repo.load_index("index/" + "a" * 64)


@FAST
@given(
    obj=json_values
    | st.fixed_dictionaries(
        {
            "version": st.just(1),
            "packs": st.dictionaries(
                st.sampled_from(["data/ab/" + "c" * 64, "x"]), st.lists(json_values, max_size=3)
            ),
        }
    )
)
def test_index_decoder(repo, obj):
    name = "index/" + "b" * 64
    seal_json(repo, name, obj)
    try:
        locations = repo.load_index(name)
    except SyncError:
        return
    assert all(loc.length > 0 and loc.offset >= 0 for loc in locations.values())


@FAST
@given(obj=json_values, passphrase=st.text(min_size=1, max_size=5))
def test_key_object_decoder(obj, passphrase):
    with contextlib.suppress(SyncError):
        crypto.unwrap_master(obj if isinstance(obj, dict) else {"v": obj}, passphrase, "keys/x")


@FAST
@given(data=st.binary(max_size=300), cut=st.integers(0, 300))
def test_pack_reader(repo, data, cut):
    writer = PackWriter(repo)
    writer.add(repo.keys.blob_id(b"hello"), b"hello")
    ((name, locations),) = writer.finish().items()
    real = repo.store.objects[next(iter(locations.values())).pack]  # type: ignore[attr-defined]
    pack = next(iter(locations.values())).pack
    for damaged in {data, real[:cut] + data} - {real}:
        repo.store.objects[pack] = damaged  # type: ignore[attr-defined]
        with pytest.raises(SyncError):
            repo.read_pack(pack, locations)
    repo.store.objects[pack] = real  # type: ignore[attr-defined]
    assert repo.read_pack(pack, locations) == {repo.keys.blob_id(b"hello"): b"hello"}
    assert name.startswith("index/")


@FAST
@given(text=st.text(max_size=200) | json_values.map(json.dumps))
def test_local_config_file(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("cfg")
    (folder / "config.json").write_text(text)
    try:
        settings_ = load_settings(folder)
    except SyncError:
        return
    assert settings_.remote


@FAST
@given(text=st.text(alphabet=string.ascii_letters + string.digits + "-", max_size=80))
def test_recovery_key_parser(text):
    try:
        prefix, secret = crypto.parse_recovery_key(text)
    except SyncError:
        return
    again = crypto.recovery_key(secret, prefix)
    assert again.replace("-", "").upper() == text.replace("-", "").upper()


@given(data=st.binary(max_size=2000), name=st.text(max_size=20))
def test_encryption_round_trip_and_name_binding(data, name):
    key = crypto.random_key()
    sealed = crypto.seal(key, name, data)
    assert crypto.open_sealed(key, name, sealed) == data
    with pytest.raises(SyncError):
        crypto.open_sealed(key, name + "x", sealed)
    assert compression.unpack(compression.pack(data), "x") == data


def test_compression_is_safe_from_many_threads():
    """Packs are read in parallel: the zstd contexts must not be shared between threads."""
    from concurrent.futures import ThreadPoolExecutor

    blobs = [(f"record {i} " * 5000).encode() for i in range(64)]
    packed = [compression.pack(b) for b in blobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            assert list(pool.map(lambda p: compression.unpack(p, "x"), packed)) == blobs
            assert list(pool.map(compression.pack, blobs)) == packed


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []
        self.listed: list[tuple[str, int]] = []

    def get(self, name: str) -> bytes:
        self.gets.append(name)
        return super().get(name)

    def _list(self, prefix: str, start_after: str) -> list[str]:
        names = super()._list(prefix, start_after)
        self.listed.append((start_after, sum(n > start_after for n in names)))
        return names


def test_finding_the_head_lists_only_from_the_last_seen_snapshot():
    store = CountingStore()
    repo = Repository.create(store, None)
    for seq in range(1, 41):
        assert repo.write_snapshot(Snapshot(seq, seq - 1 or None, "dev", 1.0, {}))
    assert repo.head_seq(seen=38) == 40
    assert store.listed[-1] == (snapshot_name(37), 3)  # what a store that can skip returns
    store.delete(snapshot_name(40))
    store.delete(snapshot_name(39))
    assert repo.head_seq(seen=39) == 38  # older than seen: everything is listed
    assert store.listed[-1] == ("", 38)


def test_manifest_parts_are_cached_and_a_damaged_copy_is_never_trusted(tmp_path):
    store = CountingStore()
    repo = Repository.create(store, None)
    repo.cache_dir = tmp_path / "objects"
    entry = FileEntry("0" * 64, 1, 0, 0o600, (("1" * 64, 1),))
    head = None
    for seq in range(1, 4):  # the agents group changes every time, the top files never
        files = {f"agents/a{seq}.md": entry, "CLAUDE.md": entry}
        assert repo.write_snapshot(Snapshot(seq, seq - 1 or None, "dev", 1.0, files), head)
        head = repo.load_snapshot(seq)
    assert len(list(repo.cache_dir.iterdir())) == 2  # only the parts the newest one uses
    store.gets.clear()
    assert repo.load_snapshot(3).files == files
    assert store.gets == [snapshot_name(3)]  # the root is always read; its parts were not
    for cached in repo.cache_dir.iterdir():
        cached.write_bytes(b"damaged")
    store.gets.clear()
    assert repo.load_snapshot(3).files == files
    assert sorted(store.gets) == sorted([snapshot_name(3), *head.part_names()])
    store.gets.clear()
    assert repo.load_snapshot(3, cached_ok=False).files == files  # verify reads the storage
    assert len(store.gets) == 3


def test_manifest_parts_are_cached_without_a_sync_and_a_torn_copy_is_fetched_again(
    tmp_path, monkeypatch
):
    """The cache only saves requests: a power cut may lose or cut a copy (nothing is
    synced), which then fails to authenticate and is fetched again."""
    store = CountingStore()
    repo = Repository.create(store, None)
    repo.cache_dir = tmp_path / "objects"
    entry = FileEntry("0" * 64, 1, 0, 0o600, (("1" * 64, 1),))
    files = {f"agents/a{i}.md": entry for i in range(3)} | {"CLAUDE.md": entry}
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    assert repo.write_snapshot(Snapshot(1, None, "dev", 1.0, files), None)
    head = repo.load_snapshot(1)
    assert synced == [] and list(repo.cache_dir.iterdir())
    for cut in (lambda data: b"", lambda data: data[: len(data) // 2]):
        for cached in repo.cache_dir.iterdir():
            cached.write_bytes(cut(cached.read_bytes()))
        store.gets.clear()
        assert repo.load_snapshot(1).files == files
        assert sorted(store.gets) == sorted([snapshot_name(1), *head.part_names()])


logical_paths = st.lists(
    st.sampled_from(["projects", "agents", "skills", "a", "b", "history.jsonl"]),
    min_size=1,
    max_size=4,
).map(lambda parts: "skills/" + "/".join(parts) + ".md")  # a path some type claims
file_lists = st.dictionaries(logical_paths, st.integers(1, 3), max_size=8)


@FAST
@given(versions=st.lists(file_lists, min_size=1, max_size=5))
def test_manifest_parts_round_trip_and_upload_only_changed_groups(versions):
    """Whatever each push changes, every snapshot reads back exactly as written, and a push
    writes at most one new manifest part, none when no group changed."""
    store = MemoryStore()
    repo = Repository.create(store, None)
    head = None
    for seq, listing in enumerate(versions, start=1):
        files = {
            path: FileEntry("0" * 64, n, 0, 0o600, (("1" * 64, n),)) for path, n in listing.items()
        }
        unchanged = head is not None and head.files == files
        parts_before = set(store.list(MANIFEST_PREFIX))
        assert repo.write_snapshot(Snapshot(seq, seq - 1 or None, "dev", 1.0, files), head)
        new_parts = set(store.list(MANIFEST_PREFIX)) - parts_before
        head = repo.load_snapshot(seq)
        assert head.files == files
        assert len(new_parts) <= (0 if unchanged else 1)


def test_version_1_snapshots_are_read_and_built_upon():
    store = MemoryStore()
    repo = Repository.create(store, None)
    entry = {"sha256": "0" * 64, "size": 2, "mtime_ns": 5, "mode": 0o600, "chunks": [["1" * 64, 2]]}
    v1 = {"version": 1, "repo_id": repo.config.repo_id, "seq": 1, "parent": None}
    files = {"CLAUDE.md": entry, "agents/a.md": entry}
    seal_json(repo, snapshot_name(1), {**v1, "device": "old", "time": 1.0, "files": files})
    old = repo.load_snapshot(1)
    assert set(old.files) == set(files) and old.parts == {}
    newer = dict(old.files)
    newer["agents/b.md"] = old.files["agents/a.md"]
    # Built as a push builds it, the head plus its changes: a version 1 head names no parts
    # to keep for the groups the push did not touch, so it is written whole.
    changed = ChangedFiles(old.files, {"agents/b.md": old.files["agents/a.md"]})
    assert repo.write_snapshot(Snapshot(2, 1, "new", 2.0, changed), old)
    (part,) = store.list(MANIFEST_PREFIX)
    assert repo.load_snapshot(2).files == newer
    assert repo.load_snapshot(2).parts == {"": (part,), "agents": (part,)}


class ReplacingStore(MemoryStore):
    """Plays a prune that replaces an index between a reader's listing and its read."""

    def __init__(self) -> None:
        super().__init__()
        self.before_get: dict[str, Callable[[], None]] = {}

    def get(self, name: str) -> bytes:
        if name in self.before_get:
            self.before_get.pop(name)()
        return super().get(name)


def test_an_index_replaced_while_being_read_is_looked_up_again(tmp_path):
    store = ReplacingStore()
    repo = Repository.create(store, None)
    blob = repo.keys.blob_id(b"some data")
    with contextlib.closing(PackWriter(repo)) as writer:
        writer.add(blob, b"some data")
        ((name, locations),) = writer.finish().items()
    replacement: list[str] = []

    def prune() -> None:
        (loc,) = locations.values()
        replacement.append(repo.write_index({loc.pack: [(blob, loc.offset, loc.length)]}))
        store.delete(name)

    store.before_get[name] = prune
    engine = Engine(tmp_path, repo, State(tmp_path / "state.db"), "dev", tmp_path)
    engine.downloads.refresh_index()
    assert engine.state.known_indexes() == set(replacement)
    assert engine.state.blob_pack(blob) == locations[blob].pack


@pytest.mark.parametrize("read_ahead", [False, True], ids=["block by block", "read ahead"])
@FAST
@given(
    first=st.binary(min_size=1, max_size=6000),
    history=st.lists(
        st.tuples(st.booleans(), st.binary(min_size=0, max_size=3000)), min_size=1, max_size=6
    ),
    upgrade_at=st.integers(0, 7),
)
def test_a_files_content_is_what_its_chunks_say_whatever_its_appends(
    tmp_path, monkeypatch, read_ahead, first, history, upgrade_at
):
    """Over any history of appends (the append path) and rewrites (a full read), a digest
    names the file's content by an identity and cuts chunks that tile it, each named by
    its bytes' id; an append to a file whose last chunk is whole keeps every old chunk (it
    uploads only new bytes). Content only in memory (a filtered file's logical form) is
    cut as on disk when it grew, and otherwise keeps the old chunks its first bytes still
    hold (a merged history begins with the version both machines had). Across the
    repository's move to BLAKE3 identities (at upgrade_at), content that did not change
    keeps its identity, of whichever kind, and content that did gets the repository's.
    read_ahead: the old part of a grown file is read a block ahead of its hashing, as a
    long one is (chunking.hash_blocks), here in blocks of a few bytes."""
    from claude_sync import chunking, identity
    from claude_sync.repository import ChunkerParams

    if read_ahead:
        monkeypatch.setattr(chunking, "READ_AHEAD_FROM", 1)
        monkeypatch.setattr(chunking, "READ_AHEAD_BLOCK", 97)

    chunker = chunking.Chunker(ChunkerParams(64, 256, 1024, 7))
    keys = crypto.KeyRing(b"k" * 32)
    ids = keys.blob_id
    path = tmp_path / "t.jsonl"
    content = first
    path.write_bytes(content)
    keys.file_ids_blake3 = upgrade_at == 0
    digest = chunker.digest_file(path, ids, file_hash=keys.file_hash)
    for step, (append, data) in enumerate(history, 1):
        keys.file_ids_blake3 = step >= upgrade_at
        old, content = content, content + data if append else data or content
        path.write_bytes(content)
        before = digest
        digest = chunker.digest_file(path, ids, digest, file_hash=keys.file_hash)
        in_memory = chunker.digest_bytes(content, ids, previous=before, file_hash=keys.file_hash)
        for sha, chunks in (digest, in_memory):
            assert identity.of(keys.file_hash, content, sha) == sha
            if content == old:
                assert sha == before[0]
            else:
                assert identity.kind_of(sha) == (identity.B3 if step >= upgrade_at else "")
            offset = 0
            for blob, at, length in chunks:
                assert at == offset and 0 < length <= 1024
                assert blob == ids(memoryview(content)[at : at + length])
                offset += length
            assert offset == len(content)
        if append:
            assert in_memory == digest
            if before[1][-1][2] >= 64:
                assert digest[1][: len(before[1])] == before[1]
        same = next((i for i, (x, y) in enumerate(zip(old, content, strict=False)) if x != y), None)
        same = min(len(old), len(content)) if same is None else same
        kept = [c for c in before[1] if c[1] + c[2] <= same]
        if kept == list(before[1]) and kept[-1][2] < 64 and len(content) > len(old):
            kept.pop()  # a short last chunk is cut again with what follows
        assert in_memory[1][: len(kept)] == tuple(kept)


def test_infinity_and_deep_nesting_are_clean_errors(repo):
    entry = {"sha256": "0" * 64, "size": float("inf"), "mtime_ns": 0, "mode": 0, "chunks": []}
    root = {"version": 1, "repo_id": repo.config.repo_id, "seq": 4, "parent": None}
    seal_json(repo, snapshot_name(4), {**root, "device": "d", "time": 1.0, "files": {"a": entry}})
    with pytest.raises(SyncError):
        repo.load_snapshot(4)
    name = snapshot_name(5)
    repo.store.objects[name] = repo.keys.seal(name, compression.pack(b"[" * 100_000))
    with pytest.raises(SyncError):
        repo.load_snapshot(5)
