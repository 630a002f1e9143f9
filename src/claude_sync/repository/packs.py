"""Packs and indexes: blobs sealed and packed together, each pack's own header, and the index
objects that say which pack holds a blob (docs/FORMAT.md §4, §5)."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from claude_sync import compression
from claude_sync.errors import CorruptionError, ObjectNotFoundError, SyncError
from claude_sync.model import HEX64, BlobLocation
from claude_sync.repository.access import StoreAccess
from claude_sync.repository.format import (
    DATA_PREFIX,
    FORMAT_VERSION,
    decode_json,
    encode_json,
    pack_name,
)
from claude_sync.repository.kept_packs import KeptPacks
from claude_sync.store.handle import Handle, ObjectKind

if TYPE_CHECKING:
    from claude_sync.crypto import KeyRing

PACK_TARGET_SIZE = 8 * 1024 * 1024
#: packs a push or pull holds at once, whatever the number of transfers: bounded memory
#: (4 x 8 MiB) at about the parallelism restic uses for S3
PACKS_IN_MEMORY = 4
#: a pack's wanted blobs are read by range when they lie in at most MAX_RANGES runs (blobs
#: less than RANGE_GAP apart make one run) that are at most 1/RANGED_SHARE of the pack; else
#: the whole pack is downloaded, and checked against its name
MAX_RANGES = 4
#: below this mean size of the blobs wanted from it, a pack is read one at a time (after the
#: others, which are read several at once): each blob then costs more in Python and in the
#: calls that write it than in zstd, and threads only pass the interpreter's lock back and
#: forth. A pull of 50,000 small files took 3.4 s to download
#: from a folder with four, 2.1 s with one; from S3 (SeaweedFS here) the whole pull took
#: 8.8-8.9 s with four, 7.9-8.0 s with two, 6.8-7.0 s with one. A store's latency then costs
#: a pack's first bytes, each pack: little beside ~1.5 s of work per 8 MiB pack of them.
SMALL_BLOBS = 16 * 1024
#: how far the packs of small blobs are read ahead of their opening (see _ReadAhead)
READ_AHEAD = 4 << 20
RANGE_GAP = 256 * 1024
RANGED_SHARE = 4
#: blobs sealed by one task, in bytes: a task per small blob costs more than sealing it, and
#: a first push can meet tens of thousands of small files (each its own blob)
SEAL_BATCH = 256 * 1024


def _index_every() -> float:
    try:
        return float(os.environ.get("CLAUDE_SYNC_INDEX_EVERY", "30"))
    except ValueError:
        return 30.0  # a tuning knob set wrong is no reason for a push to fail


#: a long push writes an index of the packs it has sent at least this often (seconds), and
#: once INDEX_PACKS of them wait for one, so one killed or cut off (a laptop closed, a
#: connection dropped) leaves them named, and the next push sends only what they lack (an
#: index costs one small object)
INDEX_EVERY = _index_every()
INDEX_PACKS = 8


class Packs(StoreAccess):
    """The pack and index objects of a repository."""

    #: packs a command reads twice (see packs_kept)
    kept: KeptPacks | None = None

    @contextlib.contextmanager
    def packs_kept(self, folder: Path) -> Iterator[None]:
        """Packs read whole under keeping_packs are kept in folder, and read from there
        instead of the store, until the block ends (see KeptPacks); within such a block,
        the one block goes on."""
        if self.kept is not None:
            yield
            return
        self.kept = KeptPacks(folder)
        try:
            yield
        finally:
            self.kept.drop()
            self.kept = None

    def drop_kept_packs(self) -> bool:
        """Give the disk the packs kept back (they are read from the store again); whether
        there were any."""
        return self.kept is not None and self.kept.drop()

    @contextlib.contextmanager
    def keeping_packs(self) -> Iterator[None]:
        """Packs read whole meanwhile are kept, within packs_kept (else nothing is)."""
        kept = self.kept
        if kept is None:
            yield
            return
        kept.keeping = True
        try:
            yield
        finally:
            kept.keeping = False

    def _pack_pieces(self, pack: str) -> Iterator[bytes]:
        kept = self.kept
        if kept is None:
            return self._get_pieces(pack)
        if (pieces := kept.pieces(pack)) is not None:
            return pieces
        return kept.tee(pack, self._get_pieces(pack)) if kept.keeping else self._get_pieces(pack)

    def _pack_range(self, pack: str, offset: int, length: int) -> bytes:
        kept = self.kept
        if kept is not None and (part := kept.range(pack, offset, length)) is not None:
            return part
        return self._get_range(pack, offset, length)

    def write_pack(self, name: str, data: bytes) -> bool:
        """Upload a sealed pack (see PackWriter); False when it was there already."""
        return self._put(name, data)

    def read_packs(
        self,
        packs: dict[str, dict[str, BlobLocation]],
        sink: Callable[[str, bytes], None],
        damaged: Callable[[str, SyncError], None] | None = None,
        extents: Mapping[str, int] | None = None,
        handover: Handover | None = None,
    ) -> None:
        """Hand every wanted blob of many packs to sink, `parallel` packs at a time. Each
        worker holds one pack and one blob at a time, so memory stays bounded. With
        `damaged`, a pack that is damaged or missing is reported there and the others are
        still read; without it, it fails the whole read. extents: about how big each pack
        is (State.pack_extents), so that a few blobs of a big one are read by range.
        handover: offered each whole pack (not with extents), as it is read, to open
        elsewhere (see open_worker); the packs it declines are opened here. A handover
        raises what opening the pack raised."""
        if handover is not None and extents is not None:
            raise ValueError("a pack read by range is not handed over")

        def one(
            item: tuple[str, dict[str, BlobLocation]], pieces: Iterator[bytes] | None = None
        ) -> None:
            pack, wanted = item
            try:
                extent = (extents or {}).get(pack)
                if handover is not None:
                    with contextlib.closing(self._pack_pieces(pack)) as read:
                        # Its first piece asked for before a taker is free: a store's
                        # latency is then not added to each pack's.
                        first = next(read, b"")
                        left = handover(pack, wanted, itertools.chain([first], read))
                        if left is True:
                            return
                        if left is not False:  # not taken: opened here from its pieces
                            for blob_id, plain in self.iter_pack(pack, wanted, extent, left):
                                sink(blob_id, plain)
                            return
                    # (A taker stopped once it had some of it: read again.)
                for blob_id, plain in self.iter_pack(pack, wanted, extent, pieces):
                    sink(blob_id, plain)
            except (CorruptionError, ObjectNotFoundError) as exc:
                if damaged is None:
                    raise
                damaged(item[0], exc)

        def small(blobs: dict[str, BlobLocation]) -> bool:
            return sum(loc.length for loc in blobs.values()) < SMALL_BLOBS * len(blobs)

        if handover is not None:
            # Opened by other processes: the interpreter's lock is no longer in the way.
            self._each(one, list(packs.items()), PACKS_IN_MEMORY)
            return
        for of_small, at_once in ((False, PACKS_IN_MEMORY), (True, 1)):
            chosen = [item for item in packs.items() if small(item[1]) == of_small]
            if of_small and extents is None and len(chosen) > 1:
                # One at a time, each pack's bytes read while the one before is opened:
                # a store's latency and download no longer wait on the blobs' work.
                with _ReadAhead(self._pack_pieces, [pack for pack, _ in chosen]) as ahead:
                    for item in chosen:
                        one(item, ahead.pieces())
            elif chosen:
                self._each(one, chosen, at_once)

    def pack_names(self) -> set[str]:
        return set(self.store.list(DATA_PREFIX))

    def index_names(self) -> list[str]:
        return [handle.name for handle in self._handles(ObjectKind.INDEX)]

    def load_index(self, name: str) -> dict[str, BlobLocation]:
        obj = decode_json(self.keys.open(name, self._get(name)), f"index {name}")
        locations: dict[str, BlobLocation] = {}
        try:
            if obj["version"] != FORMAT_VERSION:
                raise CorruptionError(f"index {name} has an unknown format version")
            for pack, blobs in obj["packs"].items():
                if Handle.parse_as(ObjectKind.PACK, pack) is None:
                    raise CorruptionError(f"index {name} names an invalid pack")
                for blob_id, offset, length in blobs:
                    if not HEX64.fullmatch(blob_id) or int(offset) < 0 or int(length) <= 0:
                        raise CorruptionError(f"index {name} has an invalid entry")
                    locations[blob_id] = BlobLocation(pack, int(offset), int(length))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            raise CorruptionError(f"index {name} is malformed") from None
        return locations

    def write_index(self, packs: dict[str, list[tuple[str, int, int]]]) -> str:
        name = Handle.random(ObjectKind.INDEX).name
        body = {
            "version": FORMAT_VERSION,
            "packs": {p: [list(b) for b in bl] for p, bl in packs.items()},
        }
        self._put(name, self.keys.seal(name, encode_json(body)))
        return name

    def pack_header(self, pack: str) -> dict[str, BlobLocation]:
        """Where the blobs of a pack are, from the pack itself (to rebuild lost indexes)."""
        data = self._get(pack)
        if hashlib.sha256(data).hexdigest() != pack.rsplit("/", 1)[-1]:
            raise CorruptionError(f"pack {pack} is damaged (content does not match its name)")
        if len(data) < 4:
            raise CorruptionError(f"pack {pack} is too short")
        (size,) = struct.unpack("<I", data[-4:])
        if size > len(data) - 4:
            raise CorruptionError(f"pack {pack} has a damaged header")
        header = self.keys.open("pack-header", data[-4 - size : -4])
        entries = decode_json(header, f"the header of pack {pack}")
        try:
            found = {
                str(b): BlobLocation(pack, int(offset), int(length))
                for b, offset, length in entries
            }
        except (TypeError, ValueError, OverflowError):
            raise CorruptionError(f"pack {pack} has a malformed header") from None
        if any(
            not HEX64.fullmatch(b) or loc.offset < 0 or loc.offset + loc.length > len(data)
            for b, loc in found.items()
        ):
            raise CorruptionError(f"pack {pack} has an invalid header")
        return found

    def read_pack(self, pack: str, wanted: dict[str, BlobLocation]) -> dict[str, bytes]:
        return dict(self.iter_pack(pack, wanted))

    def iter_pack(
        self,
        pack: str,
        wanted: dict[str, BlobLocation],
        extent: int | None = None,
        pieces: Iterator[bytes] | None = None,
    ) -> Iterator[tuple[str, bytes]]:
        """Open the wanted blobs of a pack. A pack is read whole, in the order of its bytes,
        and checked to be the pack its name promises, unless it is big (extent: about its
        size) and only a small part of it is wanted (a session resumed on demand): then
        that part is read by range. Each blob is authenticated and checked against its id
        either way. pieces: the pack's bytes, when they are being read already."""
        spans = _spans(wanted.values())
        part = sum(end - start for start, end in spans)
        if extent is None or len(spans) > MAX_RANGES or part * RANGED_SHARE > extent:
            # Closed when the reading stops early: an S3 body holds its connection.
            with contextlib.closing(pieces or self._pack_pieces(pack)) as read:
                yield from open_whole(self.keys, pack, wanted, read)
            return
        parts = [memoryview(self._pack_range(pack, s, e - s)) for s, e in spans]
        for blob_id, loc in wanted.items():
            start, end = next((s, e) for s, e in spans if s <= loc.offset < e)
            view = parts[spans.index((start, end))]
            sealed = view[loc.offset - start : loc.offset - start + loc.length]
            if len(sealed) != loc.length:
                raise CorruptionError(f"pack {pack} is shorter than its index says")
            yield blob_id, open_blob(self.keys, pack, blob_id, sealed)


