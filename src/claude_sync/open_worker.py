"""The packs a pull downloads, opened, and their blobs written into the files it makes, by
worker processes.

Opening a blob (decrypt, decompress, check its id) and writing it is mostly work done outside
the interpreter's lock, but each step lets go of the lock and takes it back, and around them
runs the interpreter's own work per blob and per file: a pull's threads then kept 1.3 of this
machine's 2 cores busy (a pull of 1 GiB: 1.35 s of download for 1.8 s of CPU), and a pull of
50,000 small files spent ~0.7 s of its only busy thread opening them. Each worker is a plain
child process (worker_process) that takes a pack's pieces as they are downloaded, with where
each of its wanted blobs goes, opens the blobs exactly as the pull would (packs.open_whole:
the pack checked against its name, each blob authenticated and checked against its id) and
writes them (write_worker's calls, the same flags). The pull's threads download, and decide
everything else as before; a pack a worker cannot take (they stopped, or it hung) is opened
by the pull itself.

The repository's keys reach a worker on its standard input, never through its environment
or arguments; it holds them in memory as the pull does, and exits when its input closes.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

from claude_sync import portable, worker_process
from claude_sync.errors import CorruptionError, RevokedError
from claude_sync.write_worker import CREATE, open_creating, write_whole

if TYPE_CHECKING:
    from claude_sync.crypto import KeyRing

#: one per core (up to four): the pull's threads mostly wait on them (and on the store)
OPEN_WORKERS = max(1, min(4, os.cpu_count() or 2))
#: a pull hands packs to workers when it writes at least this many bytes or files (each
#: process takes ~50 ms of a core to start, meanwhile the pull plans and reads indexes)
OPEN_WORKERS_FROM_BYTES = 32 << 20
OPEN_WORKERS_FROM_FILES = 1000
PIPE_BYTES = 1 << 20
#: how long a worker may take to take a piece of a pack, or to answer once it has them all,
#: before it is taken for hung and stopped (the pull then opens the pack itself)
OPEN_WAIT = 60.0
#: how often that is looked at (seconds)
WATCH_EVERY = 1.0
#: how much of a pack is read while it waits for a worker
WAIT_AHEAD = 2 << 20
#: blobs listed in one frame of a request
BLOBS_PER_FRAME = 1000

#: where one blob goes: a temporary file, the offset and length there, and, for a file
#: written whole (of this one blob), its mode and mtime
Place = tuple[str, int, int, int | None, int | None]
#: a wanted blob of a pack: its id, offset and length in the pack, and its places
WantedBlob = tuple[str, int, int, list[Place]]


def open_pack(keys: KeyRing, pack: str, blobs: list[WantedBlob], pieces: Iterator[bytes]) -> None:
    """Open the wanted blobs of a pack from its pieces and write each to its places."""
    from claude_sync.model import BlobLocation
    from claude_sync.repository.packs import open_whole

    wanted = {blob_id: BlobLocation(pack, offset, length) for blob_id, offset, length, _ in blobs}
    places = {blob_id: where for blob_id, _, _, where in blobs}
    for blob_id, plain in open_whole(keys, pack, wanted, pieces):
        write_places(plain, places[blob_id])


def write_places(plain: bytes, places: list[Place]) -> None:
    """A blob's content written at each of its places (see Place)."""
    for tmp, offset, length, mode, mtime_ns in places:
        if len(plain) != length:
            raise CorruptionError("a blob does not have the length its snapshot says")
        if mode is not None and mtime_ns is not None:
            write_whole(tmp, plain, mode, mtime_ns)
            continue
        # A bare descriptor: a file object per blob costs more than the write when a pull
        # brings tens of thousands of small files.
        fd = open_creating(tmp, CREATE)
        try:
            portable.pwrite(fd, plain, offset)
        finally:
            os.close(fd)


def _answer_of(keys: KeyRing, request: dict[str, Any], pieces: Iterator[bytes]) -> list[Any]:
    """A request's answer: ["ok"], or what stopped it, for the pull to raise."""
    try:
        open_pack(keys, request["pack"], request["blobs"], pieces)
    except RevokedError as exc:
        return ["revoked", str(exc)]
    except CorruptionError as exc:
        return ["corrupt", str(exc)]
    except OSError as exc:
        return ["os", exc.errno or 0, exc.strerror or str(exc), exc.filename]
    return ["ok"]


