"""This machine's cache of manifest parts, in front of the store (like restic's backend
cache): their random names are never reused, so a part is downloaded once. Parts are kept as
fetched, sealed, so a cached copy is checked exactly like a download."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path

from claude_sync.durable import write_private
from claude_sync.errors import CorruptionError
from claude_sync.repository.format import MANIFEST_PREFIX


class ManifestCache:
    """Sealed manifest parts of one repository, as files in a folder."""

    def __init__(self, folder: Path, repo_id: str) -> None:
        self.folder = folder
        self._prefix = f"{repo_id}-"
        self._newest_seen = 0

    def _path(self, name: str) -> Path:
        return self.folder / f"{self._prefix}{name.replace('/', '-')}"

    def open(
        self,
        name: str,
        fetch: Callable[[str], bytes],
        unseal: Callable[[str, bytes], bytes],
        cached_ok: bool,
    ) -> bytes:
        """A part's plaintext, from the cache (unsealed like a download) or fetched; what is
        fetched is cached."""
        if cached_ok:
            try:
                return unseal(name, self._path(name).read_bytes())
            except (OSError, CorruptionError):
                pass  # not cached, or a damaged copy: fetch it
        sealed = fetch(name)
        plain = unseal(name, sealed)
        self.put(name, sealed)
        return plain

    def put(self, name: str, sealed: bytes) -> None:
        """The cache only saves requests: failing to write it is not an error."""
        with contextlib.suppress(OSError):
            write_private(self._path(name), sealed)

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
