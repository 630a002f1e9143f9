"""Reading a changed file for a scan: its bytes hashed and chunked (sealed as they are read
for a push), checked to be whole (not being written, valid JSON), its session summary made;
thousands of small files by worker processes, many new transcript bytes summarized by
another. The reader is the engine's: it reads the engine's filters, keys and session policy."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from claude_sync import portable, resources
from claude_sync.chunking import Chunker, ChunkSink
from claude_sync.merge import HISTORY_PATH, is_transcript, split_unfinished
from claude_sync.pathmap import read_logical
from claude_sync.read_worker import FileToRead, ReadWorkers, WorkerRead, read_whole
from claude_sync.session_policy import is_main_transcript
from claude_sync.session_summary import SessionSummary, SummaryMark
from claude_sync.state import CachedFile, StatKey
from claude_sync.summary_worker import Summary, SummaryWorker

if TYPE_CHECKING:
    from claude_sync.engine import Engine

STABLE_READ_ATTEMPTS = 3
TAIL_READ = 1 << 16
# Files under SMALL_READ bytes are read whole, in batches (scanner.READ_BATCH).
SMALL_READ = 1 << 16
#: how far ahead of the readers of bigger files the disk is asked to read
PREFETCH_BYTES = 32 << 20
# A file up to this size is read whole when it is read for the first time.
WHOLE_READ = 2 << 20
#: a push's scan summarizes transcripts in a worker process when it reads at least this
#: many new transcript bytes (a first push; a hook's push of a few appends stays in-process)
OFFLOAD_SUMMARIES = 32 << 20
#: and then only transcripts too big to be read whole (a smaller one's summary comes from
#: the bytes in memory; the worker would read it again). On the large set, 256 KiB and 1 MiB
#: gave the same times within noise.
OFFLOAD_FILE = WHOLE_READ
#: how long the scan waits for one summary from the worker before it takes it for hung
SUMMARY_WAIT = 120.0
# What reading a changed file gave the scan: its content, the error, or why it waits.
_Outcome = CachedFile | OSError | str
BEING_WRITTEN = "is being written; skipped this time"
NOT_JSON = "is not valid JSON (being written?); skipped, its last synced version is kept"
#: a push's scan reads small files in worker processes when it has at least this many
#: (each process takes ~0.2 s to start; see read_worker), and they are most of its work
WORKER_FILES = 2000
#: about how many bytes of a big file cost as much to read as one small file (~100 µs)
WORKER_FILE_BYTES = 32 * 1024
#: how many: one per core (on two cores one worker left the other core mostly idle, while
#: the scan's thread only waited: 10.5 -> 11.5 s; two: 11.6 -> 9.4 s)
READ_WORKERS = max(1, min(4, os.cpu_count() or 1))
#: where chunks a read worker sealed go: (blob id, sealed) of each, and their plaintext length
SealedSink = Callable[[list[tuple[str, bytes]], int], None]


class FileRead(NamedTuple):
    """A changed file as a scan's reader found it."""

    found: resources.FoundFile
    path: str
    outcome: _Outcome
    #: a transcript's summary, or its coming from the summary worker
    summary: SessionSummary | Future[Summary] | None
    #: where the next push's summary of it can resume
    mark: SummaryMark | None


def _is_json(path: str, data: bytes | None = None) -> bool:
    """Whether the file (or data, its bytes already read) is JSON."""
    try:
        if data is None:
            with open(path, "rb") as fh:
                data = fh.read()
        json.loads(data)
    except (OSError, ValueError):
        return False
    return True


def _unfinished_length(path: str | Path) -> int:
    """How many bytes at the end of the file are a record still being written."""
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            tail = b""
            while end > 0 and b"\n" not in tail:
                start = max(0, end - TAIL_READ)
                fh.seek(start)
                tail = fh.read(end - start) + tail
                end = start
    except OSError:
        return 0
    return len(split_unfinished(tail[tail.find(b"\n") + 1 :])[1])