def _frames(requests: IO[bytes]) -> Iterator[bytes]:
    """Frames up to an empty one: a request's parts of its list of blobs, or its pieces."""
    while frame := worker_process.read_frame(requests):
        yield frame


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker: a setup frame (the keys), then one answer per pack (its request, then
    its pieces), until its input closes."""
    from claude_sync.crypto import KeyRing

    # A Ctrl-C reaches the whole process group: the pull stops its workers itself once the
    # packs being opened are done, rather than open them again.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        keys = KeyRing.from_handover(json.loads(worker_process.read_frame(requests)))
        while True:
            request = json.loads(worker_process.read_frame(requests))
            request["blobs"] = [blob for part in _frames(requests) for blob in json.loads(part)]
            pieces = _frames(requests)
            answer = _answer_of(keys, request, pieces)
            for _ in pieces:
                pass  # what was not read when it stopped: the next request comes after
            worker_process.write_frame(answers, json.dumps(answer).encode())
            answers.flush()
    except EOFError:
        return  # the caller is done


def _parts(items: Iterable[WantedBlob], size: int) -> Iterator[list[WantedBlob]]:
    it = iter(items)
    while part := list(itertools.islice(it, size)):
        yield part


def _chained(held: list[bytes], pieces: Iterator[bytes]) -> Iterator[bytes]:
    yield from held
    yield from pieces


def _answers(frames: list[bytes], count: int) -> list[Any]:
    answer = json.loads(frames[0])
    if not isinstance(answer, list) or not answer or not isinstance(answer[0], str):
        raise ValueError("the open worker answered nonsense")
    return answer


class PackOpeners:
    """A few open workers, each taking one pack at a time, from any of the pull's threads.
    A worker that takes longer than OPEN_WAIT to take a piece, or to answer once it has
    them all, is stopped (a pull run by a hook must not wait on it for ever)."""

    command = worker_process.module_command("claude_sync.open_worker")

    def __init__(self, keys: KeyRing, count: int = OPEN_WORKERS) -> None:
        setup = json.dumps(keys.handover()).encode()
        self._closing = threading.Event()
        # A pack goes over in fewer, bigger writes (8 MiB through 64 KiB at a time is a
        # hundred wake-ups of each side).
        self._workers = worker_process.start_workers(
            self.command, "open worker", count, _answers, setup, PIPE_BYTES
        )
        #: the workers free to take a pack; None once one stopped, put back by each taker,
        #: so that no thread waits for ever on workers that are all gone
        self._idle: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        for k in range(count):
            self._idle.put(k)
        #: by worker: when it is taken for hung, while it is handed a piece
        self._deadlines = [math.inf] * count
        threading.Thread(target=self._watch, name="open-watchdog", daemon=True).start()

    def open(
        self, pack: str, blobs: Iterable[WantedBlob], pieces: Iterator[bytes]
    ) -> bool | Iterator[bytes]:
        """Have the next idle worker open a pack's blobs from its pieces, as they come, and
        write them (see open_pack): True once they are written. When the workers have
        stopped, the pieces to open the pack from here (the caller then does it itself);
        False when a worker stopped or hung once it had some (the pack is to be read again;
        what it wrote is written again). What the worker met opening or writing them is
        raised (CorruptionError, RevokedError, OSError), and so is what reading the pieces
        raised."""
        held: list[bytes] = []
        k = self._take(pieces, held)
        if k is None:
            return _chained(held, pieces)
        worker = self._workers[k]

        def frames() -> Iterator[bytes]:
            # The list of blobs in parts, each made as it is sent: a pack of small files has
            # tens of thousands, and a request of them all was ~20 MiB of a pull's peak.
            sent = itertools.chain(
                [json.dumps({"pack": pack}).encode()],
                (json.dumps(part).encode() for part in _parts(blobs, BLOBS_PER_FRAME)),
                [b""],
                (piece for piece in itertools.chain(held, pieces) if piece),
                [b""],
            )
            for frame in sent:
                self._deadlines[k] = time.monotonic() + OPEN_WAIT
                yield frame
                self._deadlines[k] = math.inf  # (none while the store is read)
            self._deadlines[k] = time.monotonic() + OPEN_WAIT

        try:
            answer = worker.ask(frames(), 1, OPEN_WAIT)
        except OSError:
            self._gone(worker)
            return False
        except BaseException:
            # The store failed mid-pack (or Ctrl-C): the worker waits for the rest.
            self._gone(worker)
            raise
        finally:
            self._deadlines[k] = math.inf
        self._idle.put(k)
        kind = answer[0]
        if kind == "ok":
            return True
        if kind == "corrupt":
            raise CorruptionError(str(answer[1]))
        if kind == "revoked":
            raise RevokedError(str(answer[1]))
        if kind == "os":
            raise OSError(int(answer[1]), str(answer[2]), answer[3])
        return False

    def _take(self, pieces: Iterator[bytes], held: list[bytes]) -> int | None:
        """The next idle worker (None: they have stopped). Meanwhile the pack's next pieces
        are read into held, up to WAIT_AHEAD bytes: the store's answer goes on arriving
        (as many packs are downloaded at once as without workers) rather than wait unread
        while every worker is busy."""
        size = 0
        k: int | None
        while True:
            try:
                k = self._idle.get_nowait()
                break
            except queue.Empty:
                pass
            piece = next(pieces, None) if size < WAIT_AHEAD else None
            if piece is None:
                k = self._idle.get()
                break
            held.append(piece)
            size += len(piece)
        if k is None:
            self._idle.put(None)
        return k

    def _gone(self, worker: worker_process.Worker[list[Any]]) -> None:
        """A worker that failed, stopped and gone; its place in the idle queue says the
        workers have stopped."""
        try:
            worker.stopped(OPEN_WAIT)
        finally:
            self._idle.put(None)

    def _watch(self) -> None:
        while not self._closing.wait(WATCH_EVERY):
            now = time.monotonic()
            for worker, deadline in zip(self._workers, self._deadlines, strict=True):
                if now > deadline:
                    worker.stop()

    def stop(self) -> None:
        """Kill every worker now, and wait until they are gone: whatever they were writing
        is left as it was (the caller cleans up)."""
        for worker in self._workers:
            worker.stop()
        self.close()

    def close(self) -> None:
        self._closing.set()
        for worker in self._workers:
            worker.close()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
