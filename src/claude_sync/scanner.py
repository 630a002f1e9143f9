"""The scan: the Claude folder's files as they are now. A file whose stat is what the
state last recorded is taken as it was; the others are read (hashed, chunked and, for a
push, sealed as they are read, several at once), their summaries made, and what could not
be read said once, with why.

The scanner is the engine's: it reads the engine's settings (its mapper, filters and
session policy, which a command may change after the engine is made)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from claude_sync import __version__, mcp, portable, resources, terminal
from claude_sync.chunking import Chunker, ChunkSink
from claude_sync.clean_tree import TreeWalk
from claude_sync.merge import HISTORY_PATH, is_transcript, split_unfinished
from claude_sync.planner import LocalFile, LocalView
from claude_sync.read_worker import FileToRead, ReadWorkers, WorkerRead, read_whole
from claude_sync.resources import Selection
from claude_sync.session_policy import is_main_transcript
from claude_sync.session_summary import SessionSummary, SummaryMark
from claude_sync.state import CachedFile, StatKey
from claude_sync.summary_worker import Summary, SummaryWorker

if TYPE_CHECKING:
    from claude_sync.engine import Engine, Result
    from claude_sync.uploads import NewChunks

STABLE_READ_ATTEMPTS = 3
TAIL_READ = 1 << 16
# A scan hands files under SMALL_READ bytes to its readers READ_BATCH at a time.
SMALL_READ = 1 << 16
# A file up to this size is read whole when it is read for the first time.
WHOLE_READ = 2 << 20
READ_BATCH = 64
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
#: where chunks a read worker sealed go: (blob id, sealed, plaintext length)
SealedSink = Callable[[str, bytes, int], None]


class _Read(NamedTuple):
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


@contextlib.contextmanager
def _closing(worker: SummaryWorker | ReadWorkers | None) -> Iterator[None]:
    try:
        yield
    finally:
        if worker is not None:
            worker.close()


def _small_batches(
    changed: list[tuple[resources.FoundFile, str, CachedFile | None]],
) -> Iterator[list[tuple[resources.FoundFile, str, CachedFile | None]]]:
    """The changed files under SMALL_READ, READ_BATCH at a time: a task per tiny file costs
    more than reading it, and a first scan can meet tens of thousands."""
    batch: list[tuple[resources.FoundFile, str, CachedFile | None]] = []
    for item in changed:
        if item[0].st.st_size < SMALL_READ:
            batch.append(item)
            if len(batch) >= READ_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


class _InTurn:
    """Files handed out one at a time, in order, to whichever reader asks next."""

    def __init__(self, items: list[tuple[resources.FoundFile, str, CachedFile | None]]):
        self.items = items
        self._next = 0
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.items)

    def next(self) -> tuple[resources.FoundFile, str, CachedFile | None] | None:
        """The next file, or None once all are taken or the reading stopped."""
        with self._lock:
            if self._next >= len(self.items):
                return None
            self._next += 1
            return self.items[self._next - 1]

    def stop(self) -> None:
        """No reader takes another file (one failed, or the push stops)."""
        with self._lock:
            self._next = len(self.items)


def _new_bytes(st: resources.AnyStat, cached: CachedFile | None) -> int:
    """About how many bytes of a changed file are new: a grown file's growth."""
    if cached is not None and st.st_size > cached.stat.size:
        return st.st_size - cached.stat.size
    return st.st_size


