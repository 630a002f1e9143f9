"""The snapshot data model: what a snapshot lists (FileEntry), a snapshot and its root, and
where a blob lies in a pack. The repository stores these; the local state, the planner and the
catalog work on them without depending on the repository (docs/FORMAT.md §4, §6)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from claude_sync.errors import CorruptionError
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

    def located_chunks(self) -> tuple[tuple[str, int, int], ...]:
        """The chunks as (blob id, offset in the file, length)."""
        chunks, offset = [], 0
        for blob_id, length in self.chunks:
            chunks.append((blob_id, offset, length))
            offset += length
        return tuple(chunks)

    def to_json(self) -> dict[str, Any]:
        body = {
            "sha256": self.sha256,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "mode": self.mode,
            "chunks": [list(c) for c in self.chunks],
        }
        if self.session is not None:
            body["session"] = self.session.to_json()
        return body

    @classmethod
    def from_json(cls, obj: Any, what: str) -> FileEntry:
        try:
            chunks = tuple((str(b), int(n)) for b, n in obj["chunks"])
            entry = cls(
                sha256=str(obj["sha256"]),
                size=int(obj["size"]),
                mtime_ns=int(obj["mtime_ns"]),
                mode=int(obj["mode"]),
                chunks=chunks,
                session=(
                    None if "session" not in obj else SessionSummary.from_json(obj["session"], what)
                ),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise CorruptionError(f"{what} has a malformed file entry") from None
        if (
            not HEX64.fullmatch(entry.sha256)
            or entry.size < 0
            or not 0 <= entry.mode <= 0o7777
            or any(not HEX64.fullmatch(b) or n < 0 for b, n in chunks)
            or sum(n for _, n in chunks) != entry.size
        ):
            raise CorruptionError(f"{what} has an inconsistent file entry")
        return entry


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

    def part_names(self) -> set[str]:
        return {name for names in self.parts.values() for name in names}


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
