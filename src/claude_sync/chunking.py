"""Content-defined chunking: appending to a transcript changes only its last chunk or two."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from claude_sync import identity
from claude_sync.identity import FileHash, NewFileHash, sha256_hash

SPLIT_HASH_SIZE = 8 * 1024 * 1024
#: a run of bytes hashed unchunked this long is read a block ahead (hash_blocks)
READ_AHEAD_FROM = 8 << 20
READ_AHEAD_BLOCK = 4 << 20
Digest = tuple[str, tuple[tuple[str, int, int], ...]]
#: sees each chunk cut (its id and bytes) before its buffer is reused
ChunkSink = Callable[[str, memoryview], None]


@dataclass(frozen=True)
class ChunkerParams:
    """A repository's chunk sizes and its secret gear seed (kept in its config object)."""

    min_size: int
    avg_size: int
    max_size: int
    seed: int


class Chunker:
    def __init__(self, params: ChunkerParams) -> None:
        # Imported here: a push with nothing changed never chunks, and should not pay for it.
        from pyfastcdc import FastCDC

        self._min_size = params.min_size
        self._max_size = params.max_size
        self._cdc = FastCDC(
            params.avg_size, min_size=params.min_size, max_size=params.max_size, seed=params.seed
        )

    def digest_file(
        self,
        path: str | Path,
        blob_id: Callable[[memoryview], str],
        previous: Digest | None = None,
        size: int | None = None,
        keep: ChunkSink | None = None,
        file_hash: NewFileHash = sha256_hash,
    ) -> Digest:
        """The file's identity (identity.py, of the kind file_hash makes) and its chunks as
        (blob id, offset, length), from one read of it. previous: the file's digest when it
        was last read; size: how many of its first bytes count (None: all); keep: sees every
        chunk cut (not those kept from previous)."""
        with open(path, "rb") as fh:
            end = os.fstat(fh.fileno()).st_size
            size = end if size is None else min(size, end)
            if previous is not None and (
                grown := self._grown(fh, size, previous, blob_id, keep, file_hash)
            ):
                return grown
            fh.seek(0)
            reader = _Prefix(fh, size)
            whole = file_hash()
            if size < SPLIT_HASH_SIZE or whole.kind == identity.B3:
                chunks = self._chunks(reader, blob_id, lambda data, _: whole.update(data), keep)
                return whole.identity(), chunks
            # A big file's SHA-256 is computed by a second reader while this one chunks: both
            # cores work on it, and each reads into a buffer of its own (the chunker's is
            # reused, so handing its bytes over would cost a copy and a lock per chunk).
            # BLAKE3 is fast enough to keep up on the chunker's own thread.
            with ThreadPoolExecutor(max_workers=1) as aside:
                hashed = aside.submit(_identity_of_prefix, path, size, whole)
                chunks = self._chunks(reader, blob_id, lambda data, _: None, keep)
                return hashed.result(), chunks

    def _grown(
        self,
        fh: BinaryIO,
        size: int,
        previous: Digest,
        blob_id: Callable[[memoryview], str],
        keep: ChunkSink | None,
        file_hash: NewFileHash,
    ) -> Digest | None:
        """The digest of a file that only grew since `previous`, or None. Its old part is
        hashed, not chunked again: a content-defined cut depends only on the bytes from its
        chunk's start, so every old chunk but the last (cut by the old end of file) stands.
        The last stands too when it is of at least the minimum chunk size: the new bytes
        start a chunk of their own, so an append uploads about its own size, not the old
        last chunk again (up to the maximum chunk size); a shorter last chunk is cut again
        with the new bytes, so appends of a line each do not leave a chunk each. The old
        part is checked in the kind of the old identity; an unchanged file keeps it, and a
        grown one gets an identity of the kind file_hash makes."""
        old_sha, old_chunks = previous
        old_size = sum(length for _, _, length in old_chunks)
        if not old_chunks or size < old_size:
            return None
        old = file_hash(old_sha)
        new = file_hash()
        both = [old] if new.kind == old.kind else [old, new]
        if hash_blocks(fh, old_size, both) != old_size or old.copy().identity() != old_sha:
            return None
        if size == old_size:
            return old_sha, tuple(old_chunks)  # the same bytes (a merge that took them)
        if new.kind == old.kind:
            new = old
        *kept, last = old_chunks
        start = last[1]
        if last[2] >= self._min_size:
            kept.append(last)
            start = old_size

        def hash_new_bytes(data: memoryview, offset: int) -> None:
            if offset + len(data) > old_size:
                new.update(data[max(0, old_size - offset) :])

        fh.seek(start)
        tail = self._chunks(_Prefix(fh, size - start), blob_id, hash_new_bytes, keep, start)
        return new.identity(), (*kept, *tail)

    def _chunks(
        self,
        fh: _Prefix,
        blob_id: Callable[[memoryview], str],
        also: Callable[[memoryview, int], object],
        keep: ChunkSink | None,
        base: int = 0,
    ) -> tuple[tuple[str, int, int], ...]:
        """Chunks from the stream's position, which is offset `base` in the file; also()
        sees each chunk's bytes and offset."""
        chunks = []
        for offset, data in self._cut_stream(fh):
            also(data, base + offset)
            name = blob_id(data)
            if keep is not None:
                keep(name, data)
            chunks.append((name, base + offset, len(data)))
        return tuple(chunks)

    def _cut_stream(self, fh: _Prefix) -> Iterator[tuple[int, memoryview]]:
        """The stream's chunks (offset from its position, bytes), cut as cut_buf cuts the
        whole, read into this thread's window (see _window): a cut is final once the bytes
        past its chunk's start that the chunker may look at (max_size) are all there, or
        the stream ended. A chunk's bytes are good until the next is asked for."""
        view = _window(self._max_size)
        filled = base = 0  # bytes in the window; the stream offset of its first
        ended = False
        while True:
            while not ended and filled < len(view):
                got = fh.readinto(view[filled:])
                ended = not got
                filled += got
            done = 0  # the window's bytes cut for good
            for c in self._cdc.cut_buf(view[:filled]):
                if not ended and c.offset + self._max_size > filled:
                    break  # cut short by the window's end, maybe: cut again with more
                done = c.offset + c.length
                yield base + c.offset, view[c.offset : done]
            if ended:
                return
            view[: filled - done] = view[done:filled]
            base += done
            filled -= done

    def digest_bytes(
        self,
        data: bytes,
        blob_id: Callable[[memoryview], str],
        keep: ChunkSink | None = None,
        previous: Digest | None = None,
        file_hash: NewFileHash = sha256_hash,
    ) -> Digest:
        """The same as digest_file, for content in memory (a small file read whole, or a
        filtered file's logical form). previous: the content's digest when it was last
        read; its chunks that the content still begins with stand (see _still_there), and
        its identity if the content is the same."""
        view = memoryview(data)
        chunks = list(self._still_there(view, previous, blob_id)) if previous else []
        start = chunks[-1][1] + chunks[-1][2] if chunks else 0
        for c in self._cdc.cut_buf(view[start:]):
            piece = view[start + c.offset : start + c.offset + c.length]
            name = blob_id(piece)
            if keep is not None:
                keep(name, piece)
            chunks.append((name, start + c.offset, c.length))
        return identity.kept_or_new(file_hash, view, previous and previous[0]), tuple(chunks)

    def _still_there(
        self, view: memoryview, previous: Digest, blob_id: Callable[[memoryview], str]
    ) -> list[tuple[str, int, int]]:
        """The chunks of previous that the content still holds at their places, from its
        start up to the first that differs, each checked by its id. Not only an append
        keeps its old chunks: a merged prompt history begins with the version both
        machines had, and cut again from its start, it would not be cut where the
        repository's copy was (an append there started a chunk at the old end), so the
        next push would send most of it again. As in _grown, a short last chunk is cut
        again with the bytes that follow it."""
        kept: list[tuple[str, int, int]] = []
        end = 0
        for chunk_id, offset, length in previous[1]:
            # (One after a gap is not kept: the state's record is only trusted to say where
            # to look, and what is kept must tile the content from its start.)
            if offset != end or length <= 0 or end + length > len(view):
                break
            if blob_id(view[offset : offset + length]) != chunk_id:
                break
            kept.append((chunk_id, offset, length))
            end += length
        whole = len(kept) == len(previous[1])
        if whole and kept and kept[-1][2] < self._min_size and end < len(view):
            kept.pop()
        return kept