class InTurn:
    """Files handed out one at a time, in order, to whichever reader asks next; the disk is
    told to read ahead of the readers, PREFETCH_BYTES at most (portable.prefetch)."""

    def __init__(self, items: list[tuple[resources.FoundFile, str, CachedFile | None]]):
        self.items = items
        self._next = 0
        self._lock = threading.Lock()
        self._ahead = 0  # the files up to there were prefetched
        self._waiting = 0  # bytes of those not taken yet

    def __bool__(self) -> bool:
        return bool(self.items)

    def next(self) -> tuple[resources.FoundFile, str, CachedFile | None] | None:
        """The next file, or None once all are taken or the reading stopped."""
        with self._lock:
            if self._next >= len(self.items):
                return None
            self._next += 1
            item = self.items[self._next - 1]
            if self._ahead >= self._next:
                self._waiting -= item[0].st.st_size
            else:
                self._ahead = self._next  # not asked for: it is read now
            start = self._ahead
            while self._waiting < PREFETCH_BYTES and self._ahead < len(self.items):
                self._waiting += self.items[self._ahead][0].st.st_size
                self._ahead += 1
            ahead = self.items[start : self._ahead]
        portable.prefetch((f.abspath, min(f.st.st_size, PREFETCH_BYTES)) for f, _, _ in ahead)
        return item

    def stop(self) -> None:
        """No reader takes another file (one failed, or the push stops)."""
        with self._lock:
            self._next = len(self.items)


def new_bytes(st: resources.AnyStat, cached: CachedFile | None) -> int:
    """About how many bytes of a changed file are new: a grown file's growth."""
    if cached is not None and st.st_size > cached.stat.size:
        return st.st_size - cached.stat.size
    return st.st_size


