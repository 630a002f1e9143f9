"""A snapshot root is authenticated under its name, and its body must agree with that name:
a snapshot the storage serves under another number (a replay) is refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from claude_sync import compression
from claude_sync.errors import CorruptionError
from claude_sync.model import FileEntry
from claude_sync.repository import Repository, snapshot_name
from claude_sync.repository.format import SNAPSHOT_VERSION, encode_json, encode_manifest
from claude_sync.session_summary import SessionSummary


def sealed_root(repo: Repository, number: int, **body: object) -> None:
    obj = {"version": 2, "repo_id": repo.config.repo_id, "seq": number, "parent": None}
    obj |= {"device": "d", "time": 1.0, "parts": {}} | body
    name = snapshot_name(number)
    data = compression.pack(json.dumps(obj).encode())
    repo.store.objects[name] = repo.keys.seal(name, data)  # type: ignore[attr-defined]


@pytest.fixture
def repo() -> Repository:
    return Repository.create(MemoryStore(), None)


def test_a_well_formed_root_loads(repo: Repository) -> None:
    sealed_root(repo, 3, parent=2, device="laptop")
    root = repo.load_root(3)
    assert (root.seq, root.parent, root.device, root.time) == (3, 2, "laptop", 1.0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"seq": 2}, "claims another sequence number"),
        ({"repo_id": "other"}, "belongs to another repository"),
        ({"version": 99}, "belongs to another repository or format"),
        ({"parent": 3}, "names a later snapshot as its parent"),
        ({"parent_id": "zz"}, "names its parent wrongly"),
        ({"time": "soon"}, "is malformed"),
    ],
)
def test_a_root_that_disagrees_with_its_name_is_refused(
    repo: Repository, body: dict[str, object], message: str
) -> None:
    sealed_root(repo, 3, **body)
    with pytest.raises(CorruptionError, match=message):
        repo.load_root(3)


def test_a_manifest_part_is_encoded_as_the_whole_body_would_be() -> None:
    """Built a group at a time to spare memory, a manifest part is the same bytes as the
    whole body encoded at once (the on-backend format does not change)."""
    summary = SessionSummary('a "title" é\n', "/c", 1.5, None, 3, "main", "dev")
    groups = {
        "projects/-b": {
            "projects/-b/z.jsonl": FileEntry("a" * 64, 3, 7, 0o644, (("b" * 64, 3),), summary),
            "projects/-b/a.jsonl": FileEntry("c" * 64, 0, 8, 0o600, ()),
        },
        "": {"CLAUDE.md": FileEntry("d" * 64, 1, 9, 0o644, (("e" * 64, 1),))},
    }
    body = {
        "version": SNAPSHOT_VERSION,
        "groups": {g: {p: e.to_json() for p, e in files.items()} for g, files in groups.items()},
    }
    assert compression.unpack(encode_manifest(groups), "x") == compression.unpack(
        encode_json(body), "x"
    )
    assert encode_manifest({}) == encode_json({"version": SNAPSHOT_VERSION, "groups": {}})


_text = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too
_hex = st.text("0123456789abcdef", min_size=64, max_size=64)
_summaries = st.builds(
    SessionSummary,
    _text,
    _text,
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.integers(0, 1 << 40),
    _text,
    _text,
)


@st.composite
def _entries(draw: st.DrawFn) -> FileEntry:
    chunks = tuple(draw(st.lists(st.tuples(_hex, st.integers(0, 1 << 40)), max_size=4)))
    lists = tuple(
        draw(st.lists(st.tuples(_text, st.integers(1, 128), st.integers(0, 1 << 40)), max_size=2))
    )
    return FileEntry(
        draw(_hex | _hex.map("b3:".__add__)),
        draw(st.integers(0, 1 << 50)),
        draw(st.integers(-(1 << 62), 1 << 62)),
        draw(st.integers(0, 0o7777)),
        chunks,
        draw(st.none() | _summaries),
        lists,
    )


@settings(max_examples=300, print_blob=True)
@given(_entries(), st.booleans(), st.booleans())
def test_an_entry_is_written_as_json_dumps_writes_its_dict(
    entry: FileEntry, lists: bool, summary: bool
) -> None:
    """The text a manifest part or the state stores of an entry, written without building
    its dict, is the very text of its dict (compact, keys sorted), whatever its strings."""
    written = entry.json_text(lists=lists, summary=summary)
    assert written == json.dumps(
        entry.to_json(lists=lists, summary=summary), separators=(",", ":"), sort_keys=True
    )


@settings(max_examples=100, print_blob=True)
@given(st.dictionaries(_text, st.dictionaries(_text, _entries(), max_size=4), max_size=3))
def test_any_manifest_part_is_the_whole_body_encoded(
    groups: dict[str, dict[str, FileEntry]],
) -> None:
    body = {
        "version": SNAPSHOT_VERSION,
        "groups": {
            g: {p: e.to_json(lists=True) for p, e in files.items()} for g, files in groups.items()
        },
    }
    assert compression.unpack(encode_manifest(groups), "x") == compression.unpack(
        encode_json(body), "x"
    )