def _identity_of_prefix(path: str | Path, size: int, whole: FileHash) -> str:
    """The identity of a file's first size bytes (of fewer, when it shrank meanwhile: the
    caller's check of its stat after reading catches that)."""
    with open(path, "rb", buffering=0) as fh:
        for block in read_blocks(fh, size):
            whole.update(block)
    return whole.identity()


def hash_blocks(fh: BinaryIO, size: int, hashes: Sequence[FileHash]) -> int:
    """Feeds the file's next size bytes to each of hashes; returns how many there were
    (fewer when it shrank). A long run is hashed on another thread a block behind the reads:
    a read and a hash each let go of the interpreter's lock, so they overlap (the old GiB
    of an appended transcript, from the page cache: 0.28 s one after the other, 0.19-0.21 s
    so)."""
    if size < READ_AHEAD_FROM:
        got = 0
        for block in read_blocks(fh, size):
            for h in hashes:
                h.update(block)
            got += len(block)
        return got

    def update(block: memoryview) -> None:
        for h in hashes:
            h.update(block)

    buffers = [memoryview(bytearray(READ_AHEAD_BLOCK)) for _ in range(2)]
    got = 0
    hashed: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=1) as hashing:
        while True:
            buffer = buffers[0]
            n = fh.readinto(buffer[: min(size - got, len(buffer))]) if got < size else 0
            if hashed is not None:
                hashed.result()  # the other buffer is free again
            if not n:
                return got
            got += n
            hashed = hashing.submit(update, buffer[:n])
            buffers.reverse()


