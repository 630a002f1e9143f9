"""This machine's cache of manifest parts, in front of the store (like restic's backend
cache): their random names are never reused, so a part is downloaded once. Parts are kept as
fetched, sealed, so a cached copy is checked exactly like a download."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from claude_sync.durable import write_private
from claude_sync.errors import CorruptionError
from claude_sync.repository.format import MANIFEST_PREFIX
from claude_sync.store.handle import Handle, ObjectKind

LISTS_CACHE = "lists"


class ManifestCache:
    """Sealed manifest parts of one repository, as files in a folder."""

    def __init__(self, folder: Path, repo_id: str) -> None:
        self.folder = folder
        self._prefix = f"{repo_id}-"
        self._newest_seen = 0

    def _path(self, name: str, lasting: bool = False) -> Path:
        # Chunk lists are kept apart: keep_only knows a snapshot's parts without decoding
        # its entries, not the lists they name. (A list is written once per LIST_CHUNKS
        # chunks a big file gains: they add up to little.)
        kind = f"{LISTS_CACHE}-" if lasting else ""
        return self.folder / f"{self._prefix}{kind}{name.replace('/', '-')}"

    def open(
        self,
        name: str,
        fetch: Callable[[str], bytes],
        unseal: Callable[[str, bytes], bytes],
        cached_ok: bool,
        lasting: bool = False,
    ) -> bytes:
        """A part's plaintext, from the cache (unsealed like a download) or fetched; what is
        fetched is cached. lasting: a chunk list, not evicted with its snapshot's parts."""
        if cached_ok:
            try:
                return unseal(name, self._path(name, lasting).read_bytes())
            except (OSError, CorruptionError):
                pass  # not cached, or a damaged copy: fetch it
        sealed = fetch(name)
        plain = unseal(name, sealed)
        self.put(name, sealed, lasting)
        return plain

    def put(self, name: str, sealed: bytes, lasting: bool = False) -> None:
        """The cache only saves requests: failing to write it is not an error, and neither
        is losing it to a power cut (not synced: a first pull of 50,000 files waited 0.7 s for
        its 26 parts' two fsyncs each; a copy lost or torn is fetched again)."""
        with contextlib.suppress(OSError):
            write_private(self._path(name, lasting), sealed, durable=False)

    def intact(self, unseal: Callable[[str, bytes], bytes]) -> Iterator[tuple[str, bytes]]:
        """(name, sealed bytes) of every cached part and chunk list that still authenticates:
        a copy `repair` can put back when the stored one is damaged or lost."""
        for kind in ("", f"{LISTS_CACHE}-"):
            start = f"{self._prefix}{kind}{MANIFEST_PREFIX[:-1]}-"
            for path in sorted(self.folder.glob(f"{start}*")):
                name = Handle(ObjectKind.MANIFEST, path.name[len(start) :]).name
                with contextlib.suppress(OSError, CorruptionError):
                    sealed = path.read_bytes()
                    unseal(name, sealed)
                    yield name, sealed

    def keep_only(self, seq: int, parts: Iterable[str]) -> None:
        """Once the newest snapshot this process has seen (number seq) is loaded or written,
        keep only the manifest parts it uses."""
        if seq < self._newest_seen:
            return
        self._newest_seen = seq
        used = {self._path(name) for name in parts}
        with contextlib.suppress(OSError):
            for part in self.folder.glob(f"{self._prefix}{MANIFEST_PREFIX[:-1]}-*"):
                if part not in used:
                    part.unlink(missing_ok=True)
