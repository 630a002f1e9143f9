"""A file's identity: the hash a snapshot entry and the local state name a version of a file
by (its `sha256` field, docs/FORMAT.md §6), the one thing plans compare.

Two kinds live side by side. SHA-256 of the file (64 hex digits), what formats 1-7 write;
and keyed BLAKE3 of the file under the blob-id key, written `b3:` and 64 hex digits, what a
format 8 repository's writers use for every version they hash anew. SHA-256 runs at
~1.2 GB/s on one core here and cannot be resumed or split, so it was a third of a first
push's hashing and nearly all of a push after an append to a big transcript; BLAKE3 runs at
~7 GB/s and is computed as the chunks are cut, with no second read of the file.

An upgraded repository keeps the SHA-256 ids of the versions written before, so equal content
can carry ids of both kinds: content is always checked against an id in that id's kind, a
version read again but unchanged keeps the id it had (Chunker.digest_file), and ids of
different kinds for files of the same size are compared by reading the file (align), so a
repository upgrade never makes equal files look changed, let alone conflict. Ids of different
kinds are never taken as equal without that: two kinds can only make content look changed,
never make changed content look the same.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from blake3 import blake3

#: what a keyed-BLAKE3 identity starts with
B3 = "b3:"
SHA256 = ""
#: any identity, as entries and state rows hold it
IDENTITY = re.compile(r"(?:b3:)?[0-9a-f]{64}")


def kind_of(file_id: str) -> str:
    """The kind of an identity: B3 or SHA256 (the prefix it starts with)."""
    return B3 if file_id.startswith(B3) else SHA256


class FileHash:
    """An identity being computed, a piece of the content at a time."""

    __slots__ = ("_hash", "kind")

    def __init__(self, kind: str, key: bytes, _hash: object = None) -> None:
        self.kind = kind
        if _hash is not None:
            self._hash = _hash
        elif kind == B3:
            self._hash = blake3(key=key, max_threads=1)
        else:
            self._hash = hashlib.sha256()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)  # type: ignore[attr-defined]

    def copy(self) -> FileHash:
        return FileHash(self.kind, b"", self._hash.copy())  # type: ignore[attr-defined]

    def identity(self) -> str:
        return self.kind + self._hash.hexdigest()  # type: ignore[attr-defined]


class NewFileHash(Protocol):
    """A new FileHash in the kind of `like` (an identity), else in the repository's own."""

    def __call__(self, like: str | None = None) -> FileHash: ...


def sha256_hash(like: str | None = None) -> FileHash:
    """Identities as formats 1-7 write them (for content kept outside a repository, and for
    callers that name no keys)."""
    if like is not None and kind_of(like) == B3:
        raise ValueError("a keyed identity needs the repository's keys")
    return FileHash(SHA256, b"")


def of(new_hash: NewFileHash, data: bytes | memoryview, like: str | None = None) -> str:
    """The identity of data, in the kind of `like` if given, else the repository's."""
    h = new_hash(like)
    h.update(data)
    return h.identity()


def kept_or_new(new_hash: NewFileHash, data: bytes | memoryview, before: str | None) -> str:
    """The identity of data: `before` if it names data (a version read again unchanged keeps
    the id it had, of either kind), else one of the repository's kind."""
    if before:
        same = of(new_hash, data, before)
        if same == before or kind_of(before) == new_hash().kind:
            return same
    return of(new_hash, data)


class _Local(Protocol):
    @property
    def sha256(self) -> str: ...

    def entry(self) -> _Sized: ...


class _Sized(Protocol):
    @property
    def size(self) -> int: ...


class _Versions(Protocol):
    """Another version of each path (its merge base, or the remote one), or None."""

    def __call__(self, path: str) -> _Version | None: ...


class _Version(Protocol):
    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...


def to_align(
    local: Mapping[str, _Local],
    base_id: Callable[[str], str | None],
    base: _Versions,
    remote: _Versions,
) -> dict[str, list[str]]:
    """The paths whose local id is of another kind than their remote version's or merge
    base's, at the same size, with those ids, the remote's first: only reading the file can
    tell whether it is that content (content of another size differs). A file whose id is
    its base's or its remote's already is left alone, and only a file that differs from its
    base is looked up in the remote list (a push reads only the groups it changes)."""
    found: dict[str, list[str]] = {}
    for path, mine in local.items():
        ident = mine.sha256
        base_ident = base_id(path)
        if base_ident == ident:
            continue
        theirs = remote(path)
        if theirs is not None and theirs.sha256 == ident:
            continue
        b3 = ident.startswith(B3)
        ours = None
        if base_ident is not None and base_ident.startswith(B3) != b3:
            ours = base(path)  # decoded only when it may be this content
        ids: list[str] = []
        for other in (theirs, ours):
            if (
                other is not None
                and other.sha256.startswith(B3) != b3
                and other.sha256 not in ids
                and other.size == mine.entry().size
            ):
                ids.append(other.sha256)
        if ids:
            found[path] = ids
    return found


def mixed(local: Mapping[str, _Local], ids: Mapping[str, str]) -> bool:
    """Whether a local id differs from the id ids give its path in kind (see to_align)."""
    for path, mine in local.items():
        other = ids.get(path)
        if other is not None and other != mine.sha256 and kind_of(other) != kind_of(mine.sha256):
            return True
    return False


def same_content(
    new_hash: NewFileHash,
    blocks: Iterable[bytes | bytearray | memoryview],
    mine: str,
    theirs: list[str],
) -> str | None:
    """The first of `theirs` that names the content, given a block at a time (a transcript
    can be far bigger than the memory a hook should take), provided `mine` names it too (so
    it is the version the local id was computed for, not what the file became since); else
    None."""
    hashes = [new_hash(mine), *(new_hash(other) for other in theirs)]
    for block in blocks:
        for h in hashes:
            h.update(block)
    if hashes[0].identity() != mine:
        return None
    named = (other for other, h in zip(theirs, hashes[1:], strict=True) if h.identity() == other)
    return next(named, None)
