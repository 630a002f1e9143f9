"""The snapshot data model: what a snapshot lists (FileEntry), a snapshot and its root, and
where a blob lies in a pack. The repository stores these; the local state, the planner and the
catalog work on them without depending on the repository (docs/FORMAT.md §4, §6)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring_ascii as _string  # json.dumps's own, in C
from typing import Any

from claude_sync.errors import CorruptionError
from claude_sync.identity import IDENTITY
from claude_sync.session_summary import SessionSummary

#: a SHA-256 (or HMAC) in hex: blob ids, file hashes, random object names
HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One synced file in a snapshot: its content is the concatenation of its chunks."""

    sha256: str
    size: int
    mtime_ns: int
    mode: int
    chunks: tuple[tuple[str, int], ...]  # (blob id, plaintext length)
    #: a conversation transcript's summary (optional: older writers have none)
    session: SessionSummary | None = None
    #: where a big file's chunks are listed in a manifest (docs/FORMAT.md §6, chunk lists):
    #: (chunk list object, chunks, bytes) for its first chunks, LIST_CHUNKS at a time. Not
    #: part of the version: `chunks` always holds them all once the entry is read.
    lists: tuple[tuple[str, int, int], ...] = field(default=(), compare=False)

    def located_chunks(self) -> tuple[tuple[str, int, int], ...]:
        """The chunks as (blob id, offset in the file, length)."""
        chunks, offset = [], 0
        for blob_id, length in self.chunks:
            chunks.append((blob_id, offset, length))
            offset += length
        return tuple(chunks)

    def with_session(self, session: SessionSummary | None) -> FileEntry:
        """This entry with a transcript's summary (built directly: `dataclasses.replace`
        looks up every field, and a first push adds one per transcript)."""
        return FileEntry(
            self.sha256, self.size, self.mtime_ns, self.mode, self.chunks, session, self.lists
        )

    def to_json(self, lists: bool = False, summary: bool = True) -> dict[str, Any]:
        """The entry as JSON: with every chunk, or (lists, for a manifest part) with its
        chunk lists and only the chunks after them; without a transcript's summary when
        not summary."""
        listed = sum(n for _, n, _ in self.lists) if lists else 0
        body: dict[str, Any] = {
            "sha256": self.sha256,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "mode": self.mode,
            "chunks": [list(c) for c in self.chunks[listed:]],
        }
        if listed:
            body["lists"] = [list(ref) for ref in self.lists]
        if summary and self.session is not None:
            body["session"] = self.session.to_json()
        return body

    def json_text(self, lists: bool = False, summary: bool = True) -> str:
        """to_json as compact JSON with sorted keys, the form manifests store: the text
        `json.dumps(self.to_json(...), separators=(",", ":"), sort_keys=True)` makes,
        written without a dict and lists per entry (a first push or a pull of 50,000 files
        spent ~0.3 s of one core building and sorting them)."""
        listed = sum(n for _, n, _ in self.lists) if lists else 0
        chunks = ",".join([f"[{_string(b)},{n}]" for b, n in self.chunks[listed:]])
        text = f'{{"chunks":[{chunks}]'
        if listed:
            refs = ",".join([f"[{_string(name)},{n},{size}]" for name, n, size in self.lists])
            text += f',"lists":[{refs}]'
        text += f',"mode":{self.mode},"mtime_ns":{self.mtime_ns}'
        if summary and self.session is not None:
            text += ',"session":' + json.dumps(
                self.session.to_json(), separators=(",", ":"), sort_keys=True
            )
        return f'{text},"sha256":{_string(self.sha256)},"size":{self.size}}}'

    @classmethod
    def from_json(cls, obj: Any, what: str, lists_ok: bool = False) -> FileEntry:
        """An entry as to_json wrote it. One with chunk lists (only where lists_ok) holds
        just the chunks after them, until its reader resolves them (with_listed)."""
        try:
            chunks = tuple((str(b), int(n)) for b, n in obj["chunks"])
            lists = tuple((str(name), int(n), int(size)) for name, n, size in obj.get("lists", ()))
            entry = cls(
                sha256=str(obj["sha256"]),
                size=int(obj["size"]),
                mtime_ns=int(obj["mtime_ns"]),
                mode=int(obj["mode"]),
                chunks=chunks,
                session=(
                    None if "session" not in obj else SessionSummary.from_json(obj["session"], what)
                ),
                lists=lists,
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise CorruptionError(f"{what} has a malformed file entry") from None
        if (
            not IDENTITY.fullmatch(entry.sha256)
            or entry.size < 0
            or not 0 <= entry.mode <= 0o7777
            or any(not HEX64.fullmatch(b) or n < 0 for b, n in chunks)
            or any(n <= 0 or size < 0 for _, n, size in lists)
            or sum(n for _, n in chunks) + sum(size for _, _, size in lists) != entry.size
            or (lists and not lists_ok)
        ):
            raise CorruptionError(f"{what} has an inconsistent file entry")
        return entry

    def with_listed(self, listed: dict[str, tuple[tuple[str, int], ...]], what: str) -> FileEntry:
        """This entry, read with chunk lists, with all its chunks: listed holds each list's
        chunks, as read."""
        chunks: list[tuple[str, int]] = []
        for name, count, size in self.lists:
            found = listed[name]
            if len(found) != count or sum(n for _, n in found) != size:
                raise CorruptionError(f"{what} has a chunk list that does not match its entry")
            chunks += found
        return replace(self, chunks=(*chunks, *self.chunks))


@dataclass
class Snapshot:
    seq: int
    parent: int | None
    device: str
    time: float
    #: a dict, or a list read or written a group at a time (repository/file_list.py)
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    #: manifest group -> the manifest part of each of its pieces, piece k holding the paths
    #: whose piece_of(path, n) is k (one piece: the whole group); empty for a version 1
    #: snapshot
    parts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the parent's identity (see SnapshotRoot.id); None for the first snapshot and for
    #: snapshots written before history was chained
    parent_id: str | None = None
    #: this snapshot's identity, known once it was read or written
    id: str = ""
    #: names the writing device had before it was renamed
    formerly: tuple[str, ...] = ()
    #: the root's bytes as stored, once written here (see claude_sync.kept_head)
    sealed: bytes = b""

    def part_names(self) -> set[str]:
        return {name for names in self.parts.values() for name in names}

    def manifest_names(self) -> set[str]:
        """Every manifest object the snapshot needs: its parts, and the chunk lists its
        entries name (this reads its whole file list)."""
        return self.part_names() | {name for e in self.files.values() for name, _, _ in e.lists}


@dataclass(frozen=True)
class SnapshotRoot:
    """A snapshot's authenticated root, without its file list: enough to follow history.

    `id` is the SHA-256 of the sealed bytes as stored. Only a holder of the key can seal, so
    a root naming its parent's id names exactly one parent: history is a hash chain."""

    seq: int
    id: str
    parent: int | None
    parent_id: str | None
    device: str
    time: float
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BlobLocation:
    pack: str
    offset: int
    length: int