#: opens a whole pack's wanted blobs elsewhere (its name, the blobs, its pieces as they are
#: read): True when it did; else the pieces to open it from here, or False when they are to
#: be read again
Handover = Callable[[str, dict[str, BlobLocation], Iterator[bytes]], "bool | Iterator[bytes]"]


def open_blob(keys: KeyRing, pack: str, blob_id: str, sealed: bytes | memoryview) -> bytes:
    """A blob's content, authenticated and checked against its id."""
    plain = compression.unpack(keys.open(blob_aad(blob_id), sealed), f"blob in {pack}")
    if not keys.names(blob_id, plain):
        raise CorruptionError(f"a blob in {pack} does not match its id")
    return plain


def open_whole(
    keys: KeyRing, pack: str, wanted: dict[str, BlobLocation], pieces: Iterator[bytes]
) -> Iterator[tuple[str, bytes]]:
    """The wanted blobs of a pack read whole, in pieces, in the order of its bytes; the pack
    is checked to be the one its name promises."""
    whole = _WholePack(pack, pieces)
    for blob_id, sealed in whole.blobs(wanted):
        try:
            plain = open_blob(keys, pack, blob_id, sealed)
        except CorruptionError:
            whole.check()  # a damaged pack says so, whichever blob it damaged
            raise
        yield blob_id, plain
    whole.check()


