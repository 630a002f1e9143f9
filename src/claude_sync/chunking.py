"""Content-defined chunking: appending to a transcript changes only its last chunk or two."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from pyfastcdc import FastCDC

from claude_sync.repository import ChunkerParams


class Chunker:
    def __init__(self, params: ChunkerParams) -> None:
        self._cdc = FastCDC(
            params.avg_size, min_size=params.min_size, max_size=params.max_size, seed=params.seed
        )

    def digest_file(
        self, path: Path, blob_id: Callable[[memoryview], str]
    ) -> tuple[str, tuple[tuple[str, int, int], ...]]:
        """SHA-256 of the whole file and its chunks as (blob id, offset, length), in one read."""
        sha = hashlib.sha256()
        chunks = []
        with path.open("rb") as fh:
            for chunk in self._cdc.cut_stream(fh):
                data = memoryview(chunk.data)
                sha.update(data)
                chunks.append((blob_id(data), chunk.offset, chunk.length))
        return sha.hexdigest(), tuple(chunks)

    def digest_bytes(
        self, data: bytes, blob_id: Callable[[memoryview], str]
    ) -> tuple[str, tuple[tuple[str, int, int], ...]]:
        """The same as digest_file, for content that exists only in memory."""
        view = memoryview(data)
        chunks = tuple(
            (blob_id(view[c.offset : c.offset + c.length]), c.offset, c.length)
            for c in self._cdc.cut_buf(data)
        )
        return hashlib.sha256(data).hexdigest(), chunks