def stat_key(st: resources.AnyStat) -> StatKey:
    return StatKey(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


class Scanner:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @functools.cached_property
    def chunker(self) -> Chunker:
        """The repository's content-defined chunker (its parameters are per repository)."""
        return Chunker(self.engine.repo.config.chunker)

    def walk(self, sel: Selection, warnings: list[str], servers: str = "sync") -> TreeWalk:
        """The selection's files as they are on disk, with nothing read, and the digests of
        what was seen (clean_tree.py). When the selection syncs MCP servers, Claude Code's
        config and their synced copy are first brought in step both ways (servers "sync",
        mcp.reconcile), or only the copy made to show the config ("mirror": a command that
        only looks, which must not write the config), or left alone ("leave": a scan of
        every type, restore's or repair's)."""
        if mcp.TYPE in sel.types and servers != "leave":
            warnings += mcp.reconcile(
                self.engine.root, self.engine.work_dir, mirror_only=servers == "mirror"
            )
        skipped: list[resources.Skipped] = []
        found = list(resources.scan(self.engine.root, sel, skipped))
        m = self.engine.mapper
        types = tuple(t.name for t in sel.types)
        setting = (
            __version__,
            str(self.engine.root),
            str(Path.home()),
            types,
            sel.only,
            sel.include,
        )
        setting += (sel.exclude, m.rules, sorted(m.read_only), sorted(m.moved.items()))
        return TreeWalk.of(repr((setting, sorted(self.engine.filters))), found, skipped)

    def scan(
        self,
        sel: Selection,
        warnings: list[str],
        summaries: bool = False,
        stream: Callable[[], NewChunks] | None = None,
        walked: TreeWalk | None = None,
    ) -> LocalView:
        """Current local files; only files whose stat changed since last time are read
        (several at once: hashing and chunking run on every core). Only a file that is gone
        is missing from the view: one that could not be read this time is unknown.
        summaries: also read each changed transcript's summary (a push's scan: the file is
        read anyway, and a summary costs ~1.5 s per GiB of one core, better spent while the
        other core hashes), from where the last one stopped when the file only grew.
        stream: a push's; called once, if some file changed, for where the chunks cut go
        as they are read (sealed while in memory, they need no second read to be sent).
        walked: this selection's walk, when the caller made it (it is used up)."""
        if walked is None:
            walked = self.walk(sel, warnings)
        cache = self.engine.state.cached_files(self.engine.rows_under(sel))
        view = LocalView(tree=walked.digest)
        local = view.files
        skipped = walked.skipped
        changed: list[tuple[resources.FoundFile, str, CachedFile | None]] = []
        covers = self.engine.coverage(sel)
        to_logical = self.engine.mapper.to_logical
        pending = walked.take()
        pending += self._emptied_transcripts(skipped)
        pending.reverse()
        while pending:
            found = pending.pop()  # let go of once looked at, unless it changed: 13 MiB
            path = to_logical(found.local_path)
            if not covers(path):
                continue
            cached = cache.get(path)
            if cached is not None and cached.stat == stat_key(found.st):
                local[path] = LocalFile(
                    path, found.root, found.local_path, cached, is_transcript(path)
                )
            else:
                changed.append((found, path, cached))
        if changed:
            # The store will be needed: open it while the files are read.
            self.engine.repo.open_in_background()
            # Newest first: a push seals what it reads, in that order, so recent files share
            # packs and a pull of recent sessions only (lazy pull) downloads few of the packs
            # a first push of years of history writes.
            changed.sort(key=lambda item: -item[0].st.st_mtime_ns)
        new_chunks = stream() if stream and changed else None
        keep, keep_sealed = self._progress_sink(new_chunks, changed) if new_chunks else (None, None)
        fresh_files: list[tuple[str, CachedFile]] = []
        new_marks: list[tuple[str, SummaryMark]] = []
        worker = self._summary_worker(changed) if summaries else None
        # Small files are read on one thread: their work is mostly Python's, under the
        # interpreter lock, and with two threads taking it in turn at each read's system
        # call a first push of 50,000 small files took 12.6 s instead of 8.6 s. A bigger
        # file's hashing, compression and sealing let go of the lock: those use every core.
        # Thousands of them are read by worker processes, one thread talking to each.
        readers = self._read_workers(changed) if keep_sealed is not None else None
        cores = os.cpu_count() or 1
        with (
            _closing(readers),  # left last: once no thread still talks to them
            ThreadPoolExecutor(max_workers=cores) as pool,
            ThreadPoolExecutor(max_workers=2 * readers.count if readers else 1) as small_files,
            _closing(worker),
        ):
            reads: list[Future[list[_Read]]] = []
            # Bigger files are read one at a time, newest first, by as many readers as cores
            # taking the next in turn: a task each held a Future, its lock and condition
            # (~60 MiB for the 20,000 files over 64 KiB of the `huge` bench set), and
            # tasks of several files would seal files far apart in time together.
            bigger = _InTurn([item for item in changed if item[0].st.st_size >= SMALL_READ])
            try:
                try:
                    if bigger:
                        marks = self._marks_of(bigger.items) if summaries else None
                        args = (bigger, marks, keep, worker)
                        for _ in range(min(cores, len(bigger.items))):
                            reads.append(pool.submit(self._read_in_turn, *args))
                    for batch in _small_batches(changed):
                        marks = self._marks_of(batch) if summaries else None
                        if readers is not None:
                            args = (readers, batch, marks, keep, keep_sealed, worker)
                            task = small_files.submit(self._read_batch_elsewhere, *args)
                        else:
                            task = small_files.submit(self._read_batch, batch, marks, keep, worker)
                        reads.append(task)
                    if new_chunks is not None:
                        new_chunks.learn()  # while the readers start
                finally:
                    if new_chunks is not None:
                        new_chunks.release()  # the readers must not wait for what never comes
                done = [read for future in reads for read in future.result()]
            except BaseException:
                # Ctrl-C, or a pack that could not be sent: the files not read yet are not,
                # and those being read send nothing more (leaving the pools waits for them).
                bigger.stop()
                for future in reads:
                    future.cancel()
                if new_chunks is not None:
                    new_chunks.stop()
                if readers is not None:
                    readers.stop()  # what they still read is not wanted
                raise
            if bigger:
                # In the walk's order again, as the warnings are said.
                at = {path: i for i, (_, path, _) in enumerate(changed)}
                done.sort(key=lambda read: at[read.path])
            for read in done:
                found, path, outcome = read.found, read.path, read.outcome
                if not isinstance(outcome, CachedFile):
                    view.tree = None  # not what the walk saw: never recorded as clean
                if isinstance(outcome, FileNotFoundError):
                    continue  # deleted since it was listed: gone, so a deletion
                if isinstance(outcome, OSError):
                    skipped.append(
                        resources.Skipped(
                            found.local_path, False, f"cannot be read ({outcome.strerror})"
                        )
                    )
                elif isinstance(outcome, str):
                    view.unknown.add(path)
                    warnings.append(f"{found.local_path} {outcome}")
                else:
                    summary, mark = self._summary_of(read, outcome, worker)
                    fresh_files.append((path, outcome))
                    local[path] = LocalFile(
                        path,
                        found.root,
                        found.local_path,
                        outcome,
                        is_transcript(path),
                        summary,
                    )
                    if mark is not None:
                        new_marks.append((path, mark))
        with self.engine.state.transaction():
            self.engine.state.remember_files(fresh_files)
            self.engine.state.remember_summary_marks(new_marks)
            self.engine.state.forget_files(p for p in cache if p not in local and covers(p))
        self._note_skipped(skipped, view, warnings)
        return view

    def _emptied_transcripts(self, skipped: list[resources.Skipped]) -> list[resources.FoundFile]:
        """Transcripts synced before and empty here now, taken out of skipped to be read as
        they are. An empty file is otherwise skipped, its synced version kept (an editor
        truncates a file before it writes it), and then nothing came to it any more. Claude
        Code leaves a transcript empty when it rewrites one that held only records another
        machine added: read as a transcript without them, it gets them back, as any other
        rewrite does (see Merges.rewritten_transcripts), and then what other machines add."""
        candidates = [
            (i, skip, path)
            for i, skip in enumerate(skipped)
            if skip.reason == resources.EMPTY
            and is_transcript(path := self.engine.mapper.to_logical(skip.local_path))
        ]
        bases = self.engine.state.base_shas() if candidates else {}
        found: list[resources.FoundFile] = []
        taken: set[int] = set()
        for i, skip, path in candidates:
            if path not in bases:
                continue  # never synced: nothing to put back, nothing to send
            try:
                st = os.stat(self.engine.root / skip.local_path)
            except OSError:
                continue  # gone meanwhile: as a deletion, which a transcript's never spreads
            if stat.S_ISREG(st.st_mode):
                file_stat = resources.FileStat(
                    st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode
                )
                found.append(resources.FoundFile(skip.local_path, str(self.engine.root), file_stat))
                taken.add(i)
        skipped[:] = [skip for i, skip in enumerate(skipped) if i not in taken]
        return found

    def _progress_sink(
        self, sink: NewChunks, changed: list[tuple[resources.FoundFile, str, CachedFile | None]]
    ) -> tuple[ChunkSink, SealedSink]:
        """sink, drawing how much of the changed files' new bytes was read (a first push
        does most of its work while reading); and the same for chunks a worker sealed."""
        advance = self.engine.reporter.progress(
            "pushing", sum(_new_bytes(f.st, c) for f, _, c in changed)
        )

        def keep(blob_id: str, data: memoryview) -> None:
            sink(blob_id, data)
            advance(len(data))

        def keep_sealed(blob_id: str, sealed: bytes, length: int) -> None:
            sink.take_sealed(blob_id, sealed)
            advance(length)

        return keep, keep_sealed

    def report_skipped(self, walked: TreeWalk, result: Result) -> None:
        """What the walk left out, in result, for a command that reads no file."""
        view = LocalView()
        self._note_skipped(walked.skipped, view, result.warnings)
        result.skipped = view.skipped()

    def _note_skipped(
        self, skipped: list[resources.Skipped], view: LocalView, warnings: list[str]
    ) -> None:
        if not skipped:
            return  # the usual case: no need to read the bases
        bases = self.engine.state.base_shas()
        for skip in skipped:
            path = self.engine.mapper.to_logical(skip.local_path)
            if skip.reason == resources.EMPTY and path not in bases:
                continue  # an empty file never synced: nothing to keep, nothing to say
            (view.unknown_dirs if skip.folder else view.unknown).add(path)
            kept = "; its last synced version is kept" if skip.reason == resources.EMPTY else ""
            # A warning is one line, whatever the name holds.
            shown = terminal.clean_value(skip.local_path)
            warnings.append(f"{shown} {skip.reason}; skipped{kept}")

    def _read_batch(
        self,
        batch: list[tuple[resources.FoundFile, str, CachedFile | None]],
        marks: dict[str, SummaryMark] | None,
        keep: ChunkSink | None,
        worker: SummaryWorker | None = None,
    ) -> list[_Read]:
        done = []
        for found, path, cached in batch:
            outcome, data = self._read_checked(found, path, cached, keep)
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
            done.append(_Read(found, path, outcome, summary, mark))
        return done

    def _marks_of(
        self, batch: list[tuple[resources.FoundFile, str, CachedFile | None]]
    ) -> dict[str, SummaryMark]:
        """Where the summaries of a batch's transcripts resume (only a file read before
        has a mark: a first push asks for none)."""
        return self.engine.state.summary_marks(p for _, p, c in batch if c is not None)

    def _read_in_turn(
        self,
        files: _InTurn,
        marks: dict[str, SummaryMark] | None,
        keep: ChunkSink | None,
        worker: SummaryWorker | None,
    ) -> list[_Read]:
        """_read_batch of each file the others have not taken yet, in their order."""
        done: list[_Read] = []
        try:
            while (item := files.next()) is not None:
                done += self._read_batch([item], marks, keep, worker)
        except BaseException:
            files.stop()
            raise
        return done

    def _read_batch_elsewhere(
        self,
        readers: ReadWorkers,
        batch: list[tuple[resources.FoundFile, str, CachedFile | None]],
        marks: dict[str, SummaryMark] | None,
        keep: ChunkSink | None,
        keep_sealed: SealedSink,
        worker: SummaryWorker | None,
    ) -> list[_Read]:
        """_read_batch, with a read worker doing the reading. A file that changed since the
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
            )
            for found, path, _ in theirs
        ]
        try:
            answers = readers.read(asked)
        except (OSError, ValueError, EOFError):
            return self._read_batch(batch, marks, keep, worker)
        done: list[_Read] = []
        for (found, path, cached), answer in zip(theirs, answers, strict=True):
            if answer.error is None and StatKey(*answer.stat) != stat_key(found.st):
                here.append((found, path, cached))  # changed since the walk: read again here
            else:
                done.append(self._worker_read(found, path, answer, keep_sealed))
        return done + (self._read_batch(here, marks, keep, worker) if here else [])

    @staticmethod
    def _worker_read(
        found: resources.FoundFile, path: str, answer: WorkerRead, keep_sealed: SealedSink
    ) -> _Read:
        """What a read worker found, as _read_checked and _read_batch would have."""
        outcome: _Outcome
        if answer.error is not None:
            return _Read(found, path, OSError(*answer.error), None, None)
        if not answer.chunks and found.st.st_size:
            outcome = BEING_WRITTEN
        elif not answer.parses:
            outcome = NOT_JSON
        else:
            for (blob_id, _, length), sealed in zip(answer.chunks, answer.sealed, strict=True):
                keep_sealed(blob_id, sealed, length)
            stat_key = StatKey(*answer.stat)
            outcome = CachedFile(stat_key, portable.mode_of(found.st), answer.sha256, answer.chunks)
        summary = None if answer.summary is None else SessionSummary.from_json(answer.summary, path)
        mark = None if answer.mark is None else SummaryMark.from_json(answer.mark)
        return _Read(found, path, outcome, summary, mark)

    def _read_workers(
        self, changed: list[tuple[resources.FoundFile, str, CachedFile | None]]
    ) -> ReadWorkers | None:
        """Read workers for a push's scan that reads thousands of small files, unless bigger
        files are most of its work (their reading uses every core already: the workers would
        only take cores from it)."""
        small = sum(
            1 for f, p, _ in changed if f.st.st_size < SMALL_READ and p not in self.engine.filters
        )
        big = sum(_new_bytes(f.st, c) for f, _, c in changed if f.st.st_size >= SMALL_READ)
        if small < WORKER_FILES or big > small * WORKER_FILE_BYTES:
            return None
        # The keys as they are once the store is open (stream() opened it, learning any new
        # key epoch): what the workers seal is sealed under the newest.
        keys = self.engine.repo.keys
        setup = {
            "master": keys.master.hex(),
            "epochs": {n: key.hex() for n, key in keys.epoch_keys.items()},
            "keyed_blake3": keys.keyed_blake3,
            "chunker": dataclasses.asdict(self.engine.repo.config.chunker),
            "device": self.engine.device,
            "block": SMALL_READ,
        }
        try:
            return ReadWorkers(setup, READ_WORKERS)
        except (OSError, ValueError):
            return None  # read here, as without workers

    @staticmethod
    def _summary_worker(
        changed: list[tuple[resources.FoundFile, str, CachedFile | None]],
    ) -> SummaryWorker | None:
        """A worker for the scan's summaries when it reads many new transcript bytes."""
        new = sum(_new_bytes(f.st, c) for f, p, c in changed if is_main_transcript(p))
        if new < OFFLOAD_SUMMARIES:
            return None
        try:
            return SummaryWorker()
        except OSError:
            return None  # summarized here, as without a worker

    def _summary_of(
        self, read: _Read, outcome: CachedFile, worker: SummaryWorker | None
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

    def _read_checked(
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
        for _ in range(STABLE_READ_ATTEMPTS):
            data: bytes | None = None
            try:
                if logical in self.engine.filters:
                    data = self.logical_bytes(logical, path)
                    if logical == HISTORY_PATH:
                        # As a transcript's below: a prompt still being appended waits.
                        data = split_unfinished(data)[0]
                    sha, chunks = self.chunker.digest_bytes(
                        data, self.engine.repo.keys.blob_id, keep
                    )
                    after = os.stat(path)
                elif st.st_size < SMALL_READ or (before is None and st.st_size < WHOLE_READ):
                    # One read, no stream: a first scan meets tens of thousands of small
                    # files (each a single chunk), and opening each twice costs more than
                    # hashing it; a stream costs a buffer of two maximum chunks, allocated
                    # and zeroed for each file. (A file read before is streamed: its old
                    # chunks stand, see Chunker.digest_file.) A transcript's unfinished
                    # last record is left out as below.
                    data, after = read_whole(path, st.st_size, SMALL_READ)
                    if is_transcript(logical):
                        data = split_unfinished(data)[0]
                    sha, chunks = self.chunker.digest_bytes(
                        data, self.engine.repo.keys.blob_id, keep
                    )
                else:
                    # A transcript's last record may be half-written (its writer is busy, or
                    # died): only the whole records before it are synced. Shipped, half a
                    # record would be split by the next append on another machine.
                    size = st.st_size - _unfinished_length(path) if is_transcript(logical) else None
                    sha, chunks = self.chunker.digest_file(
                        path, self.engine.repo.keys.blob_id, before, size, keep
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

    def logical_bytes(self, logical: str, path: str | Path) -> bytes:
        with open(path, "rb") as fh:
            data = fh.read()
        return (
            self.engine.filters[logical].to_logical(data)
            if logical in self.engine.filters
            else data
        )