class _ReadAhead:
    """Packs read one after the other by a thread, up to READ_AHEAD bytes before they are
    used, handed over pack by pack (pieces). A pack that cannot be read raises its error
    where its pieces are used, and the next ones are still read. Used in a `with` block."""

    _END = object()

    def __init__(self, read: Callable[[str], Iterator[bytes]], packs: list[str]) -> None:
        self._cond = threading.Condition()
        self._items: collections.deque[object] = collections.deque()
        self._held = 0
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, args=(read, packs), name="read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, read: Callable[[str], Iterator[bytes]], packs: list[str]) -> None:
        for pack in packs:
            end: object = self._END
            try:
                with contextlib.closing(read(pack)) as pieces:
                    for piece in pieces:
                        if not self._put(piece):
                            return
            except Exception as exc:  # handed to the reader of this pack
                end = exc
            if not self._put(end):
                return

    def _put(self, item: object) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self._held < READ_AHEAD or self._stopped)
            if self._stopped:
                return False
            self._items.append(item)
            if isinstance(item, bytes):
                self._held += len(item)
            self._cond.notify_all()
            return True

    def _take(self) -> object:
        with self._cond:
            self._cond.wait_for(lambda: self._items)
            item = self._items.popleft()
            if isinstance(item, bytes):
                self._held -= len(item)
                self._cond.notify_all()
            return item

    def pieces(self) -> Iterator[bytes]:
        """The next pack's pieces. Left before its end (a blob that failed), the rest of
        the pack is skipped, so that the next call has the next pack."""
        ended = False
        try:
            while (item := self._take()) is not self._END:
                if isinstance(item, BaseException):
                    ended = True
                    raise item
                yield item  # type: ignore[misc]
            ended = True
        finally:
            while not ended:
                item = self._take()
                ended = item is self._END or isinstance(item, BaseException)

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()


