"""File identities of two kinds (identity.py, local_identity.py): SHA-256, as formats 1-7
wrote them, and keyed BLAKE3 (`b3:`), as format 8 writes them. Content is only ever taken for
a version of the other kind after it was read and found to be that version, and still what
the scan hashed."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from engine_pair import EngineMachines
from hypothesis import given
from hypothesis import strategies as st

from claude_sync import identity
from claude_sync.crypto import KeyRing
from claude_sync.repository import FileEntry
from claude_sync.resources import select


def keys(b3: bool) -> KeyRing:
    ring = KeyRing(b"m" * 32)
    ring.file_ids_blake3 = b3
    return ring


@given(data=st.binary(max_size=5000), other=st.binary(max_size=5000), b3=st.booleans())
def test_an_identity_names_its_content_in_its_own_kind(data: bytes, other: bytes, b3: bool):
    ring = keys(b3)
    mine = identity.of(ring.file_hash, data)
    assert identity.kind_of(mine) == (identity.B3 if b3 else identity.SHA256)
    assert identity.IDENTITY.fullmatch(mine)
    sha = hashlib.sha256(data).hexdigest()
    # Checked in the kind of the id it is checked against, whatever the repository writes.
    assert identity.of(ring.file_hash, data, sha) == sha
    assert identity.of(keys(not b3).file_hash, data, mine) == mine
    # Ids of the two kinds are never equal, and other content has another id.
    assert identity.of(keys(True).file_hash, data) != sha
    assert (identity.of(ring.file_hash, other) == mine) == (other == data)
    # Read again: the id it had is kept when it names the content, of either kind.
    assert identity.kept_or_new(keys(True).file_hash, data, sha) == sha
    assert identity.kept_or_new(ring.file_hash, data, None) == mine
    if other != data:
        assert identity.kept_or_new(ring.file_hash, other, sha) == identity.of(
            ring.file_hash, other
        )


def test_a_keyed_identity_needs_the_keys():
    with pytest.raises(ValueError):
        identity.sha256_hash("b3:" + "0" * 64)
    # The keyed kind depends on the repository's key: another repository's id is not it.
    assert identity.of(keys(True).file_hash, b"x") != identity.of(
        KeyRing(b"n" * 32, None).file_hash, b"x", "b3:"
    )


def test_same_content_needs_the_content_still_as_scanned():
    ring = keys(True)
    scanned, now = b"same text\n", b"else text\n"
    mine = identity.of(ring.file_hash, scanned)
    theirs = hashlib.sha256(now).hexdigest()
    # The file now holds what another version holds, but not what the scan hashed (and its
    # chunks describe): taking that version's id would list the scan's chunks under it.
    assert identity.same_content(ring.file_hash, [now], mine, [theirs]) is None
    old = hashlib.sha256(scanned).hexdigest()
    assert (
        identity.same_content(ring.file_hash, [scanned[:4], scanned[4:]], mine, [theirs, old])
        == old
    )


def test_a_local_file_takes_the_other_kinds_id_only_while_it_is_that_content(tmp_path):
    pair = EngineMachines(tmp_path)
    pair.write(0, "agents/a.md", "same text\n")
    engine = pair.engine(0)
    try:
        view = engine.scanner.scan(select([], {}), [])
        local = view.files["agents/a.md"]
        assert local.sha256.startswith(identity.B3)  # a new repository: format 8
        old = hashlib.sha256(b"same text\n").hexdigest()
        assert engine.identities.names(local, old)
        assert engine.identities.names(local, local.sha256)
        assert not engine.identities.names(local, hashlib.sha256(b"else text\n").hexdigest())
        assert not engine.identities.names(local, "b3:" + "0" * 64)
        assert not engine.identities.names(local, None)
        head = SimpleNamespace(files={"agents/a.md": FileEntry(old, 10, 0, 0o644, ())})
        pair.write(0, "agents/a.md", "else text\n")  # the same size, changed since the scan
        engine.identities.align(view, None, head)  # type: ignore[arg-type]
        assert view.files["agents/a.md"].sha256 == local.sha256
        pair.write(0, "agents/a.md", "same text\n")
        engine.identities.align(view, None, head)  # type: ignore[arg-type]
        assert view.files["agents/a.md"].sha256 == old
        assert engine.state.cached_files()["agents/a.md"].sha256 == old  # read once
        (pair.root(0) / "agents/a.md").unlink()
        assert not engine.identities.names(local, old)  # gone: the next scan says so
    finally:
        engine.state.close()


def test_a_base_relabelled_keeps_its_version_under_the_other_id(tmp_path):
    from claude_sync.state import State

    state = State(tmp_path / "state.db")
    try:
        entry = FileEntry("a" * 64, 5, 1, 0o644, (("c" * 64, 5),))
        state.set_base("agents/x.md", entry, 3)
        bases = state.bases()
        bases.relabel("agents/x.md", FileEntry("b3:" + "d" * 64, 5, 2, 0o644, entry.chunks))
        state.relabel_base("agents/x.md", "b3:" + "d" * 64)
        for seen in (bases, state.bases()):
            assert seen.sha("agents/x.md") == "b3:" + "d" * 64
            assert seen["agents/x.md"].chunks == entry.chunks
            assert seen["agents/x.md"].mtime_ns == 1  # the base's own, not the relabeller's
    finally:
        state.close()


def test_a_transcript_is_compared_as_scanned_a_block_at_a_time(tmp_path):
    """What was scanned of a transcript ends before a record still being written; a file
    of several blocks is hashed as it is read, not held whole."""
    pair = EngineMachines(tmp_path)
    path = "projects/-p/00000000-0000-4000-8000-000000000001.jsonl"
    whole = "".join(f'{{"n": {i}, "pad": "{"x" * 900}"}}\n' for i in range(3000)).encode()
    pair.write(0, path, whole.decode() + '{"n": "half')
    engine = pair.engine(0)
    try:
        local = engine.scanner.scan(select([], {}), []).files[path]
        assert local.unfinished and len(whole) > 2 << 20
        assert engine.identities.names(local, hashlib.sha256(whole).hexdigest())
        with open(pair.root(0) / path, "a") as fh:
            fh.write('", "done": 1}\n')  # the record finished: not what was scanned, still
        assert engine.identities.names(local, hashlib.sha256(whole).hexdigest())
        pair.write(0, path, whole.decode().replace('"n": 7,', '"n": 8,'))
        assert not engine.identities.names(local, hashlib.sha256(whole).hexdigest())
    finally:
        engine.state.close()