_windows = threading.local()


def _window(max_size: int) -> memoryview:
    """This thread's buffer for cutting a stream (twice the largest chunk, as pyfastcdc's
    own), kept for its next file: a fresh one per file had its 4 MiB of pages faulted in
    and zeroed each time, half the time of digesting a file of a few hundred KiB."""
    size = 2 * max_size
    window: memoryview | None = getattr(_windows, "view", None)
    if window is None or len(window) != size:
        window = _windows.view = memoryview(bytearray(size))
    return window


def read_blocks(fh: BinaryIO, size: int | None) -> Iterator[memoryview]:
    """The file's next size bytes (to its end when None), a MiB at a time, each in the same
    buffer: a block is good until the next is asked for. A fresh object per read cost twice
    the read itself in a push's threads (its pages mapped and zeroed anew)."""
    buffer = memoryview(bytearray(1 << 20 if size is None else max(1, min(size, 1 << 20))))
    left = size
    while left is None or left > 0:
        got = fh.readinto(buffer if left is None else buffer[: min(left, len(buffer))])
        if not got:
            return
        yield buffer[:got]
        if left is not None:
            left -= got


class _Prefix:
    """The next `left` bytes of a file: the record a transcript's writer is still appending
    is not part of what is synced yet."""

    def __init__(self, fh: BinaryIO, left: int) -> None:
        self._fh = fh
        self._left = left

    def readinto(self, buffer: memoryview | bytearray) -> int:
        if self._left <= 0:
            return 0
        read = self._fh.readinto(memoryview(buffer)[: self._left])
        self._left -= read
        return read
