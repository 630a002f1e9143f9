"""What the repository reads back from the storage: file entries, snapshots and their manifest
parts, indexes and pack headers decode exactly as written, and anything else is refused with
one `CorruptionError` naming the object and what is wrong with it.

Written against the public entry points (`Repository` methods, `FileEntry.from_json`) so they
hold whatever module of the repository package implements them."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path
from typing import Any

import pytest
from memory_store import MemoryStore

from claude_sync import compression
from claude_sync.errors import ConfigError, CorruptionError
from claude_sync.repository import (
    MANIFEST_PREFIX,
    REPO_FORMATS,
    BlobLocation,
    ChunkerParams,
    FileEntry,
    PackWriter,
    RepoConfig,
    Repository,
    Snapshot,
    snapshot_name,
)
from claude_sync.repository.format import parse_config
from claude_sync.session_summary import SessionSummary

H = "a" * 64
ENTRY = {"sha256": H, "size": 3, "mtime_ns": 7, "mode": 0o644, "chunks": [[H, 1], [H, 2]]}
SESSION = SessionSummary("title", "/home/ann/app", 1.0, 2.0, 4, "main", "laptop")


@pytest.fixture
def repo() -> Repository:
    return Repository.create(MemoryStore(), None)


def seal(repo: Repository, name: str, body: object) -> None:
    data = compression.pack(json.dumps(body).encode())
    repo.store.objects[name] = repo.keys.seal(name, data)  # type: ignore[attr-defined]


def refused(message: str) -> Any:
    """The error, with exactly this message (users read it)."""
    return pytest.raises(CorruptionError, match=f"^{re.escape(message)}$")


# -- the config object ---------------------------------------------------------------------------

MIB16 = 16 * 1024 * 1024


def config(version: int = 1, **chunker: int) -> dict[str, object]:
    sizes = {"min_size": 64, "avg_size": 64, "max_size": 64, "seed": 1} | chunker
    return {"version": version, "repo_id": "r", "created": "now", "chunker": sizes}


@pytest.mark.parametrize(
    "chunker",
    [
        {"min_size": 64, "avg_size": 64, "max_size": 64, "seed": 1},
        {"min_size": MIB16, "avg_size": MIB16, "max_size": MIB16, "seed": 2**63 - 1},
    ],
)
def test_a_config_at_the_limits_decodes_as_written(chunker: dict[str, int]) -> None:
    assert parse_config(config(1, **chunker)) == RepoConfig("r", ChunkerParams(**chunker), "now", 1)


@pytest.mark.parametrize(
    "chunker",
    [
        {"min_size": 63, "avg_size": 64},
        {"min_size": 65},
        {"avg_size": 65, "max_size": 64},
        {"max_size": MIB16 + 1, "avg_size": MIB16 + 1, "min_size": MIB16 + 1},
        {"seed": 0},
        {"seed": 2**63},
    ],
)
def test_a_config_with_impossible_chunker_parameters_is_refused(chunker: dict[str, int]) -> None:
    with refused("the config object has invalid chunker parameters"):
        parse_config(config(1, **chunker))


def test_a_config_of_a_newer_format_or_malformed_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(99))
    assert str(caught.value) == (
        f"this repository uses format version 99; this claude-sync reads versions "
        f"{REPO_FORMATS}: upgrade claude-sync"
    )
    for broken in ({"version": 1}, config(1, seed="x"), [1]):  # type: ignore[arg-type]
        with refused("the config object is malformed"):
            parse_config(broken)


# -- file entries ---------------------------------------------------------------------------------


def test_a_file_entry_decodes_as_written() -> None:
    entry = FileEntry.from_json(ENTRY, "snapshot 1")
    assert entry == FileEntry(H, 3, 7, 0o644, ((H, 1), (H, 2)))
    assert entry.session is None
    with_session = FileEntry(H, 0, 1, 0, (), SESSION)
    assert FileEntry.from_json(with_session.to_json(), "snapshot 1") == with_session


@pytest.mark.parametrize("mode", [0, 0o7777])
def test_a_file_entry_of_any_permission_bits_is_read(mode: int) -> None:
    assert FileEntry.from_json(ENTRY | {"mode": mode}, "s").mode == mode


def test_a_file_entry_may_hold_an_empty_chunk() -> None:
    entry = FileEntry.from_json(ENTRY | {"size": 0, "chunks": [[H, 0]]}, "s")
    assert entry.chunks == ((H, 0),)


@pytest.mark.parametrize(
    "change",
    [
        {"size": "three"},
        {"mtime_ns": None},
        {"mode": "rw"},
        {"chunks": [[H]]},
        {"chunks": [[H, "one"]]},
        {"chunks": 5},
        {"size": float("inf")},
    ],
)
def test_a_malformed_file_entry_is_refused(change: dict[str, object]) -> None:
    with refused("snapshot 4 has a malformed file entry"):
        FileEntry.from_json(ENTRY | change, "snapshot 4")


def test_a_file_entry_with_a_broken_session_summary_is_refused() -> None:
    with refused("snapshot 4 has a malformed session summary"):
        FileEntry.from_json(ENTRY | {"session": {"title": "t"}}, "snapshot 4")


@pytest.mark.parametrize("key", ["sha256", "size", "mtime_ns", "mode", "chunks"])
def test_a_file_entry_missing_a_field_is_refused(key: str) -> None:
    with refused("snapshot 4 has a malformed file entry"):
        FileEntry.from_json({k: v for k, v in ENTRY.items() if k != key}, "snapshot 4")


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": None},
        {"sha256": "A" * 64},
        {"sha256": H + "0"},
        {"size": -1, "chunks": [[H, -1]]},
        {"mode": -1},
        {"mode": 0o10000},
        {"chunks": [["b" * 63, 3]]},
        {"chunks": [[H, 4], [H, -1]]},
        {"size": 4},
        {"size": 2},
    ],
)
def test_an_inconsistent_file_entry_is_refused(change: dict[str, object]) -> None:
    with refused("snapshot 4 has an inconsistent file entry"):
        FileEntry.from_json(ENTRY | change, "snapshot 4")


# -- snapshot roots -------------------------------------------------------------------------------


def root_body(repo: Repository, number: int, **body: object) -> dict[str, object]:
    obj = {"version": 2, "repo_id": repo.config.repo_id, "seq": number, "parent": None}
    return obj | {"device": "d", "time": 1.5, "parts": {}} | body


def test_a_root_decodes_as_written(repo: Repository) -> None:
    parent_id = "b" * 64
    body = root_body(repo, 5, parent=4, parent_id=parent_id, device="laptop")
    seal(repo, snapshot_name(5), body)
    root = repo.load_root(5)
    assert (root.seq, root.parent, root.parent_id, root.device, root.time) == (
        5,
        4,
        parent_id,
        "laptop",
        1.5,
    )
    assert root.body == body
    assert root.id == hashlib.sha256(repo.store.objects[snapshot_name(5)]).hexdigest()  # type: ignore[attr-defined]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_roots_of_every_snapshot_version_are_read(repo: Repository, version: int) -> None:
    seal(repo, snapshot_name(1), root_body(repo, 1, version=version))
    assert repo.load_root(1).parent is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"parent_id": 5}, "names its parent wrongly"),
        ({"parent_id": "B" * 64}, "names its parent wrongly"),
        ({"parent": 5}, "names a later snapshot as its parent"),
        ({"parent": "x"}, "is malformed"),
        ({"seq": "five"}, "is malformed"),
        ({"version": None}, "belongs to another repository or format"),
    ],
)
def test_a_root_that_lies_is_refused_with_its_reason(
    repo: Repository, body: dict[str, object], message: str
) -> None:
    seal(repo, snapshot_name(5), root_body(repo, 5, **body))
    with refused(f"snapshot 5 {message}"):
        repo.load_root(5)


@pytest.mark.parametrize("key", ["version", "repo_id", "seq", "parent", "device", "time"])
def test_a_root_missing_a_field_is_malformed(repo: Repository, key: str) -> None:
    body = root_body(repo, 5)
    del body[key]
    seal(repo, snapshot_name(5), body)
    with refused("snapshot 5 is malformed"):
        repo.load_root(5)


def test_a_root_that_is_not_json_is_refused(repo: Repository) -> None:
    name = snapshot_name(5)
    repo.store.objects[name] = repo.keys.seal(name, compression.pack(b"{no"))  # type: ignore[attr-defined]
    with refused("snapshot 5 is not valid JSON"):
        repo.load_root(5)
    repo.store.objects[name] = repo.keys.seal(name, compression.pack(b"\xff"))  # type: ignore[attr-defined]
    with refused("snapshot 5 is not valid JSON"):
        repo.load_root(5)


def test_a_root_sealed_under_an_older_key_epoch_than_its_number_allows_is_refused(
    repo: Repository,
) -> None:
    for number in (2, 5):
        seal(repo, snapshot_name(number), root_body(repo, number))  # under the master key
    repo.keys.add_epoch(1, bytes(32))
    repo.keys.since[1] = 3  # epoch 1 started when snapshot 3 was the newest
    assert repo.load_root(2).seq == 2
    with pytest.raises(CorruptionError, match=r"^snapshot 5 is sealed under key epoch 0, but it"):
        repo.load_root(5)


# -- snapshots and their manifest parts -----------------------------------------------------------

PART = MANIFEST_PREFIX + "c" * 64
OTHER = MANIFEST_PREFIX + "d" * 64


def test_a_version_1_snapshot_lists_its_files_in_the_root(repo: Repository) -> None:
    seal(repo, snapshot_name(1), root_body(repo, 1, version=1, files={"CLAUDE.md": ENTRY}))
    snapshot = repo.load_snapshot(1)
    assert snapshot.files == {"CLAUDE.md": FileEntry.from_json(ENTRY, "")}
    assert (snapshot.seq, snapshot.device, snapshot.time, snapshot.parts) == (1, "d", 1.5, {})


def test_a_version_1_snapshot_with_a_bad_entry_or_path_is_refused(repo: Repository) -> None:
    bad = {"CLAUDE.md": ENTRY | {"size": 9}}
    seal(repo, snapshot_name(1), root_body(repo, 1, version=1, files=bad))
    with refused("snapshot 1 has an inconsistent file entry"):
        repo.load_snapshot(1)
    seal(repo, snapshot_name(1), root_body(repo, 1, version=1, files={".credentials.json": ENTRY}))
    with refused(
        "snapshot 1 lists a path no synced type claims ('.credentials.json'); refusing it"
    ):
        repo.load_snapshot(1)


def test_a_snapshot_keeps_its_roots_parent(repo: Repository) -> None:
    parent_id = "b" * 64
    seal(repo, snapshot_name(5), root_body(repo, 5, parent=4, parent_id=parent_id))
    snapshot = repo.load_snapshot(5)
    assert (snapshot.parent, snapshot.parent_id) == (4, parent_id)
    assert snapshot.id == repo.load_root(5).id


def test_a_snapshot_reads_back_as_written(repo: Repository) -> None:
    entry = FileEntry.from_json(ENTRY, "")
    files = {"CLAUDE.md": entry, "agents/a.md": entry, "settings.json": entry}
    assert repo.write_snapshot(Snapshot(1, None, "laptop", 2.0, files))
    snapshot = repo.load_snapshot(1)
    assert (snapshot.files, snapshot.device, snapshot.parent) == (files, "laptop", None)
    assert set(snapshot.parts) == {"", "agents"}
    assert repo.load_snapshot(1, cached_ok=False).files == files


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []

    def get(self, name: str) -> bytes:
        self.gets.append(name)
        return super().get(name)


def test_a_snapshot_takes_its_manifest_parts_from_the_cache(tmp_path: Path) -> None:
    store = CountingStore()
    repo = Repository.create(store, None)
    repo.cache_dir = tmp_path
    files = {"agents/a.md": FileEntry.from_json(ENTRY, "")}
    assert repo.write_snapshot(Snapshot(1, None, "laptop", 2.0, files))
    root = repo.load_root(1)
    assert repo.snapshot(root).files == files  # downloads and caches the part
    store.gets.clear()
    assert repo.snapshot(root).files == files
    assert store.gets == []


def test_each_piece_of_a_group_is_taken_from_the_part_that_names_it(repo: Repository) -> None:
    # Both parts hold both paths (written by two pushes); the root says which piece is where.
    from claude_sync.repository import piece_of

    paths = [f"agents/a{n}.md" for n in range(40)]
    first = next(p for p in paths if piece_of(p, 2) == 0)
    second = next(p for p in paths if piece_of(p, 2) == 1)
    old, new = ENTRY | {"mtime_ns": 1}, ENTRY | {"mtime_ns": 2}
    seal(repo, PART, {"version": 2, "groups": {"agents": {first: new, second: old}}})
    seal(repo, OTHER, {"version": 2, "groups": {"agents": {first: old, second: new}}})
    seal(repo, snapshot_name(1), root_body(repo, 1, version=3, parts={"agents": [PART, OTHER]}))
    files = repo.load_snapshot(1).files
    assert {path: e.mtime_ns for path, e in files.items()} == {first: 2, second: 2}


@pytest.mark.parametrize(
    ("parts", "part", "message"),
    [
        ({"agents": OTHER}, None, "needs a manifest part that is missing"),
        (
            {"agents": PART},
            {"version": 9, "groups": {}},
            "has a manifest part of an unknown format",
        ),
        (
            {"agents": PART},
            {"version": 2, "groups": {"agents": {"skills/x/a.md": ENTRY}}},
            "lists a file in the wrong manifest part",
        ),
        ({"agents": PART}, {"version": 2, "groups": {}}, "is malformed"),
        ({"agents": PART}, {"version": 2}, "is malformed"),
        (
            {"": PART},
            {"version": 2, "groups": {"": {".credentials.json": ENTRY}}},
            "lists a path no synced type claims ('.credentials.json'); refusing it",
        ),
        ({"agents": PART}, b"{no", "'s manifest is not valid JSON"),
        ({"agents": 5}, None, "names an invalid manifest part"),
        ({"agents": [PART]}, None, "names an invalid manifest part"),  # a list before version 3
        (
            {"agents": PART},
            {"version": 2, "groups": {"agents": {"agents/a.md": ENTRY | {"size": 1}}}},
            "has an inconsistent file entry",
        ),
    ],
)
def test_a_snapshot_whose_parts_disagree_with_it_is_refused(
    repo: Repository, parts: dict[str, object], part: object, message: str
) -> None:
    if isinstance(part, bytes):
        repo.store.objects[PART] = repo.keys.seal(PART, compression.pack(part))  # type: ignore[attr-defined]
    elif part is not None:
        seal(repo, PART, part)
    seal(repo, snapshot_name(2), root_body(repo, 2, parts=parts))
    with pytest.raises(CorruptionError) as caught:
        repo.load_snapshot(2)
    sep = "" if message.startswith("'") else " "
    assert str(caught.value) == f"snapshot 2{sep}{message}"


@pytest.mark.parametrize(
    "pieces", [[], [PART, OTHER, PART], [MANIFEST_PREFIX + "zz"], [PART, "index/" + "c" * 64]]
)
def test_a_group_split_into_pieces_wrongly_is_refused(repo: Repository, pieces: list[str]) -> None:
    seal(repo, snapshot_name(2), root_body(repo, 2, version=3, parts={"agents": pieces}))
    with refused("snapshot 2 names an invalid manifest part"):
        repo.load_snapshot(2)


def test_a_snapshot_missing_its_file_list_is_malformed(repo: Repository) -> None:
    body = root_body(repo, 2)
    del body["parts"]
    seal(repo, snapshot_name(2), body)
    with refused("snapshot 2 is malformed"):
        repo.load_snapshot(2)


# -- indexes --------------------------------------------------------------------------------------

PACK = "data/ab/" + "c" * 64


def test_an_index_reads_back_as_written(repo: Repository) -> None:
    name = repo.write_index({PACK: [(H, 0, 1), ("b" * 64, 1, 9)]})
    assert repo.load_index(name) == {
        H: BlobLocation(PACK, 0, 1),
        "b" * 64: BlobLocation(PACK, 1, 9),
    }


def test_an_index_that_is_not_json_or_not_compressed_is_refused(repo: Repository) -> None:
    name = "index/" + "e" * 64
    repo.store.objects[name] = repo.keys.seal(name, compression.pack(b"{no"))  # type: ignore[attr-defined]
    with refused(f"index {name} is not valid JSON"):
        repo.load_index(name)
    repo.store.objects[name] = repo.keys.seal(name, b"")  # type: ignore[attr-defined]
    with refused(f"index {name} is empty"):
        repo.load_index(name)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": 2, "packs": {}}, "has an unknown format version"),
        ({"version": 1, "packs": {"data/ab/" + "C" * 64: []}}, "names an invalid pack"),
        ({"version": 1, "packs": {"data/a/" + "c" * 64: []}}, "names an invalid pack"),
        ({"version": 1, "packs": {PACK + "0": []}}, "names an invalid pack"),
        ({"version": 1, "packs": {PACK: [["x", 0, 1]]}}, "has an invalid entry"),
        ({"version": 1, "packs": {PACK: [[H, -1, 1]]}}, "has an invalid entry"),
        ({"version": 1, "packs": {PACK: [[H, 0, 0]]}}, "has an invalid entry"),
        ({"version": 1, "packs": {PACK: [[H, 0]]}}, "is malformed"),
        ({"version": 1, "packs": {PACK: [[H, "zero", 1]]}}, "is malformed"),
        ({"version": 1, "packs": []}, "is malformed"),
        ({"packs": {}}, "is malformed"),
        ({"version": 1}, "is malformed"),
        ([1], "is malformed"),
    ],
)
def test_a_damaged_index_is_refused_with_its_reason(
    repo: Repository, body: object, message: str
) -> None:
    name = "index/" + "e" * 64
    seal(repo, name, body)
    with refused(f"index {name} {message}"):
        repo.load_index(name)


# -- pack headers ---------------------------------------------------------------------------------


def test_a_pack_header_lists_where_its_blobs_are(repo: Repository) -> None:
    writer = PackWriter(repo)
    for text in (b"one", b"two"):
        writer.add(repo.keys.blob_id(text), text)
    ((_, locations),) = writer.finish().items()
    pack = next(iter(locations.values())).pack
    assert repo.pack_header(pack) == locations


def stored_pack(repo: Repository, data: bytes) -> str:
    name = "data/" + hashlib.sha256(data).hexdigest()[:2] + "/" + hashlib.sha256(data).hexdigest()
    repo.store.objects[name] = data  # type: ignore[attr-defined]
    return name


def with_header(repo: Repository, blobs: bytes, entries: object) -> bytes:
    header = repo.keys.seal("pack-header", compression.pack(json.dumps(entries).encode()))
    return blobs + header + struct.pack("<I", len(header))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda repo: b"abc", "is too short"),
        (lambda repo: b"x" * 10 + struct.pack("<I", 11), "has a damaged header"),
        (lambda repo: b"x" * 10 + struct.pack("<I", 2**32 - 1), "has a damaged header"),
        (lambda repo: with_header(repo, b"", [[H, 0]]), "has a malformed header"),
        (lambda repo: with_header(repo, b"", [[H, "zero", 1]]), "has a malformed header"),
        (lambda repo: with_header(repo, b"", 5), "has a malformed header"),
        (lambda repo: with_header(repo, b"", [["x", 0, 1]]), "has an invalid header"),
        (lambda repo: with_header(repo, b"", [[H, -1, 1]]), "has an invalid header"),
        (lambda repo: with_header(repo, b"", [[H, 0, 10_000]]), "has an invalid header"),
    ],
)
def test_a_damaged_pack_header_is_refused_with_its_reason(
    repo: Repository, make: Any, message: str
) -> None:
    pack = stored_pack(repo, make(repo))
    with refused(f"pack {pack} {message}"):
        repo.pack_header(pack)


def test_a_pack_header_that_is_not_json_is_refused(repo: Repository) -> None:
    header = repo.keys.seal("pack-header", compression.pack(b"{no"))
    pack = stored_pack(repo, header + struct.pack("<I", len(header)))
    with refused(f"the header of pack {pack} is not valid JSON"):
        repo.pack_header(pack)


def test_a_pack_header_may_reach_the_end_of_the_pack(repo: Repository) -> None:
    size = 0
    while len(data := with_header(repo, b"", [[H, 0, size]])) != size:
        size = len(data)  # the header's length depends on the number it holds
    pack = stored_pack(repo, data)
    assert repo.pack_header(pack) == {H: BlobLocation(pack, 0, size)}


def test_a_pack_that_does_not_match_its_name_is_refused(repo: Repository) -> None:
    pack = stored_pack(repo, with_header(repo, b"", []))
    repo.store.objects[pack] += b"!"  # type: ignore[attr-defined]
    with refused(f"pack {pack} is damaged (content does not match its name)"):
        repo.pack_header(pack)
