"""Content-defined chunking: appending to a transcript changes only its last chunk or two."""

from __future__ import annotations

import hashlib
import os
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from claude_sync.repository import ChunkerParams

SPLIT_HASH_SIZE = 8 * 1024 * 1024


class Chunker:
    def __init__(self, params: ChunkerParams) -> None:
        # Imported here: a push with nothing changed never chunks, and should not pay for it.
        from pyfastcdc import FastCDC

        self._cdc = FastCDC(
            params.avg_size, min_size=params.min_size, max_size=params.max_size, seed=params.seed
        )

    def digest_file(
        self, path: str | Path, blob_id: Callable[[memoryview], str]
    ) -> tuple[str, tuple[tuple[str, int, int], ...]]:
        """SHA-256 of the whole file and its chunks as (blob id, offset, length), from one
        read of it."""
        sha = hashlib.sha256()
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < SPLIT_HASH_SIZE:
                chunks = self._chunks(fh, blob_id, sha.update)
            else:
                chunks = self._chunks_hashed_aside(fh, blob_id, sha)
        return sha.hexdigest(), chunks

    def _chunks_hashed_aside(
        self, fh: BinaryIO, blob_id: Callable[[memoryview], str], sha: Any
    ) -> tuple[tuple[str, int, int], ...]:
        """A second thread feeds the same bytes to sha while this one chunks: appending to
        a 200 MiB transcript must not cost one core two passes over it."""
        pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=4)

        def consume() -> None:
            while (piece := pieces.get()) is not None:
                sha.update(piece)

        with ThreadPoolExecutor(max_workers=1) as pool:
            hashed = pool.submit(consume)
            try:
                return self._chunks(fh, blob_id, lambda data: pieces.put(bytes(data)))
            finally:
                pieces.put(None)
                hashed.result()

    def _chunks(
        self,
        fh: BinaryIO,
        blob_id: Callable[[memoryview], str],
        also: Callable[[memoryview], object],
    ) -> tuple[tuple[str, int, int], ...]:
        chunks = []
        for chunk in self._cdc.cut_stream(fh):
            data = memoryview(chunk.data)
            also(data)
            chunks.append((blob_id(data), chunk.offset, chunk.length))
        return tuple(chunks)

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
