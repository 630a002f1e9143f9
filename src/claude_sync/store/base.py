"""The object-store interface every backend implements.

Repository format v1 needs only four operations on flat, '/'-separated names: read an object,
create one only if its name is free, list names under a prefix, delete one. Objects are
immutable once written; create-only writes are how concurrent machines take turns.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Probe objects start with this; the bucket stores hide them from listings so a crash
#: mid-probe cannot make an empty place look used.
PROBE_PREFIX = ".probe-"
#: what get_pieces reads at a time, where a store reads an object in pieces. Each pack a
#: pull reads (four at once) holds its last piece and the bytes from its next blob to that
#: piece's end: 1 MiB pieces were ~8 MiB of a fresh pull's peak, and smaller ones read as fast
PIECE_SIZE = 256 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """An object as a listing reports it, without reading it."""

    name: str
    size: int
    #: When the object was written, in seconds since the epoch by the storage's own clock (see
    #: each store's `list_info`), or None where the storage keeps no time it can vouch for.
    modified: float | None
    #: The storage's digest of the object's bytes as its listing gives it (S3's ETag, GCS's
    #: MD5), or None where it gives none: another object under the name has another tag.
    tag: str | None = None


class ObjectStore(ABC):
    """A flat namespace of immutable objects."""

    #: What the user typed, safe to print (no credentials).
    display: str
    #: Whether several requests may run at once from different threads.
    parallel_safe: bool = True
    #: The local (or mounted) folder whose files are the objects; None for a bucket or Git.
    #: Set-up offers to create a missing one and removes the folders it made.
    local_folder: Path | None = None
    #: Whether listings give each object's tag (ObjectInfo.tag): only where a read costs a
    #: request, which a tag that has not changed can save (see `list_tagged`).
    tagged: bool = False

    @abstractmethod
    def get(self, name: str) -> bytes:
        """Return the object's bytes; raise ObjectNotFoundError when it does not exist."""

    def get_pieces(self, name: str) -> Iterator[bytes]:
        """The object's bytes in pieces, as they are read; ObjectNotFoundError when it does
        not exist. Stores that can read an object a part at a time do: a pull reads several
        8 MiB packs at once, and holding each whole was a sixth of its memory."""
        yield self.get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """At most length bytes of the object from offset (fewer where it ends first);
        ObjectNotFoundError when it does not exist. Stores that can read part of an object
        do: a session resumed on demand needs a few blobs of a pack, not the whole pack."""
        return self.get(name)[offset : offset + length]

    @abstractmethod
    def put_if_absent(self, name: str, data: bytes) -> bool:
        """Store data under name unless the name is taken; True when this call created it."""

    def list(self, prefix: str, start_after: str = "") -> list[str]:
        """Names of all objects whose name starts with prefix (and, when start_after is
        given, sorts after it), in no particular order."""
        names = self._list(prefix, start_after)
        return [n for n in names if n > start_after] if start_after else names

    @abstractmethod
    def _list(self, prefix: str, start_after: str) -> list[str]:
        """Names under prefix. Stores that can start a listing after a name (S3, GCS) do,
        so finding the newest snapshot does not cost more as history grows."""

    def list_tagged(self, prefix: str, start_after: str = "") -> dict[str, str | None]:
        """The names `list` gives, each with its tag where the store is `tagged`: from the
        same one request, so a machine holding an object's content as last read can tell
        whether that name still holds it without reading it again."""
        return dict.fromkeys(self.list(prefix, start_after))

    def content_tag(self, data: bytes) -> str | None:
        """The tag a listing gives an object holding exactly data, where it can be told
        here: so a machine can keep what it wrote without listing it again. None where it
        cannot (then it is kept only once listed)."""
        return None

    @abstractmethod
    def list_info(self, prefix: str) -> list[ObjectInfo]:
        """Every object under prefix with its size and time of writing: prune counts bytes and
        ages its marks by these, so it needs neither to download objects nor to trust the
        clock of the machine it runs on."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the object; deleting a missing object is not an error."""

    def delete_many(self, names: list[str]) -> None:
        """Remove several objects; stores where each change is costly (git) do it at once."""
        for name in names:
            self.delete(name)

    #: What probe_writes() proves, for `doctor`.
    write_probe = "a probe object was written and removed"

    def probe_writes(self) -> bool:
        """Write a probe object twice, then delete it: True when the second, create-only
        write was refused, as it must be for machines to take turns. Raises SyncError when
        the store cannot be written at all."""
        probe = PROBE_PREFIX + os.urandom(8).hex()
        created = self.put_if_absent(probe, b"1")
        try:
            return created and not self.put_if_absent(probe, b"2")
        finally:
            self.delete(probe)

    def missing(self) -> str | None:
        """Why the place this store names is gone, when a listing cannot tell (a folder
        lists as empty when it is missing); None when it is there or cannot be told."""
        return None

    def prepare(self, create: bool) -> None:  # noqa: B027 - most stores need no preparation
        """Called by `init` before it creates a repository here: make the place (folder,
        bucket) when it is missing and `create` allows, and check that it is usable."""

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing open
        """Release connections."""