class _WholePack:
    """A pack read from start to end, in the pieces its store reads (see
    ObjectStore.get_pieces), keeping only the bytes from the next wanted blob on: several
    packs are read at once, and a pull held 8 MiB of each."""

    def __init__(self, name: str, pieces: Iterator[bytes]) -> None:
        self.name = name
        self._pieces = pieces
        self._digest = hashlib.sha256()
        self._held = bytearray()
        #: where in the pack the bytes held begin
        self._start = 0

    def blobs(self, wanted: dict[str, BlobLocation]) -> Iterator[tuple[str, bytes]]:
        """The sealed bytes of each wanted blob, in the order they are in the pack."""
        for blob_id, loc in sorted(wanted.items(), key=lambda item: item[1].offset):
            self._drop_before(loc.offset)
            while self._start + len(self._held) < loc.offset + loc.length:
                if not self._read_more():
                    raise CorruptionError(f"pack {self.name} is shorter than its index says")
                self._drop_before(loc.offset)
            at = loc.offset - self._start
            with memoryview(self._held) as held:
                sealed = bytes(held[at : at + loc.length])
            yield blob_id, sealed

    def check(self) -> None:
        """Read the rest of the pack; CorruptionError unless it is what its name says."""
        self._held.clear()
        while self._read_more():
            self._held.clear()
        if self._digest.hexdigest() != self.name.rsplit("/", 1)[-1]:
            raise CorruptionError(f"pack {self.name} is damaged (content does not match its name)")

    def _read_more(self) -> bool:
        piece = next(self._pieces, None)
        if piece is None:
            return False
        self._digest.update(piece)
        self._held += piece
        return True

    def _drop_before(self, offset: int) -> None:
        drop = min(offset - self._start, len(self._held))
        if drop > 0:
            del self._held[:drop]
            self._start += drop


def _spans(locations: Iterable[BlobLocation]) -> list[tuple[int, int]]:
    """The (start, end) byte ranges that cover the locations, those less than RANGE_GAP
    apart read as one."""
    spans: list[tuple[int, int]] = []
    for loc in sorted(locations, key=lambda loc: loc.offset):
        end = loc.offset + loc.length
        if spans and loc.offset - spans[-1][1] < RANGE_GAP:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((loc.offset, end))
    return spans


def blob_aad(blob_id: str) -> str:
    return "blob/" + blob_id


#: a full pack's sealed blobs and its header's entries (blob id, offset, length)
_Pack = tuple[list[bytes], list[tuple[str, int, int]]]