def stat_key(st: resources.AnyStat) -> StatKey:
    return StatKey(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


class FileReader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @functools.cached_property
    def chunker(self) -> Chunker:
        """The repository's content-defined chunker (its parameters are per repository)."""
        return Chunker(self.engine.repo.config.chunker)

    def read(
        self,
        logical: str,
        path: str | Path,
        st: resources.AnyStat,
        previous: CachedFile | None = None,
        strict: bool = False,
        keep: ChunkSink | None = None,
    ) -> tuple[CachedFile, bytes | None] | None:
        """What the file holds now, and the bytes its chunks were cut from when it was read
        whole in one go (a small or filtered file; else None). previous (what it held when
        last read) spares chunking again the part of a file that only grew; keep sees the
        chunks cut. None when it kept changing, or (unless strict, which raises) could not
        be read."""
        before = None if previous is None else (previous.sha256, previous.chunks)
        keys = self.engine.repo.keys
        for _ in range(STABLE_READ_ATTEMPTS):
            data: bytes | None = None
            try:
                if logical in self.engine.filters:
                    data = self.logical_bytes(logical, path)
                    if logical == HISTORY_PATH:
                        # As a transcript's below: a prompt still being appended waits.
                        data = split_unfinished(data)[0]
                    # An old form it grew from keeps its chunks, as a transcript's below:
                    # the next pull elsewhere then finds all but the new lines' there.
                    sha, chunks = self.chunker.digest_bytes(
                        data, keys.blob_id, keep, before, keys.file_hash
                    )
                    after = os.stat(path)
                elif st.st_size < SMALL_READ or (before is None and st.st_size < WHOLE_READ):
                    # One read, no stream: a first scan meets tens of thousands of small
                    # files (each a single chunk), and opening each twice costs more than
                    # hashing it; the bytes serve the transcript's summary too. (A file
                    # read before is streamed: its old chunks stand, see
                    # Chunker.digest_file.) A transcript's unfinished last record is left
                    # out as below.
                    data, after = read_whole(path, st.st_size, SMALL_READ)
                    if is_transcript(logical):
                        data = split_unfinished(data)[0]
                    sha, chunks = self.chunker.digest_bytes(
                        data, keys.blob_id, keep, before, keys.file_hash
                    )
                else:
                    # A transcript's last record may be half-written (its writer is busy, or
                    # died): only the whole records before it are synced. Shipped, half a
                    # record would be split by the next append on another machine.
                    size = st.st_size - _unfinished_length(path) if is_transcript(logical) else None
                    sha, chunks = self.chunker.digest_file(
                        path, keys.blob_id, before, size, keep, keys.file_hash
                    )
                    after = os.stat(path)
            except OSError:
                if strict:
                    raise
                return None
            if (key := stat_key(st)) == stat_key(after):
                return CachedFile(key, portable.mode_of(st), sha, chunks), data
            st = after
        return None

    def read_checked(
        self,
        found: resources.FoundFile,
        path: str,
        cached: CachedFile | None,
        keep: ChunkSink | None,
    ) -> tuple[_Outcome, bytes | None]:
        """What a changed file holds for the scan, the error reading it, or why it waits
        for a later push; with the bytes synced when the file was read whole (a small file
        that is not filtered), else None."""
        try:
            read = self.read(path, found.abspath, found.st, cached, True, keep)
        except OSError as exc:
            return exc, None
        if read is None:
            return "kept changing while being read; skipped", None
        fresh, data = read
        if not fresh.chunks and found.st.st_size:
            # Nothing but the first record, still being written: it goes once whole.
            return BEING_WRITTEN, None
        # The bytes just hashed, unless a filter gave their logical form: the file must parse.
        checked = data if path not in self.engine.filters else None
        if path.endswith(".json") and not _is_json(found.abspath, checked):
            # Caught between an editor's truncate and write (or saved broken): shipped, it
            # would break every machine's copy.
            return NOT_JSON, None
        return fresh, checked

    def logical_bytes(self, logical: str, path: str | Path) -> bytes:
        return read_logical(path, self.engine.filters.get(logical))

    def read_batch(
        self,
        batch: list[tuple[resources.FoundFile, str, CachedFile | None]],
        marks: dict[str, SummaryMark] | None,
        keep: ChunkSink | None,
        worker: SummaryWorker | None = None,
    ) -> list[FileRead]:
        done = []
        if len(batch) > 1:
            portable.prefetch((found.abspath, found.st.st_size) for found, _, _ in batch)
        for found, path, cached in batch:
            outcome, data = self.read_checked(found, path, cached, keep)
            summary: SessionSummary | Future[Summary] | None = None
            mark = None
            if marks is not None and isinstance(outcome, CachedFile):
                if (
                    worker is not None
                    and found.st.st_size >= OFFLOAD_FILE
                    and is_main_transcript(path)
                ):
                    summary = worker.submit(
                        path, found.abspath, outcome.chunks, self.engine.device, marks.get(path)
                    )
                else:
                    summary, mark = self.engine.sessions.summary(
                        path,
                        found.abspath,
                        outcome.chunks,
                        self.engine.device,
                        marks.get(path),
                        data,
                    )
            done.append(FileRead(found, path, outcome, summary, mark))
        return done

    def read_in_turn(
        self,
        files: InTurn,
        marks: dict[str, SummaryMark] | None,
        keep: ChunkSink | None,
        worker: SummaryWorker | None,
    ) -> list[FileRead]:
        """read_batch of each file the others have not taken yet, in their order."""
        done: list[FileRead] = []
        try:
            while (item := files.next()) is not None:
                done += self.read_batch([item], marks, keep, worker)
        except BaseException:
            files.stop()
            raise
        return done

    def read_batch_elsewhere(
        self,
        readers: ReadWorkers,
        batch: list[tuple[resources.FoundFile, str, CachedFile | None]],
        marks: dict[str, SummaryMark] | None,
        keep: ChunkSink | None,
        keep_sealed: SealedSink,
        worker: SummaryWorker | None,
    ) -> list[FileRead]:
        """read_batch, with a read worker doing the reading. A file that changed since the
        walk, or a filtered one (its logical form is made here), is read here; all of the
        batch is, if the worker fails."""
        here = [item for item in batch if item[1] in self.engine.filters]
        theirs = [item for item in batch if item[1] not in self.engine.filters]
        asked = [
            FileToRead(
                found.abspath,
                path,
                found.st.st_size,
                None if (m := (marks or {}).get(path)) is None else m.to_json(),
                marks is not None and is_main_transcript(path),
                None if cached is None else cached.sha256,
            )
            for found, path, cached in theirs
        ]
        try:
            answers = readers.read(asked)
        except (OSError, ValueError, EOFError):
            return self.read_batch(batch, marks, keep, worker)
        done: list[FileRead] = []
        sealed: list[tuple[str, bytes]] = []  # the batch's chunks, kept together
        length = 0
        for (found, path, cached), answer in zip(theirs, answers, strict=True):
            if answer.error is None and StatKey(*answer.stat) != stat_key(found.st):
                here.append((found, path, cached))  # changed since the walk: read again here
                continue
            done.append(read := self._worker_read(found, path, answer))
            if isinstance(read.outcome, CachedFile):
                sealed += zip((c[0] for c in answer.chunks), answer.sealed, strict=True)
                length += sum(c[2] for c in answer.chunks)
        if sealed:
            keep_sealed(sealed, length)
        return done + (self.read_batch(here, marks, keep, worker) if here else [])

    @staticmethod
    def _worker_read(found: resources.FoundFile, path: str, answer: WorkerRead) -> FileRead:
        """What a read worker found, as read_checked and read_batch would have (its sealed
        chunks are the caller's to keep)."""
        outcome: _Outcome
        if answer.error is not None:
            return FileRead(found, path, OSError(*answer.error), None, None)
        if not answer.chunks and found.st.st_size:
            outcome = BEING_WRITTEN
        elif not answer.parses:
            outcome = NOT_JSON
        else:
            stat_key = StatKey(*answer.stat)
            outcome = CachedFile(stat_key, portable.mode_of(found.st), answer.sha256, answer.chunks)
        summary = None if answer.summary is None else SessionSummary.from_json(answer.summary, path)
        mark = None if answer.mark is None else SummaryMark.from_json(answer.mark)
        return FileRead(found, path, outcome, summary, mark)

    def marks_of(
        self, batch: list[tuple[resources.FoundFile, str, CachedFile | None]]
    ) -> dict[str, SummaryMark]:
        """Where the summaries of a batch's transcripts resume (only a file read before
        has a mark: a first push asks for none)."""
        return self.engine.state.summary_marks(p for _, p, c in batch if c is not None)

    def read_workers(
        self, changed: list[tuple[resources.FoundFile, str, CachedFile | None]]
    ) -> ReadWorkers | None:
        """Read workers for a push's scan that reads thousands of small files, unless bigger
        files are most of its work (their reading uses every core already: the workers would
        only take cores from it)."""
        small = sum(
            1 for f, p, _ in changed if f.st.st_size < SMALL_READ and p not in self.engine.filters
        )
        big = sum(new_bytes(f.st, c) for f, _, c in changed if f.st.st_size >= SMALL_READ)
        if small < WORKER_FILES or big > small * WORKER_FILE_BYTES:
            return None
        # The keys as they are once the store is open (stream() opened it, learning any new
        # key epoch): what the workers seal is sealed under the newest.
        keys = self.engine.repo.keys
        setup = {
            "keys": keys.handover(),
            "chunker": dataclasses.asdict(self.engine.repo.config.chunker),
            "device": self.engine.device,
            "block": SMALL_READ,
        }
        try:
            return ReadWorkers(setup, READ_WORKERS)
        except (OSError, ValueError):
            return None  # read here, as without workers

    @staticmethod
    def summary_worker(
        changed: list[tuple[resources.FoundFile, str, CachedFile | None]],
    ) -> SummaryWorker | None:
        """A worker for the scan's summaries when it reads many new transcript bytes."""
        new = sum(new_bytes(f.st, c) for f, p, c in changed if is_main_transcript(p))
        if new < OFFLOAD_SUMMARIES:
            return None
        try:
            return SummaryWorker()
        except OSError:
            return None  # summarized here, as without a worker

    def summary_of(
        self, read: FileRead, outcome: CachedFile, worker: SummaryWorker | None
    ) -> tuple[SessionSummary | None, SummaryMark | None]:
        """A read file's summary and mark, waiting for the worker's when it has it; if the
        worker failed, or hangs, summarized here (from the start): a push run by a hook
        must not wait on it for ever."""
        if not isinstance(read.summary, Future) or worker is None:
            return read.summary, read.mark  # type: ignore[return-value]
        try:
            return read.summary.result(timeout=SUMMARY_WAIT)
        except TimeoutError:
            worker.stop()  # the summaries still waiting fail at once, and are made here
        except OSError:
            pass  # the worker stopped
        return self.engine.sessions.summary(
            read.path, read.found.abspath, outcome.chunks, self.engine.device
        )