class PackWriter:
    """Gathers sealed blobs into packs of about PACK_TARGET_SIZE and uploads each when full.

    A pack is the sealed blobs back to back, then a sealed header listing them, then the
    header's length as 4 little-endian bytes, so packs can be re-indexed from themselves.
    """

    def __init__(self, repo: Packs) -> None:
        self.repo = repo
        self.sealed: list[bytes] = []  # joined once per pack: no growing buffer to copy
        self.size = 0
        self.entries: list[tuple[str, int, int]] = []
        #: packs sent or on their way that no index names yet, with their uploads
        self._unindexed: list[tuple[str, list[tuple[str, int, int]], Future[bool] | None]] = []
        #: the indexes written since the last finish
        self.indexes: dict[str, dict[str, BlobLocation]] = {}
        self._indexed_at = time.monotonic()
        self.pending: set[str] = set()
        #: blobs whose bytes were not what their id says (their file changed since it was
        #: read): left out of the packs, and of pending
        self.mismatched: set[str] = set()
        # Compressing is most of a push's work: blobs are compressed and sealed on every
        # core, in order, with a bounded number in flight so memory stays bounded.
        workers = os.cpu_count() or 1
        self._sealer = ThreadPoolExecutor(max_workers=workers)
        self._sealing: collections.deque[tuple[list[str], Future[list[bytes | None]]]] = (
            collections.deque()
        )
        self._max_sealing = 2 * workers
        self._batch: list[tuple[str, bytes | memoryview]] = []
        self._batch_size = 0
        # A push's scan seals the chunks it reads on its own threads (seal_read): they and
        # the caller's thread append to the same pack.
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # the uploads in flight, and what was written
        # Packs upload in the background while the next one fills, at most `transfers` at
        # once. The pool is made at the first pack: how many the store takes at once is
        # known once it is open, which a push's scan does not wait for (see NewChunks).
        self._parallel = 0
        self._pool: ThreadPoolExecutor | None = None
        self._uploads: list[Future[bool]] = []

    def close(self) -> None:
        """Stop, once the uploads on their way are done; a push that stopped (Ctrl-C, an
        error) leaves the packs it sent indexed, so the next one does not send them again."""
        self._sealer.shutdown(wait=True, cancel_futures=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        # Best effort, often while an error or Ctrl-C unwinds: an index that cannot be
        # written leaves the packs to prune, and must not hide what stopped the push.
        with self._sending, contextlib.suppress(Exception):
            self._index()

    def _wait(self, in_flight: int) -> None:
        while len(self._uploads) > in_flight:
            self._uploads.pop(0).result()

    def add(self, blob_id: str, plaintext: bytes | memoryview) -> None:
        if blob_id in self.pending:
            return
        self.pending.add(blob_id)
        self._batch.append((blob_id, plaintext))
        self._batch_size += len(plaintext)
        if self._batch_size >= SEAL_BATCH:
            self._submit()

    def _submit(self) -> None:
        """Hand the blobs gathered so far to the sealing threads, as one task."""
        if not self._batch:
            return
        batch, self._batch, self._batch_size = self._batch, [], 0
        ids = [blob_id for blob_id, _ in batch]
        self._sealing.append((ids, self._sealer.submit(self._seal_all, batch)))
        self._collect(self._max_sealing)

    def seal_read(self, blob_id: str, plaintext: bytes | memoryview) -> None:
        """Seal a blob on the calling thread, right after it was read and named there: a
        push's scan streams new chunks here, so they need no second read, and no check of
        their id either. Safe from several threads at once; plaintext may be reused as soon
        as this returns."""
        with self._lock:
            if blob_id in self.pending:
                return
            self.pending.add(blob_id)
        sealed = self.repo.keys.seal(blob_aad(blob_id), compression.pack(plaintext, padded=True))
        self._append_sealed(blob_id, sealed)

    def add_sealed(self, blobs: Iterable[tuple[str, bytes]]) -> None:
        """Blobs sealed elsewhere (a read worker, see read_worker), whose ids were made from
        their plaintext there: as seal_read. Many at once: a first push of 50,000 small
        files took the lock twice per blob."""
        full = []
        with self._lock:
            for blob_id, sealed in blobs:
                if blob_id not in self.pending:
                    self.pending.add(blob_id)
                    if (pack := self._append(blob_id, sealed)) is not None:
                        full.append(pack)
        for pack in full:
            self._send(*pack)

    def _append_sealed(self, blob_id: str, sealed: bytes) -> None:
        with self._lock:
            full = self._append(blob_id, sealed)
        if full:
            self._send(*full)

    def _seal_all(self, batch: list[tuple[str, bytes | memoryview]]) -> list[bytes | None]:
        return [self._seal(blob_id, plaintext) for blob_id, plaintext in batch]

    def _seal(self, blob_id: str, plaintext: bytes | memoryview) -> bytes | None:
        # The id is checked here, on every core, not by the caller: a keyed hash of the
        # whole blob costs about as much as compressing it.
        if not self.repo.keys.names(blob_id, plaintext):
            return None
        return self.repo.keys.seal(blob_aad(blob_id), compression.pack(plaintext, padded=True))

    def _collect(self, in_flight: int) -> None:
        """Append sealed blobs, oldest first, until at most in_flight are left."""
        while len(self._sealing) > in_flight:
            ids, future = self._sealing.popleft()
            for blob_id, sealed in zip(ids, future.result(), strict=True):
                full = None
                with self._lock:
                    if sealed is None:
                        self.pending.discard(blob_id)
                        self.mismatched.add(blob_id)
                    else:
                        full = self._append(blob_id, sealed)
                if full:
                    self._send(*full)

    def _append(self, blob_id: str, sealed: bytes) -> _Pack | None:
        """Put a sealed blob into the current pack; the pack, when that filled it."""
        self.entries.append((blob_id, self.size, len(sealed)))
        self.sealed.append(sealed)
        self.size += len(sealed)
        return self._take() if self.size >= PACK_TARGET_SIZE else None

    def _take(self) -> _Pack | None:
        """The current pack's blobs and entries (None when empty); a new pack starts."""
        if not self.entries:
            return None
        full = (self.sealed, self.entries)
        self.sealed, self.entries, self.size = [], [], 0
        return full

    def _send(self, sealed: list[bytes], entries: list[tuple[str, int, int]]) -> None:
        """Write a pack: built outside the lock, so other threads seal meanwhile."""
        header = self.repo.keys.seal("pack-header", encode_json(entries))
        data = b"".join([*sealed, header, struct.pack("<I", len(header))])
        sealed.clear()  # else the blobs stay in memory beside data while _wait blocks
        name = pack_name(hashlib.sha256(data).hexdigest())
        with self._sending:
            upload = None
            if not self._parallel:
                self._parallel = min(self.repo.parallel, PACKS_IN_MEMORY)
                if self._parallel > 1:
                    self._pool = ThreadPoolExecutor(max_workers=self._parallel)
            if self._pool is None:
                self.repo.write_pack(name, data)
            else:
                self._wait(self._parallel - 1)
                upload = self._pool.submit(self.repo.write_pack, name, data)
                self._uploads.append(upload)
            self._unindexed.append((name, entries, upload))
            if (
                len(self._unindexed) >= INDEX_PACKS
                or time.monotonic() - self._indexed_at >= INDEX_EVERY
            ):
                self._index()

    def _index(self) -> None:
        """Write an index of the packs sent that no index names yet (those still on their
        way wait for the next one; one that failed, for ever)."""
        ready = [
            (name, entries)
            for name, entries, upload in self._unindexed
            if upload is None
            or (upload.done() and not upload.cancelled() and upload.exception() is None)
        ]
        if not ready:
            return
        packs = dict(ready)
        index = self.repo.write_index(packs)
        self.indexes[index] = {
            blob: BlobLocation(pack, offset, length)
            for pack, entries in packs.items()
            for blob, offset, length in entries
        }
        self._unindexed = [u for u in self._unindexed if u[0] not in packs]
        self._indexed_at = time.monotonic()

    def drain(self) -> set[str]:
        """Wait until every blob added so far is sealed; the ids of those left out because
        their bytes did not match (see mismatched)."""
        self._submit()
        self._collect(0)
        return self.mismatched

    def finish(self) -> dict[str, dict[str, BlobLocation]]:
        """Upload the last pack and an index of the packs no index names yet; the indexes
        written since the last finish, with where each names every blob."""
        self._submit()
        self._collect(0)
        if last := self._take():
            self._send(*last)
        self._wait(0)
        with self._sending:
            self._index()
            written, self.indexes = self.indexes, {}
        return written


def group_by_pack(
    locations: Iterable[tuple[str, BlobLocation]],
) -> dict[str, dict[str, BlobLocation]]:
    packs: dict[str, dict[str, BlobLocation]] = {}
    for blob_id, loc in locations:
        packs.setdefault(loc.pack, {})[blob_id] = loc
    return packs
