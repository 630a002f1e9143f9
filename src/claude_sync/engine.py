"""The sync engine: scan the Claude directory, plan against the remote head, then apply.

The decisions themselves are the planner's pure functions; the engine gathers their inputs
(scan, merge base, remote head) and carries the plan out (transfer, merge, install).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import random
import shutil
import stat
import threading
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from claude_sync import (
    __version__,
    casefold,
    chain,
    kept_head,
    limits,
    mcp,
    memory,
    portable,
    resources,
    settings_trust,
    terminal,
)
from claude_sync.chunking import Chunker, ChunkSink
from claude_sync.clean_tree import UNCLEAN, TreeWalk, unit_of
from claude_sync.config import write_private
from claude_sync.durable import fsync_path, write_atomically
from claude_sync.errors import (
    BackendError,
    CorruptionError,
    HistoryError,
    ObjectNotFoundError,
    SyncError,
    no_space,
)
from claude_sync.meanwhile import meanwhile
from claude_sync.merge import (
    HISTORY_PATH,
    is_transcript,
    merge_file,
    merge_keys,
    restore_records,
    split_unfinished,
)
from claude_sync.pathmap import PathMapper, encode, file_filters
from claude_sync.planner import (
    Conflict,
    LocalFile,
    LocalView,
    Merge,
    Plan,
    has_local_changes,
    plan_pull,
    plan_push,
    settle_conflict,
    shape_clashes,
)
from claude_sync.planner import conflict as make_conflict
from claude_sync.planner import sha as _sha
from claude_sync.read_worker import FileToRead, ReadWorkers, WorkerRead, read_whole
from claude_sync.repository import (
    BlobLocation,
    ChangedFiles,
    FileEntry,
    PackWriter,
    Repository,
    Snapshot,
    SnapshotRoot,
    group_by_pack,
)
from claude_sync.resources import CONFLICT_MARKER, TMP_MARKER, Selection, is_temporary
from claude_sync.session_policy import SessionPolicy, is_main_transcript
from claude_sync.session_summary import SessionSummary, SummaryMark
from claude_sync.state import WHOLE_TREE, CachedFile, State, StatKey
from claude_sync.summary_worker import Summary, SummaryWorker

STRATEGIES = ("ask", "local", "remote", "both")
MAX_PUSH_ATTEMPTS = 16
PUSH_BACKOFF_CAP = 2.0
MAX_SYNC_ROUNDS = 3
HISTORY_LOOKBACK = 100
#: in the config dir: why the last look at the remote history was refused. Kept until a look
#: passes, so what a hook could only log reaches the user (next command, `doctor`).
HISTORY_ALARM = "history-alarm"
#: in the state: the selection (types, globs) of the last complete pull, or ANY_SELECTION
#: while the head holds nothing but this machine's pushes
PULLED_SELECTION = "pulled_selection"
#: in the state: the files the last pull could not download (path -> content hash)
UNAVAILABLE = "unavailable"
#: in the state: the selection this machine was set to sync, as last seen
SYNCED_SELECTION = "synced_selection"
#: in the state: how many sessions a clean status found only in the repository, and for
#: which head and walk
REMOTE_ONLY = "remote_only"
ANY_SELECTION = "*"
FSYNC_EACH_UP_TO = 16
#: the longest name of a temporary file beside a pulled one (StagedFile.tmp, or a rename's)
TMP_NAME_ROOM = 64
# Rows written to the state in one statement (a pull records thousands of files).
WRITE_BATCH = 1024
STABLE_READ_ATTEMPTS = 3
INDEX_READ_ATTEMPTS = 3
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
#: at most this many paths a push is narrowed to are named in a query of the state
ROWS_UNDER = 200
# What reading a changed file gave the scan: its content, the error, or why it waits.
_Outcome = CachedFile | OSError | str
BEING_WRITTEN = "is being written; skipped this time"
NOT_JSON = "is not valid JSON (being written?); skipped, its last synced version is kept"
#: why a transcript rewritten without records is not pushed this time
REWRITTEN_MEANWHILE = "it changed while its records were being put back; the next push tries again"
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


class PushStopped(Exception):
    """Raised in a push's readers once it stops: what they read is not wanted any more."""


class NewChunks:
    """Where a push's scan sends the chunks it cuts: those the repository does not hold go
    to the writer (one cut twice, by two files, is sealed once). What it holds is learnt on
    the scan's thread (reading other machines' indexes, into the state) while the readers
    start: they wait for it at their first chunk."""

    def __init__(self, writer: PackWriter, known: Callable[[], set[str]]) -> None:
        self._writer = writer
        self._known_now = known
        self._known: set[str] | None = None
        self._learnt = threading.Event()
        self._stopped = False

    def learn(self) -> None:
        """Find out what the repository holds, and let the readers on."""
        self._known = self._known_now()
        self._learnt.set()

    def release(self) -> None:
        """Let the readers on even if learn failed or never ran: they then seal nothing."""
        self._learnt.set()

    def stop(self) -> None:
        """The push stops (Ctrl-C, an error): a reader's next chunk ends its task."""
        self._stopped = True
        self._learnt.set()

    def __call__(self, blob_id: str, data: memoryview) -> None:
        if self._wanted(blob_id):
            with self._sending():
                self._writer.seal_read(blob_id, data)

    def take_sealed(self, blob_id: str, sealed: bytes) -> None:
        """A chunk a read worker sealed already."""
        if self._wanted(blob_id):
            with self._sending():
                self._writer.add_sealed(blob_id, sealed)

    def _wanted(self, blob_id: str) -> bool:
        self._learnt.wait()
        if self._stopped:
            raise PushStopped
        return self._known is not None and blob_id not in self._known

    @staticmethod
    @contextlib.contextmanager
    def _sending() -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            # Sending a full pack failed: that is the repository's error, not one reading
            # the file (which the scan would report and skip it for).
            raise BackendError(f"cannot write to the repository: {exc}") from exc


class StagedFile(NamedTuple):
    """A downloaded, verified file waiting in a temporary file beside its destination."""

    path: str  # logical
    #: a string, not a Path: a pull of 50,000 files keeps one per file (a Path, with the
    #: parts and string it caches, is ~400 bytes: 20 MiB)
    dest: str
    entry: FileEntry
    #: the size of the temporary file a pull that failed or was killed left (see tmp)
    left: int = 0

    @property
    def tmp(self) -> str:
        """The temporary file, beside dest: made when asked for, not kept per file (a
        pull of 50,000 files would keep 6 MiB more of them). Named after the path alone, so
        that the next pull finds what one that failed or was killed downloaded, also when
        the file grew meanwhile (staged_files); short, for a name near NAME_MAX."""
        digest = hashlib.blake2s(self.path.encode("utf-8", "surrogatepass"), digest_size=10)
        return os.path.join(os.path.dirname(self.dest), f"{TMP_MARKER}-{digest.hexdigest()}")


#: where a blob goes in a file a pull writes: the file, offset and length
_Place = tuple[StagedFile, int, int]


class ProjectSessions(NamedTuple):
    """A project directory as `where` sees it."""

    folder: str  # Claude Code's folder name for it under projects/ here
    logical: str  # that folder's logical name
    local: list[str]  # session ids found here
    remote: list[str]  # session ids in the remote head
    older: list[str]  # of those, the ones a pull leaves there (updated before the window)


@dataclass
class Result:
    """What one push, pull or sync did (or, in a dry run, would do), path by path: what the
    CLI prints and `--json` emits."""

    #: every path the push changed remotely; removed: those of them it deleted there
    pushed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: changed on both sides and merged automatically (a dry run: would be)
    merged: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: paths left as they were this time (unreadable, changed meanwhile, not writable)
    skipped: list[str] = field(default_factory=list)
    #: paths not written because their data in the repository is damaged or missing
    unavailable: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    downloaded_bytes: int = 0
    snapshot: int | None = None

    def merge(self, other: Result) -> None:
        """Fold a later operation's result into this one (a sync's pull, then push)."""
        self.pushed += other.pushed
        self.removed += other.removed
        self.pulled += other.pulled
        self.deleted += other.deleted
        self.merged += other.merged
        self.conflicts = other.conflicts  # the later operation saw the newer state
        # A sync scans more than once: each problem is still worth one line.
        self.warnings += [w for w in other.warnings if w not in self.warnings]
        self.skipped = sorted(set(self.skipped) | set(other.skipped))
        self.unavailable = sorted(set(self.unavailable) | set(other.unavailable))
        self.uploaded_bytes += other.uploaded_bytes
        self.downloaded_bytes += other.downloaded_bytes
        self.snapshot = other.snapshot if other.snapshot is not None else self.snapshot

    def to_json(self) -> dict[str, Any]:
        """The `--json` form: lists sorted, keys as documented in docs/CLI.md."""
        return {
            "pushed": sorted(self.pushed),
            "removed": sorted(self.removed),
            "pulled": sorted(self.pulled),
            "deleted": sorted(self.deleted),
            "merged": sorted(self.merged),
            "conflicts": sorted(c.path for c in self.conflicts),
            "conflict_details": [c.to_json() for c in self.conflicts],
            "warnings": self.warnings,
            "skipped": sorted(self.skipped),
            "unavailable": sorted(self.unavailable),
            "uploaded_bytes": self.uploaded_bytes,
            "downloaded_bytes": self.downloaded_bytes,
            "snapshot": self.snapshot,
        }


class Status(NamedTuple):
    """What `status` reports: what pull and push would do, the head's number (None: an
    empty repository), and how many sessions are only in the repository."""

    result: Result
    head: int | None
    remote_only: int


class Reporter:
    """What the engine tells the user as it works; the CLI decides how it looks."""

    def resolve(
        self, conflict: Conflict, local: bytes, remote: bytes, base: bytes | None
    ) -> str | bytes | None:
        """Settle one conflict interactively: "local", "remote", "both", the merged bytes,
        or None to leave it unresolved (the default: nobody to ask)."""
        return None

    def trust(self, path: str, changes: dict[str, tuple[Any, Any]], device: str) -> bool:
        """Whether to apply a change to settings keys that run code; by default (nobody to
        ask) it waits for `resolve`."""
        return False

    def action(self, verb: str, path: str) -> None:
        """One planned or applied action on one path."""

    def progress(self, description: str, total: int) -> Callable[[int], None]:
        """Start a progress display of total units; the returned function advances it."""
        return lambda advance: None


class Engine:
    """Push, pull and sync of one Claude folder with one opened repository: scans the
    files, asks the planner what to do, moves the data and records the new bases. Local
    files are only ever replaced by a verified download, never half-written."""

    def __init__(
        self,
        claude_dir: Path,
        repo: Repository,
        state: State,
        device: str,
        work_dir: Path,
        reporter: Reporter | None = None,
        mapper: PathMapper | None = None,
    ) -> None:
        self.root = claude_dir
        self.mapper = mapper or PathMapper(Path.home())
        self.allow_rollback = False
        #: this device's earlier names (`devices --rename`), named in its snapshots
        self.former_names: tuple[str, ...] = ()
        #: apply guarded settings.json keys from the remote without asking
        self.trust_settings = False
        #: a pull of every session (see want_every_session)
        self.every_session = False
        self.filters = file_filters(Path.home(), self.mapper)
        self.filters[settings_trust.PATH] = settings_trust.SettingsFilter(
            Path.home(), claude_dir / settings_trust.PATH
        )
        self._history: list[Snapshot] | None = None
        self._read_last: Snapshot | None = None
        self.repo = repo
        self.state = state
        self.device = device
        self.work_dir = work_dir
        self.reporter = reporter or Reporter()
        self._covered: dict[Selection, Callable[[str], bool]] = {}
        #: read a few blobs of a big pack by range (see fetch)
        self._by_range = False
        self.sessions = SessionPolicy()
        #: this machine's `sessions.window` setting, when sessions came from it (workspace)
        self.window_setting: str | None = None

    @functools.cached_property
    def chunker(self) -> Chunker:
        """The repository's content-defined chunker (its parameters are per repository)."""
        return Chunker(self.repo.config.chunker)

    # -- scanning ---------------------------------------------------------------------------

    def walk(self, sel: Selection, warnings: list[str], servers: str = "sync") -> TreeWalk:
        """The selection's files as they are on disk, with nothing read, and the digests of
        what was seen (clean_tree.py). When the selection syncs MCP servers, Claude Code's
        config and their synced copy are first brought in step both ways (servers "sync",
        mcp.reconcile), or only the copy made to show the config ("mirror": a command that
        only looks, which must not write the config), or left alone ("leave": a scan of
        every type, restore's or repair's)."""
        if mcp.TYPE in sel.types and servers != "leave":
            warnings += mcp.reconcile(self.root, self.work_dir, mirror_only=servers == "mirror")
        skipped: list[resources.Skipped] = []
        found = list(resources.scan(self.root, sel, skipped))
        m = self.mapper
        types = tuple(t.name for t in sel.types)
        setting = (__version__, str(self.root), str(Path.home()), types, sel.only, sel.include)
        setting += (sel.exclude, m.rules, sorted(m.read_only), sorted(m.moved.items()))
        return TreeWalk.of(repr((setting, sorted(self.filters))), found, skipped)

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
        cache = self.state.cached_files(self._rows_under(sel))
        view = LocalView(tree=walked.digest)
        local = view.files
        skipped = walked.skipped
        changed: list[tuple[resources.FoundFile, str, CachedFile | None]] = []
        covers = self._coverage(sel)
        to_logical = self.mapper.to_logical
        pending = walked.take()
        pending += self._emptied_transcripts(skipped)
        pending.reverse()
        while pending:
            found = pending.pop()  # let go of once looked at, unless it changed: 13 MiB
            path = to_logical(found.local_path)
            if not covers(path):
                continue
            cached = cache.get(path)
            if cached is not None and cached.stat == _stat_key(found.st):
                local[path] = LocalFile(
                    path, found.root, found.local_path, cached, is_transcript(path)
                )
            else:
                changed.append((found, path, cached))
        if changed:
            # The store will be needed: open it while the files are read.
            self.repo.open_in_background()
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
        with self.state.transaction():
            self.state.remember_files(fresh_files)
            self.state.remember_summary_marks(new_marks)
            self.state.forget_files(p for p in cache if p not in local and covers(p))
        self._note_skipped(skipped, view, warnings)
        return view

    def _emptied_transcripts(self, skipped: list[resources.Skipped]) -> list[resources.FoundFile]:
        """Transcripts synced before and empty here now, taken out of skipped to be read as
        they are. An empty file is otherwise skipped, its synced version kept (an editor
        truncates a file before it writes it), and then nothing came to it any more. Claude
        Code leaves a transcript empty when it rewrites one that held only records another
        machine added: read as a transcript without them, it gets them back, as any other
        rewrite does (see _rewritten_transcripts), and then what other machines add."""
        candidates = [
            (i, skip, path)
            for i, skip in enumerate(skipped)
            if skip.reason == resources.EMPTY
            and is_transcript(path := self.mapper.to_logical(skip.local_path))
        ]
        bases = self.state.base_shas() if candidates else {}
        found: list[resources.FoundFile] = []
        taken: set[int] = set()
        for i, skip, path in candidates:
            if path not in bases:
                continue  # never synced: nothing to put back, nothing to send
            try:
                st = os.stat(self.root / skip.local_path)
            except OSError:
                continue  # gone meanwhile: as a deletion, which a transcript's never spreads
            if stat.S_ISREG(st.st_mode):
                file_stat = resources.FileStat(
                    st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_mode
                )
                found.append(resources.FoundFile(skip.local_path, str(self.root), file_stat))
                taken.add(i)
        skipped[:] = [skip for i, skip in enumerate(skipped) if i not in taken]
        return found

    def _progress_sink(
        self, sink: NewChunks, changed: list[tuple[resources.FoundFile, str, CachedFile | None]]
    ) -> tuple[ChunkSink, SealedSink]:
        """sink, drawing how much of the changed files' new bytes was read (a first push
        does most of its work while reading); and the same for chunks a worker sealed."""
        advance = self.reporter.progress("pushing", sum(_new_bytes(f.st, c) for f, _, c in changed))

        def keep(blob_id: str, data: memoryview) -> None:
            sink(blob_id, data)
            advance(len(data))

        def keep_sealed(blob_id: str, sealed: bytes, length: int) -> None:
            sink.take_sealed(blob_id, sealed)
            advance(length)

        return keep, keep_sealed

    def _known_blobs(self) -> set[str]:
        """Every blob the repository holds as far as its indexes say (read for those other
        machines wrote since)."""
        self.refresh_index()
        return self.state.blob_ids()

    def _report_skipped(self, walked: TreeWalk, result: Result) -> None:
        """What the walk left out, in result, for a command that reads no file."""
        view = LocalView()
        self._note_skipped(walked.skipped, view, result.warnings)
        result.skipped = view.skipped()

    def _note_skipped(
        self, skipped: list[resources.Skipped], view: LocalView, warnings: list[str]
    ) -> None:
        if not skipped:
            return  # the usual case: no need to read the bases
        bases = self.state.base_shas()
        for skip in skipped:
            path = self.mapper.to_logical(skip.local_path)
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
                        path, found.abspath, outcome.chunks, self.device, marks.get(path)
                    )
                else:
                    summary, mark = self.sessions.summary(
                        path, found.abspath, outcome.chunks, self.device, marks.get(path), data
                    )
            done.append(_Read(found, path, outcome, summary, mark))
        return done

    def _marks_of(
        self, batch: list[tuple[resources.FoundFile, str, CachedFile | None]]
    ) -> dict[str, SummaryMark]:
        """Where the summaries of a batch's transcripts resume (only a file read before
        has a mark: a first push asks for none)."""
        return self.state.summary_marks(p for _, p, c in batch if c is not None)

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
        here = [item for item in batch if item[1] in self.filters]
        theirs = [item for item in batch if item[1] not in self.filters]
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
            if answer.error is None and StatKey(*answer.stat) != _stat_key(found.st):
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
        small = sum(1 for f, p, _ in changed if f.st.st_size < SMALL_READ and p not in self.filters)
        big = sum(_new_bytes(f.st, c) for f, _, c in changed if f.st.st_size >= SMALL_READ)
        if small < WORKER_FILES or big > small * WORKER_FILE_BYTES:
            return None
        # The keys as they are once the store is open (stream() opened it, learning any new
        # key epoch): what the workers seal is sealed under the newest.
        keys = self.repo.keys
        setup = {
            "master": keys.master.hex(),
            "epochs": {n: key.hex() for n, key in keys.epoch_keys.items()},
            "keyed_blake3": keys.keyed_blake3,
            "chunker": dataclasses.asdict(self.repo.config.chunker),
            "device": self.device,
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
        return self.sessions.summary(read.path, read.found.abspath, outcome.chunks, self.device)

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
            read = self._read(path, found.abspath, found.st, cached, True, keep)
        except OSError as exc:
            return exc, None
        if read is None:
            return "kept changing while being read; skipped", None
        fresh, data = read
        if not fresh.chunks and found.st.st_size:
            # Nothing but the first record, still being written: it goes once whole.
            return BEING_WRITTEN, None
        # The bytes just hashed, unless a filter gave their logical form: the file must parse.
        checked = data if path not in self.filters else None
        if path.endswith(".json") and not _is_json(found.abspath, checked):
            # Caught between an editor's truncate and write (or saved broken): shipped, it
            # would break every machine's copy.
            return NOT_JSON, None
        return fresh, checked

    def _read(
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
                if logical in self.filters:
                    data = self._logical_bytes(logical, path)
                    if logical == HISTORY_PATH:
                        # As a transcript's below: a prompt still being appended waits.
                        data = split_unfinished(data)[0]
                    sha, chunks = self.chunker.digest_bytes(data, self.repo.keys.blob_id, keep)
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
                    sha, chunks = self.chunker.digest_bytes(data, self.repo.keys.blob_id, keep)
                else:
                    # A transcript's last record may be half-written (its writer is busy, or
                    # died): only the whole records before it are synced. Shipped, half a
                    # record would be split by the next append on another machine.
                    size = st.st_size - _unfinished_length(path) if is_transcript(logical) else None
                    sha, chunks = self.chunker.digest_file(
                        path, self.repo.keys.blob_id, before, size, keep
                    )
                    after = os.stat(path)
            except OSError:
                if strict:
                    raise
                return None
            if (key := _stat_key(st)) == _stat_key(after):
                return CachedFile(key, portable.mode_of(st), sha, chunks), data
            st = after
        return None

    def _logical_bytes(self, logical: str, path: str | Path) -> bytes:
        with open(path, "rb") as fh:
            data = fh.read()
        return self.filters[logical].to_logical(data) if logical in self.filters else data

    def _local_bytes(self, logical: str, data: bytes) -> bytes:
        return self.filters[logical].to_local(data) if logical in self.filters else data

    def local_path(self, logical: str) -> Path:
        """Where a logical path lives on this machine: through a linked top-level resource
        to its target, so a pull replaces the file in the dotfiles folder, not the link."""
        return Path(self.local_abspath(logical))

    def local_abspath(self, logical: str) -> str:
        """local_path, as a string (a pull keeps one per file it writes)."""
        rel = self.mapper.to_local(logical)
        top, _, rest = rel.partition("/")
        target = self.links.get(top)
        if target is None:
            return os.path.join(self.root, rel)
        return os.path.join(target, rest) if rest else target

    @functools.cached_property
    def links(self) -> dict[str, str]:
        """Top-level resources of the Claude folder that are links, with their targets."""
        return resources.linked_tops(self.root)

    def where(self, directory: Path) -> ProjectSessions:
        """For a project directory: Claude Code's folder here, its logical name, and the
        sessions (ids) found there locally and those a pull places there (a session moved
        here or away by `resume --cwd` counts where it is placed)."""
        folder = encode(os.path.realpath(directory))
        logical = self.mapper.folder_to_logical(folder)
        prefix = f"projects/{folder}/"

        def sessions(paths: Iterable[str]) -> list[str]:
            names = (p[len(prefix) :] for p in paths if p.startswith(prefix))
            return sorted(
                n[: -len(".jsonl")] for n in names if "/" not in n and n.endswith(".jsonl")
            )

        local_dir = self.root / "projects" / folder
        here = (
            [f"{prefix}{p.name}" for p in local_dir.glob("*.jsonl")] if local_dir.is_dir() else []
        )
        head = self.head()
        files = head.files if head else {}
        to_local = self.mapper.to_local
        placed = {local: e for p, e in files.items() if (local := to_local(p)).startswith(prefix)}
        old = (p for p, e in placed.items() if self.sessions.is_old(e))
        return ProjectSessions(folder, logical, sessions(here), sessions(placed), sessions(old))

    # -- remote -----------------------------------------------------------------------------

    def everything(self) -> Selection:
        """Every type, for operations that look at the whole local state."""
        return Selection(resources.TYPES)

    def want_every_session(self) -> None:
        """This run pulls every session (`pull --all`): none is left out by the window, and
        those gone here, which Claude Code cleaned up, come back (their deletion never
        spreads, so the head counts as pulled in full without them)."""
        self.sessions.window = None
        self.every_session = True

    def head_root(self) -> SnapshotRoot | None:
        """The newest snapshot's authenticated root. One that does not continue the history
        this machine has seen (an older one: rollback; one whose chain misses the snapshot
        seen last: fork) is refused unless allow_rollback; the refusal is kept for `doctor`
        and the next command, since hooks only log it. Only an authenticated root is
        remembered: a junk name in the listing cannot move what this machine expects."""
        self._finish_killed_push()
        seen = int(self.state.get_meta("seen_seq") or 0)
        seen_id = self.state.get_meta("seen_id")
        root, read = self._newest_root(seen, seen_id)
        problem = None
        if root is None or root.seq < seen:
            if seen:
                problem = (
                    f"the repository's newest snapshot is {root.seq if root else 'none'}, but "
                    f"this machine has already seen snapshot {seen}: the storage is serving "
                    "old data (rollback)"
                )
        elif seen and seen_id and not chain.descends(self.repo, root, seen, seen_id):
            problem = (
                f"the repository's newest snapshot {root.seq} does not continue the history "
                f"this machine has seen (snapshot {seen} is not among its ancestors): the "
                "storage dropped or replaced snapshots (fork)"
            )
        if problem is not None:
            if not self.allow_rollback:
                message = (
                    f"{problem}; nothing was changed here. If the repository is right, "
                    "`claude-sync sync --allow-rollback` keeps this machine's changes and "
                    "merges them into it"
                )
                write_private(self.work_dir / HISTORY_ALARM, message.encode())
                raise HistoryError(message)
            if root is not None:
                self._rebase_on(root, seen, seen_id)
        if root is not None:
            self._remember(root)
        if read is not None:
            kept_head.save(self.state, read)
        (self.work_dir / HISTORY_ALARM).unlink(missing_ok=True)
        return root

    def _newest_root(
        self, seen: int, seen_id: str | None
    ) -> tuple[SnapshotRoot | None, kept_head.KeptHead | None]:
        """The newest snapshot's authenticated root; with its bytes to keep when they were
        read from the store (see kept_head)."""
        kept = kept_head.load(self.state)
        glance = None if kept is None or kept.seq != seen else self.repo.glance(seen)
        if glance is None:
            newest = self.repo.newest(seen)
        else:
            assert kept is not None
            root = kept_head.still_head(self.repo, kept, (seen, seen_id), glance)
            if root is not None:
                return root, None
            # Not the kept head: the store is checked as before (a repository emptied or
            # replaced says so, not "rollback").
            self.repo.connect()
            newest = glance[0]
        if newest is None:
            return None, None
        seq, tag = newest
        sealed = self.repo.sealed_root(seq)
        read = None if tag is None else kept_head.KeptHead(seq, tag, sealed)
        return self.repo.open_root(seq, sealed), read

    def _remember(self, root: SnapshotRoot | Snapshot) -> None:
        """Take this snapshot (and, through its chain, its parent) as seen."""
        if self.state.get_meta("seen_id") == root.id and self.state.get_meta(HISTORY_ALARM) is None:
            return
        with self.state.transaction():
            self.state.set_meta("seen_seq", str(root.seq))
            self.state.set_meta("seen_id", root.id)
            self.state.add_known_snapshot(root.seq, root.id)
            if root.parent is not None and root.parent_id is not None:
                self.state.add_known_snapshot(root.parent, root.parent_id)

    def _rebase_on(self, root: SnapshotRoot, seen: int, seen_id: str | None) -> None:
        """Accept a head that does not continue what this machine saw (asked for with
        allow_rollback). What this machine took from snapshots outside the head's history
        must not look synced, or a pull would replace it: its merge base becomes the newest
        common snapshot's version, or none, so it is pushed or merged as a local change."""
        known = self.state.known_snapshots()
        if seen_id:
            known.add((seen, seen_id))
        common = chain.fork_point(self.repo, root, known)
        ancestor: Snapshot | None = None
        if common:
            with contextlib.suppress(ObjectNotFoundError):
                ancestor = self.repo.load_snapshot(common)
        with self.state.transaction():
            stale = self.state.forget_bases_after(common)
            if ancestor is not None:
                for path in stale:
                    if path in ancestor.files:
                        self.state.set_base(path, ancestor.files[path], common)
            self.state.set_meta("pulled_seq", None)

    def head(self) -> Snapshot | None:
        """The newest snapshot, as `head_root` accepts it; None in an empty repository."""
        root = self.head_root()
        return None if root is None else self._snapshot(root)

    def _snapshot(self, root: SnapshotRoot) -> Snapshot:
        """The snapshot of an authenticated root, its file list decoded a group at a time as
        it is asked for (a push that changed one project reads that project's entries). The
        last one read is kept: `status` and a push's rounds ask for the same head again, and
        its file list can hold tens of thousands of entries (a root's id is the hash of its
        sealed bytes)."""
        if self._read_last is None or self._read_last.id != root.id:
            self._read_last = self.repo.snapshot(root, lazy=True)
        return self._read_last

    def refresh_index(self) -> None:
        """Load index objects we have not seen yet into the local blob cache; when one we
        knew is gone (pruned), rebuild the cache so no blob points at a deleted pack."""
        for _ in range(INDEX_READ_ATTEMPTS):
            known = self.state.known_indexes()
            names = self.repo.index_names()
            if known - set(names):
                with self.state.transaction():
                    self.state.forget_indexes()
                known = set()
            try:
                for name in names:
                    if name not in known:
                        locations = self.repo.load_index(name)
                        with self.state.transaction():
                            self.state.add_index(name, locations)
                return
            except ObjectNotFoundError:
                continue  # a prune replaced the indexes meanwhile: list them again
        raise SyncError("the repository's indexes kept changing while being read; try again")

    # -- planning ---------------------------------------------------------------------------

    def _rows_under(self, sel: Selection) -> tuple[str, ...] | None:
        """The logical paths sel is narrowed to (`only`), for reading just their rows of the
        state; None for all rows (too many to name in a query are not worth naming)."""
        if not sel.only or len(sel.only) > ROWS_UNDER:
            return None
        return tuple(self.mapper.to_logical(o) for o in sel.only)

    def _covers(self, sel: Selection, path: str) -> bool:
        return self._coverage(sel)(path)

    def _coverage(self, sel: Selection) -> Callable[[str], bool]:
        """Whether sel covers a path, remembered per path: a push asks for every path of the
        tree more than once (scan, plan), and a selection is too costly to hash for each."""
        covers = self._covered.get(sel)
        if covers is None:
            only = tuple(self.mapper.to_logical(o) for o in sel.only)
            known: dict[str, bool] = {}

            def remembered(path: str) -> bool:
                found = known.get(path)
                if found is None:
                    found = sel.covers(path, only) and self.mapper.unmapped_label(path) is None
                    known[path] = found
                return found

            covers = self._covered[sel] = remembered
        return covers

    def take_selection(self, sel: Selection) -> None:
        """The selection this machine is set to sync (types and globs). A file it takes in
        that the one before left out, and that is gone here, loses its merge base: removed
        while it was left out (its type off: "not on this machine"), it is not a deletion
        to push, and what the repository holds of it comes back. One still here keeps its
        base: an edit here is pushed, a deletion elsewhere arrives."""
        key = _selection_key(sel)
        before = self.state.get_meta(SYNCED_SELECTION)
        if before == key:
            return
        with self.state.transaction():
            if before is not None:
                old = _selection_of_key(before)
                gone = [
                    p
                    for p in self.state.base_shas()
                    if sel.covers(p)
                    and not old.covers(p)
                    and not os.path.lexists(self.local_path(p))
                ]
                self.state.set_bases([(p, None) for p in gone], None)
            self.state.set_meta(SYNCED_SELECTION, key)

    def _pulled_in_full(self, sel: Selection, seq: int) -> bool:
        """Whether the last complete pull left this machine with all of head seq that sel
        and the session window take in: files a pull with another selection left out (a
        type enabled since, a glob cleared) are not pulled."""
        return (
            self.state.get_meta("pulled_seq") == str(seq)
            and self.state.get_meta(PULLED_SELECTION) in (ANY_SELECTION, _selection_key(sel))
            and self.sessions.covered_by(self.state.get_meta("session_window"))
            and not self._labels_mapped_since_pull()
            and not self.state.conflicts()
        )

    def _labels_mapped_since_pull(self) -> bool:
        """Whether a label the last complete pull left in the repository is mapped now: the
        head is then not fully pulled any more."""
        left = (self.state.get_meta("unmapped_labels") or "").split(",")
        return any(label and self.mapper.has_label(label) for label in left)

    def _unmapped_labels(self, head: Snapshot | None) -> list[str]:
        """Labels of projects in the head that no folder here is mapped to: they stay in the
        repository (written here, they would land in a folder Claude Code never reads)."""
        labels = {self.mapper.unmapped_label(p) for p in head.files} if head else set()
        return sorted(label for label in labels if label)

    def plan_push(self, sel: Selection, local: LocalView, head: Snapshot | None) -> Plan:
        """The planner's push decisions for the selection, against this machine's bases."""
        return plan_push(local, self.state.bases(self._rows_under(sel)), head, self._coverage(sel))

    def plan_pull(
        self, sel: Selection, local: LocalView, head: Snapshot | None, strategy: str
    ) -> Plan:
        """The planner's pull decisions, with the session window and the projects that have
        no folder here applied (both left in the repository)."""
        plan = plan_pull(
            local,
            self.state.bases(),
            head,
            self._coverage(sel),
            strategy,
            functools.partial(self._was_synced, head=head),
            restore_gone=self.every_session,
        )
        self.sessions.defer(plan, local.files)
        plan.unmapped = self._unmapped_labels(head)
        return plan

    def _was_synced(self, path: str, sha256: str, head: Snapshot | None) -> bool:
        """Whether this content of path is in an earlier snapshot: with no merge base (a lost
        state database), a local file equal to an old version has simply not been updated."""
        if head is None:
            return False
        if self._history is None:
            seqs = [s for s in self.repo.snapshot_seqs() if s < head.seq][-HISTORY_LOOKBACK:]
            self._history = [self.repo.load_snapshot(s) for s in reversed(seqs)]
        return any(_sha(snap.files.get(path)) == sha256 for snap in self._history)

    def _name_authors(self, conflicts: list[Conflict], head: Snapshot | None) -> None:
        """Each new conflict names the snapshot (device, time) that last changed its path:
        the head's ancestors are followed while they hold the same version, as far as the
        history goes. The newest snapshot's device may never have touched the file."""
        loaded: dict[int, Snapshot | None] = {}

        def load(seq: int) -> Snapshot | None:
            if seq not in loaded:
                try:
                    loaded[seq] = self.repo.load_snapshot(seq)
                except (ObjectNotFoundError, CorruptionError):
                    loaded[seq] = None
            return loaded[seq]

        for c in conflicts:
            if head is None or c.remote_seq != head.seq:
                continue  # one kept from an earlier pull: already named
            author = head
            for _ in range(HISTORY_LOOKBACK):
                parent = None if author.parent is None else load(author.parent)
                if parent is None or _sha(parent.files.get(c.path)) != c.remote_sha256:
                    break
                author = parent
            c.remote_device, c.remote_seq, c.remote_time = author.device, author.seq, author.time

    def _keep_held(self, sel: Selection, plan: Plan, local: LocalView) -> None:
        """A guarded settings change already waiting stays waiting while neither side moved;
        `--strategy local` settles it for this machine's keys (the next push sends them)."""
        path = settings_trust.PATH
        waiting = self.state.conflicts().get(path)
        if not waiting or not waiting.get("held") or self.trust_settings or plan.head is None:
            return
        if not self._covers(sel, path):
            return
        remote = plan.head.files.get(path)
        if plan.strategy == "local":
            plan.adopt[path] = remote
        elif waiting.get("remote_sha256") == _sha(remote) and waiting.get("local_sha256") == _sha(
            local.files.get(path)
        ):
            plan.conflicts.append(Conflict(**waiting))  # type: ignore[arg-type]
        else:
            return
        plan.merges.pop(path, None)
        plan.write.pop(path, None)
        plan.copies.pop(path, None)

    def _hold_back_settings(self, plan: Plan, local: LocalView, result: Result) -> None:
        """settings.json keys that run or authorise code arrive only with the user's consent
        (or the `settings-commands` opt-in). Held back, the file's other keys still arrive;
        the guarded change waits as a conflict that `resolve --take remote` applies."""
        path = settings_trust.PATH
        if self.trust_settings or plan.head is None:
            return
        remote = plan.head.files.get(path)
        if path in plan.merged:
            incoming = plan.merged[path][0]
        elif path in plan.write:
            lost: dict[str, str] = {}
            staging = self._fetch_blobs([plan.write[path]], result, lost=lost)
            try:
                fetched = _content(staging, plan.write[path])
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            if fetched is None:
                self._unavailable(plan, result, path, _why_lost(lost, plan.write.pop(path)))
                return
            incoming = fetched
        elif path in plan.delete:
            incoming = b"{}"
        else:
            return
        local_file = local.files.get(path)
        try:
            local_bytes = self._logical_bytes(path, local_file.abspath) if local_file else b"{}"
        except OSError:
            return  # gone meanwhile: the install step notices and keeps it
        changes = settings_trust.changed_keys(local_bytes, incoming)
        device = plan.head.device
        if not changes:
            return
        # Shown as they would be written here (home paths this machine's, not the token).
        here = settings_trust.changed_keys(
            self._local_bytes(path, local_bytes), self._local_bytes(path, incoming)
        )
        if self.reporter.trust(path, {k: here.get(k, v) for k, v in changes.items()}, device):
            return
        plan.merged.pop(path, None)
        plan.write.pop(path, None)
        if path in plan.delete:
            plan.delete.remove(path)
        held = settings_trust.blend(incoming, local_bytes)
        local_sha = _sha(local_file)
        if held is not None and held != local_bytes:
            plan.held[path] = held
            local_sha = hashlib.sha256(held).hexdigest()
        conflict = make_conflict(path, local_file, self.state.bases().get(path), remote, plan.head)
        conflict.local_sha256 = local_sha
        conflict.held = sorted(changes)
        conflict.keys = plan.unsettled.pop(path, None)
        plan.conflicts.append(conflict)

    def _keep_unsettled(self, plan: Plan) -> None:
        """A JSON file merged but for keys changed differently on both sides: the merge is
        written here, the base stays, and those keys wait as a conflict for `resolve`."""
        for path, keys in plan.unsettled.items():
            local_file, base, remote = plan.merges[path]
            data, _ = plan.merged.pop(path)
            conflict = make_conflict(path, local_file, base, remote, plan.head)
            if hashlib.sha256(data).hexdigest() != local_file.sha256:
                plan.held[path] = data
                conflict.local_sha256 = hashlib.sha256(data).hexdigest()
            conflict.keys = keys
            plan.conflicts.append(conflict)

    def _merge(self, plan: Plan, result: Result) -> None:
        """Try the automatic merges; what does not merge cleanly becomes a conflict."""
        if not plan.merges:
            return
        entries = [e for _, base, remote in plan.merges.values() for e in (base, remote) if e]
        lost: dict[str, str] = {}
        staging = self._fetch_blobs(
            entries, result, allow_missing=True, lost=lost, merges=plan.merges
        )
        try:
            self._merge_staged(plan, staging, result, lost)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _merge_staged(
        self, plan: Plan, staging: Path, result: Result, lost: dict[str, str]
    ) -> None:
        """Merge each file with the staged remote (and base) versions. A file whose remote
        version could not be had is left as it is here, unpulled: merged with nothing, its
        remote records would be taken for deleted. A missing base only makes the merge
        more cautious."""
        for path, (local_file, base, remote) in plan.merges.items():
            try:
                local_bytes = self._logical_bytes(path, local_file.abspath)
            except OSError:
                plan.skipped.append(path)
                continue
            if not _as_scanned(path, local_file, local_bytes):
                result.warnings.append(
                    f"{path} changed during the pull; it goes with the next sync"
                )
                plan.skipped.append(path)
                continue
            remote_bytes = _content(staging, remote)
            if remote_bytes is None:
                self._unavailable(plan, result, path, _why_lost(lost, remote))
                continue
            base_bytes = _content(staging, base)
            merged = merge_file(path, base_bytes, local_bytes, remote_bytes)
            if merged is None and plan.strategy == "ask":
                conflict = make_conflict(path, local_file, base, remote, plan.head)
                merged = self._ask(plan, conflict, local_bytes, remote_bytes, base_bytes)
            if merged is None and plan.strategy != "both":
                # A JSON file: only the keys changed on both sides conflict (a strategy
                # settles just those); the rest merges.
                by_key = merge_keys(path, base_bytes, local_bytes, remote_bytes, plan.strategy)
                if by_key is not None:
                    merged, keys = by_key
                    if plan.strategy == "ask":
                        plan.merged[path] = (merged, remote)
                        plan.unsettled[path] = keys
                        continue
            if merged is None:
                settle_conflict(plan, path, local_file, base, remote)
            elif merged == local_bytes:
                plan.adopt[path] = remote
            elif hashlib.sha256(merged).hexdigest() == remote.sha256:
                plan.write[path] = remote
            else:
                plan.merged[path] = (merged, remote)

    # -- push -------------------------------------------------------------------------------

    def push(self, sel: Selection, dry_run: bool = False) -> Result:
        """Send what changed here as the next snapshot. Changes made on both sides are not
        pushed over: they merge first when they merge cleanly, else stay conflicts for a
        pull; a lost race with another machine plans again."""
        result = Result()
        sent_before = self.repo.uploaded_bytes  # the scan sends packs already
        writers: list[PackWriter] = []  # made when the scan meets a changed file

        def stream() -> NewChunks:
            writers.append(PackWriter(self.repo))
            return NewChunks(writers[0], self._known_blobs)

        try:
            walked = self.walk(sel, result.warnings, "mirror" if dry_run else "sync")
            if not sel.only:
                self._refuse_a_vanished_folder(sel, walked)
            # Units as the last push with nothing to send left them need no look (see
            # clean_tree.py).
            recording = not (dry_run or sel.only)
            clean = self.state.clean_units() if recording else {}
            whole = clean.pop(WHOLE_TREE, None)
            if self.mapper.moved:
                clean = {}  # a moved session's files are in another project's unit
            changed = self.units_to_look_at(walked, clean, whole)
            if changed is not None and not changed:
                self._report_skipped(walked, result)
                self.repo.check_place()
                self._record_success("push")
                return result
            if changed is not None:
                sel = replace(sel, only=tuple(sorted(changed)))
                walked = walked.narrowed(changed)
            else:
                clean, changed = {}, set(walked.units)  # a full look: no record relied on
            local = self.scan(
                sel, result.warnings, not dry_run, None if dry_run else stream, walked
            )
            result.skipped = local.skipped()
            if not dry_run and not self._has_local_changes(sel, local):
                # What the scan sealed is left out: nothing is sent, no snapshot written.
                if recording:
                    self._record_clean(sel, local, walked, clean, changed, settled=True)
                self.repo.check_place()
                self._record_success("push")
                return result
            if not writers:
                writers.append(PackWriter(self.repo))
            memory.give_back()  # what the scan's readers freed, before the commit's peak
            result = self._push_rounds(sel, local, writers[0], result, dry_run)
            if not dry_run:
                result.uploaded_bytes = self.repo.uploaded_bytes - sent_before
                if recording:
                    self._record_clean(sel, local, walked, clean, changed)
        finally:
            for writer in writers:
                writer.close()
        if not dry_run:
            self._record_success("push")
        return result

    def units_to_look_at(
        self, walked: TreeWalk, clean: dict[str, str], whole: str | None
    ) -> set[str] | None:
        """The units a push must look at, given those recorded clean (whole: the whole
        tree's record): none when nothing changed, None for every file."""
        if walked.digest == whole:
            return set()
        changed = walked.changed_units(clean)
        if not clean or len(changed) == len(walked.units.keys() | clean.keys()):
            return None  # no unit is as recorded: the setting may have changed
        # Some unit is as recorded, so the setting is too (every digest holds it).
        return self._with_aliases(changed, walked.units.keys() | clean.keys()) if changed else set()

    def _record_clean(
        self,
        sel: Selection,
        local: LocalView,
        walked: TreeWalk,
        clean: dict[str, str],
        changed: set[str],
        settled: bool = False,
    ) -> None:
        """After a push (clean_tree.py). clean: the units recorded clean that it relied on
        (none: it looked at everything); changed: the units it looked at. The whole tree is
        clean when the files it looked at were read as the walk found them and have nothing
        left to push (settled: known already), and it wrote no row outside them. Else the
        units it relied on and wrote no row of stay clean, and those it looked at or wrote
        keep a place as not clean: one that is gone later is then still looked at."""
        units = walked.units.keys() | clean.keys()
        touched = self._with_aliases(
            {unit_of(self.mapper.to_local(p)) for p in self.state.touched}, units
        )
        if (
            local.tree is not None
            and (not clean or touched <= changed)
            and (settled or not self._has_local_changes(sel, local))
        ):
            self.state.set_clean_units({WHOLE_TREE: walked.digest, **walked.units})
        elif clean:
            kept = {u: d for u, d in clean.items() if u not in changed | touched}
            self.state.set_clean_units({**dict.fromkeys(changed | touched, UNCLEAN), **kept})
        else:
            self.state.set_clean_units({})

    def _with_aliases(self, chosen: set[str], units: Iterable[str]) -> set[str]:
        """chosen, with the other units whose files have the same logical paths (a read-only
        alias of the home's folder, such as `C--Users-ann` beside `c--Users-ann`): a push
        narrowed to one covers the other's logical paths too."""
        logical = {u: self.mapper.to_logical(u) for u in {*units, *chosen}}
        wanted = {logical[u] for u in chosen}
        return chosen | {u for u, name in logical.items() if name in wanted}

    def _record_success(self, direction: str) -> None:
        """`doctor` reports when each direction last completed (local time, seconds)."""
        self.state.set_meta(f"last_{direction}", str(time.time()))

    def _push_rounds(
        self,
        sel: Selection,
        local: LocalView,
        writer: PackWriter,
        result: Result,
        dry_run: bool,
    ) -> Result:
        written_indexes: dict[str, dict[str, BlobLocation]] = {}  # indexes this push wrote
        pruned = False
        for attempt in range(MAX_PUSH_ATTEMPTS):
            if attempt:
                # Another machine won the race for this snapshot number. Waiting a random,
                # growing while spreads out machines that keep colliding.
                time.sleep(random.uniform(0, min(PUSH_BACKOFF_CAP, 0.05 * 2**attempt)))
            plan = self.plan_push(sel, local, self.head())
            if not dry_run:
                wrote, checked, unmerged = self._merge_before_push(plan, local, result)
                if wrote:
                    local = self.scan(sel, result.warnings, summaries=True)
                    plan = self.plan_push(sel, local, plan.head)
                    # Planned again from a new scan: a transcript rewritten without records
                    # since the first one (or again since they were put back) waits for the
                    # next push, which puts them back; only one checked here goes.
                    for path in self._rewritten_transcripts(plan):
                        if local.files[path].sha256 != checked.get(path):
                            unmerged[path] = REWRITTEN_MEANWHILE
                for path, other in shape_clashes(plan).items():
                    del plan.upload[path]
                    result.skipped.append(path)
                    result.warnings.append(
                        f"{path} is a file here and {other} a file in the repository: one "
                        "cannot be written where the other is; not pushed (rename one of them)"
                    )
                for path in unmerged.keys() & plan.upload.keys():
                    # Pushed as it is, it would take its lost records off every machine.
                    del plan.upload[path]
                    result.skipped.append(path)
                    result.warnings.append(
                        f"{path} lost records here that could not be put back "
                        f"({unmerged[path]}); not pushed"
                    )
            self._name_authors(plan.conflicts, plan.head)
            result.conflicts = self._as_recorded(plan.conflicts)
            if not dry_run:
                self._record_new_conflicts(result.conflicts)
            if dry_run:
                self._report_dry_push(plan, result)
                return result
            entries: dict[str, FileEntry] = {}
            if plan.upload:
                self.refresh_index()
                with ThreadPoolExecutor(max_workers=1) as aside:
                    # Transcripts' summaries are read while the chunks are compressed and
                    # sealed, which free the interpreter: on a first push they cost ~3 s per
                    # GiB of one core.
                    summarized = aside.submit(self._entries, list(plan.upload.values()))
                    self._upload(plan, writer, result.warnings)
                    entries = summarized.result()
            written = writer.finish()
            written_indexes.update(written)
            with self.state.transaction():
                for name, locations in written.items():
                    self.state.add_index(name, locations)
            pruned = not self._data_still_there(plan, writer, written_indexes, written)
            if pruned:
                continue  # a prune got to some of it meanwhile: upload that again
            if self._commit_push(plan, result, entries):
                return result
        if pruned:
            raise SyncError(
                "data this push relies on kept being marked for deletion or going missing "
                "from the repository (a prune on another machine with a --grace shorter than "
                "this push takes?); try again"
            )
        raise SyncError("another machine kept pushing at the same time; try again")

    def _report_dry_push(self, plan: Plan, result: Result) -> None:
        """What the push planned would send. A transcript left empty where the repository
        has records gets them back from there first (see _rewritten_transcripts), and
        nothing of it is sent: it will merge. (One rewritten otherwise may hold records of
        its own, or only edited ones: what the push sends is known once both are read.)"""
        rewritten = self._rewritten_transcripts(plan).items()
        emptied = {p: m.remote for p, m in rewritten if not m.local.entry().size}
        upload = sorted(p for p in plan.upload if p not in emptied)
        result.merged = sorted({*result.merged, *emptied})
        result.pushed = upload + sorted(plan.remove)
        result.removed = sorted(plan.remove)
        # At most this much: compression and data already stored make it less.
        result.uploaded_bytes = sum(plan.upload[p].entry().size for p in upload)
        result.downloaded_bytes += sum(stored.size for stored in emptied.values())

    def _as_recorded(self, conflicts: list[Conflict]) -> list[Conflict]:
        """The pull's record of a conflict over the same remote version says more (the
        keys that conflict, settings held back, the copy beside): a push reports that."""
        recorded = self.state.conflicts()
        return [
            # (A remote deletion has no hash: compared with a missing record's, it matched.)
            Conflict(**recorded[c.path])  # type: ignore[arg-type]
            if c.path in recorded and recorded[c.path].get("remote_sha256") == c.remote_sha256
            else c
            for c in conflicts
        ]

    def _record_new_conflicts(self, conflicts: list[Conflict]) -> None:
        """A push's conflicts that no pull recorded yet, for `conflicts` and `resolve`. Only
        added: a pull, which looks at the remote side too, decides when one is settled."""
        if not conflicts:
            return
        recorded = self.state.conflicts()
        new = [c for c in conflicts if c.path not in recorded]
        if new:
            with self.state.transaction():
                for c in new:
                    self.state.set_conflict(c.path, c.to_json())

    def _merge_before_push(
        self, plan: Plan, local: LocalView, result: Result
    ) -> tuple[bool, dict[str, str], dict[str, str]]:
        """Files another machine changed too that merge automatically (a transcript's
        records, history lines, text changed in different places) are merged here first, as
        sync would, so the push sends the merge instead of calling it a conflict. What does
        not merge stays a conflict for `sync`; settings.json waits for a pull, which asks
        before applying keys that run code. Returns whether a merge was written; the
        transcripts merged or found to lack no record, each with the content hash a scan
        sees while it stays so; and the rewritten transcripts (see _rewritten_transcripts)
        that could not be merged, with why."""
        head = plan.head
        if head is None:
            return False, {}, {}
        unreadable = (
            "the repository's version cannot be read now: if it is damaged, `claude-sync "
            "repair` on a machine that has it"
        )
        why: dict[str, str] = {}
        read: set[str] = set()  # the files here that could be read for their merge
        rewritten = self._rewritten_transcripts(plan)
        todo = dict(rewritten)
        if plan.conflicts:
            bases = self.state.bases()
            todo |= {
                c.path: Merge(local.files[c.path], bases.get(c.path), head.files[c.path])
                for c in plan.conflicts
                if c.path in local.files and c.path in head.files and c.path != settings_trust.PATH
            }
        if not todo:
            return False, {}, {}
        wrote = False
        checked: dict[str, str] = {}
        # What cannot be had (a damaged pack) is not merged: it stays a conflict for sync.
        with self._merge_inputs(todo, result, {}) as inputs:
            for path, (local_file, _, remote), local_bytes, base_bytes, remote_bytes in inputs:
                read.add(path)
                if remote_bytes is None:
                    why[path] = unreadable
                    continue
                if not _as_scanned(path, local_file, local_bytes):
                    continue
                if path in rewritten:
                    merged = restore_records(local_bytes, remote_bytes)
                    if merged == local_bytes:
                        del rewritten[path]  # edited here, no record lost: pushed as it is
                        checked[path] = _synced_sha(local_bytes)
                        continue
                else:
                    merged = merge_file(path, base_bytes, local_bytes, remote_bytes)
                if merged is None:
                    continue
                if merged == local_bytes or self._write_merged(
                    path, merged, local_file, result, remote
                ):
                    with self.state.transaction():
                        self.state.set_base(path, remote, head.seq)
                    wrote = True
                    if is_transcript(path):
                        checked[path] = _synced_sha(merged)
                    if rewritten.pop(path, None) is not None:
                        result.pulled.remove(path)  # nothing new came: records came back
                        result.warnings.append(
                            f"{path} was missing records the repository holds: put back (a "
                            "transcript loses no record through a push; edit one to change it)"
                        )
        unread = "it cannot be read here now"
        return (
            wrote,
            checked,
            {
                path: why.get(path) or (REWRITTEN_MEANWHILE if path in read else unread)
                for path in rewritten
            },
        )

    def _refuse_a_vanished_folder(self, sel: Selection, walked: TreeWalk | None) -> None:
        """A Claude folder that is gone or empty, where this machine synced files whose
        deletion spreads, is a folder not there (a drive not mounted on it, another HOME),
        not everything deleted on purpose (Claude Code keeps files of its own there):
        pushed, it would delete them on every machine; pulled, it would be filled with only
        what changed elsewhere, the rest then pushed as deleted. walked: the walk of it, if
        one was made."""
        if walked is not None and (walked.found or walked.skipped):
            return
        with contextlib.suppress(OSError), os.scandir(self.root) as entries:
            if next(entries, None) is not None:
                return  # the last synced files deleted, the folder still there
        synced = [
            p
            for p in self.state.base_shas()
            if self._covers(sel, p) and (t := resources.type_of(p)) and t.propagate_deletes
        ]
        if synced:
            files = f"{len(synced)} file{'s' * (len(synced) != 1)}"
            raise SyncError(
                f"the Claude folder {self.root} is missing or empty, though "
                f"this machine synced {files} there: nothing was changed (not mounted, or "
                "another HOME?). To fill it again from the repository: `claude-sync restore "
                "--snapshot N` (`claude-sync log` lists them)"
            )

    def _rewritten_transcripts(self, plan: Plan) -> dict[str, Merge]:
        """Transcripts to upload whose version here does not begin with the one in the
        repository (which is their base): records were dropped here (Claude Code rewrote
        the file from what it held, without records that arrived meanwhile), and a plain
        push would drop them everywhere. They are merged with the repository's version
        first, as a transcript changed on both sides is: no record is lost."""
        head = plan.head
        rewritten = {}
        for path, mine in plan.upload.items():
            stored = head.files.get(path) if head is not None else None
            if mine.append_only and stored is not None and not self._extends(mine, stored):
                rewritten[path] = Merge(mine, stored, stored)
        return rewritten

    def _extends(self, mine: LocalFile, stored: FileEntry) -> bool:
        """Whether the file here begins with stored's bytes: their chunks but the last
        are its first chunks (an append keeps them), and the bytes where stored's last
        chunk lies have that chunk's id. Reads at most one chunk."""
        if mine.path in self.filters or mine.entry().size < stored.size:
            return False
        if not stored.chunks:
            return True
        located = stored.located_chunks()
        if tuple(mine.cached.chunks[: len(located)]) == located:
            return True  # the scan kept every chunk (an append after a long last chunk)
        *before, (last_id, offset, length) = located
        if tuple(mine.cached.chunks[: len(before)]) != tuple(before):
            return False
        try:
            with open(mine.abspath, "rb") as fh:
                fh.seek(offset)
                data = fh.read(length)
        except OSError:
            return True  # unreadable now: the upload reports it
        return len(data) == length and self.repo.keys.blob_id(data) == last_id

    @contextlib.contextmanager
    def _merge_inputs(
        self, merges: dict[str, Merge], result: Result, lost: dict[str, str]
    ) -> Iterator[Iterator[tuple[str, Merge, bytes, bytes | None, bytes | None]]]:
        """The versions each merge needs, staged: (path, merge, local bytes, base bytes,
        remote bytes), base or remote None when not to be had (see lost). A file that
        cannot be read here now is left out."""
        entries = [e for _, base, remote in merges.values() for e in (base, remote) if e]
        staging = self._fetch_blobs(entries, result, allow_missing=True, lost=lost, merges=merges)

        def inputs() -> Iterator[tuple[str, Merge, bytes, bytes | None, bytes | None]]:
            for path, merge in merges.items():
                try:
                    local_bytes = self._logical_bytes(path, merge.local.abspath)
                except OSError:
                    continue
                base, remote = _content(staging, merge.base), _content(staging, merge.remote)
                yield path, merge, local_bytes, base, remote

        try:
            yield inputs()
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _data_still_there(
        self,
        plan: Plan,
        writer: PackWriter,
        written_indexes: dict[str, dict[str, BlobLocation]],
        written: dict[str, dict[str, BlobLocation]],
    ) -> bool:
        """Just before the snapshot is written: every pack it leans on for blobs the head
        does not already use still exists and is not marked by prune. A push can take
        longer than prune's grace period (a laptop asleep mid-push, a wrong clock); then
        the blobs it found or wrote there are forgotten and uploaded again, and the indexes
        this push wrote stop naming packs that are gone (a reader could pick them); written:
        the indexes this round wrote, part of written_indexes. A pack
        only marked stays named: another machine may lean on it already (this push's
        indexes are written as it goes), and prune's sweep reads the indexes to spare it."""
        # What the head lists for the same paths (an appended transcript's old chunks)
        # cannot be pruned from under it; a blob shared with another of its files is
        # checked anyway rather than the whole list decoded to find it.
        head = plan.head.files if plan.head else {}
        in_head = {b for p in plan.upload if (e := head.get(p)) for b, _ in e.chunks}
        relied = {b for f in plan.upload.values() for b, _, _ in f.cached.chunks} - in_head
        # Where the blobs this round wrote went, its indexes say: only the others are looked
        # up (a first push of 50,000 files asked the cache for each). Not earlier rounds':
        # their packs may be the ones a prune took.
        packs: set[str] = set()
        for locations in written.values():
            packs.update(loc.pack for b, loc in locations.items() if b in relied)
            relied.difference_update(locations)
        packs.update(self.state.blob_packs(relied).values())
        if not packs:
            return True
        # The prune marks are read while the packs are looked up: a request's wait less,
        # at the cost of looking up a marked pack too (it is gone either way).
        marks = meanwhile(self.repo.marked_packs, self.repo.parallel > 1)
        missing = self.repo.missing_objects(packs)
        gone = (packs & marks()) | missing
        if not gone:
            return True
        for name, locations in list(written_indexes.items()):
            if any(loc.pack in missing for loc in locations.values()):
                kept = {b: loc for b, loc in locations.items() if loc.pack not in missing}
                del written_indexes[name]
                if kept:
                    replacement = self.repo.write_index(
                        {
                            pack: [(b, loc.offset, loc.length) for b, loc in blobs.items()]
                            for pack, blobs in group_by_pack(kept.items()).items()
                        }
                    )
                    written_indexes[replacement] = kept
                self.repo.delete_objects([name])
        with self.state.transaction():
            lost = self.state.forget_packs(gone)
        writer.pending -= lost
        return False

    def _has_local_changes(self, sel: Selection, local: LocalView) -> bool:
        return has_local_changes(
            local, self.state.base_shas(self._rows_under(sel)), self._coverage(sel)
        )

    def _upload(self, plan: Plan, writer: PackWriter, warnings: list[str]) -> None:
        # What the scan sealed is on its way: only the rest may need reading.
        rest = {
            b
            for f in plan.upload.values()
            for b, _, _ in f.cached.chunks
            if b not in writer.pending
        }
        if not rest:
            return
        # Packs marked by prune may vanish: never lean on a blob stored only there.
        doomed = self.repo.marked_packs()
        packs = self.state.blob_packs(rest)

        def is_new(blob_id: str) -> bool:
            if blob_id in writer.pending:
                return False
            pack = packs.get(blob_id)
            return pack is None or pack in doomed

        todo = [f for f in plan.upload.values() if any(is_new(b) for b, _, _ in f.cached.chunks)]
        todo.sort(key=lambda f: -f.cached.stat.mtime_ns)  # newest first, as the scan
        # What is sent, not the files' sizes: an append to a big transcript sends its end.
        new = {b: length for f in todo for b, _, length in f.cached.chunks if is_new(b)}
        advance = self.reporter.progress("uploading", sum(new.values()))
        changed = []
        for f in todo:
            sending = sum(new.pop(b, 0) for b, _, _ in f.cached.chunks)
            if not self._upload_file(f, writer, is_new):
                changed.append(f.path)
            advance(sending)
        # A blob whose bytes no longer match the scan leaves out every file that needs it
        # (another file may have counted on this one to upload it).
        mismatched = writer.drain()
        changed += [
            path
            for path, f in plan.upload.items()
            if path not in changed and any(b in mismatched for b, _, _ in f.cached.chunks)
        ]
        mismatched.clear()
        for path in changed:
            warnings.append(f"{path} changed while being pushed; it goes with the next push")
            del plan.upload[path]

    def _upload_file(self, f: LocalFile, writer: PackWriter, is_new: Callable[[str], bool]) -> bool:
        try:
            if f.path in self.filters:
                content = self._logical_bytes(f.path, f.abspath)

                def read(offset: int, n: int) -> bytes:
                    return content[offset : offset + n]

                self._add_chunks(f, writer, is_new, read)
                return True
            with open(f.abspath, "rb") as fh:

                def read_file(offset: int, n: int) -> bytes:
                    fh.seek(offset)
                    return fh.read(n)

                self._add_chunks(f, writer, is_new, read_file)
                return True
        except OSError:
            return False

    def _add_chunks(
        self,
        f: LocalFile,
        writer: PackWriter,
        is_new: Callable[[str], bool],
        read: Callable[[int, int], bytes],
    ) -> None:
        """Add the file's new chunks; the writer leaves out any whose bytes no longer match
        the scan (writer.drain)."""
        for blob_id, offset, length in f.cached.chunks:
            if is_new(blob_id):
                writer.add(blob_id, read(offset, length))

    def _entries(self, files: list[LocalFile]) -> dict[str, FileEntry]:
        """What the snapshot lists for each file pushed: a transcript's with its summary."""
        return {
            f.path: self.sessions.with_summary(f.path, f.abspath, f.entry(), self.device, f.summary)
            for f in files
        }

    def _commit_push(self, plan: Plan, result: Result, entries: dict[str, FileEntry]) -> bool:
        """Write the new snapshot; False when another machine took its sequence number.
        entries: the files' entries (see _entries) as far as they are known already."""
        head = plan.head
        seq = head.seq + 1 if head else 1
        if plan.upload or plan.remove:
            changes: dict[str, FileEntry | None] = {}
            for path, f in plan.upload.items():
                self.reporter.action("push", path)
                changes[path] = entries.get(path) or self._entries([f])[path]
            for path in plan.remove:
                self.reporter.action("remove", path)
                changes[path] = None
            snapshot = Snapshot(
                seq,
                head.seq if head else None,
                self.device,
                time.time(),
                # Only the groups these paths are in are decoded and written again.
                ChangedFiles(head.files if head else {}, changes),
                parent_id=head.id if head else None,
                formerly=self.former_names,
            )
            # Recorded before the snapshot is written: a kill between writing it and
            # recording it here must not make the next run take it for another machine's.
            bases = self._new_bases(plan, changes)
            journal = self._push_journal(plan, snapshot)
            memory.give_back()
            self.state.journal_push(json.dumps(journal), ((p, _sha(e)) for p, e in bases.items()))
            if not self.repo.write_snapshot(snapshot, head):
                with self.state.transaction():
                    self.state.end_push_journal()
                return False
            result.snapshot = seq
            self._record_push(journal, snapshot, bases)
        else:
            bases = self._new_bases(plan, {})
            self._record_push(self._push_journal(plan, None), None, bases)
        result.pushed = sorted(plan.upload) + sorted(plan.remove)
        result.removed = sorted(plan.remove)
        return True

    @staticmethod
    def _new_bases(
        plan: Plan, entries: Mapping[str, FileEntry | None]
    ) -> dict[str, FileEntry | None]:
        """Each path's base once the push's snapshot is written (None: no base); entries:
        those the snapshot lists, when made already (a base keeps no summary)."""
        bases: dict[str, FileEntry | None] = {
            p: e.with_session(None) if (e := entries.get(p)) else f.entry()
            for p, f in plan.upload.items()
        }
        bases.update(dict.fromkeys(plan.remove))
        bases.update(plan.adopt)
        return bases

    def _push_journal(self, plan: Plan, snapshot: Snapshot | None) -> dict[str, Any]:
        """What a push records before its snapshot is written, with the content hash of
        each path's new base (see State.journal_push). The entries themselves are in the
        snapshot: a push of thousands of files would write each one twice more in the state."""
        head = plan.head
        return {
            "seq": head.seq + 1 if head else 1,
            "time": snapshot.time if snapshot else None,
            "parent_id": snapshot.parent_id if snapshot else None,
            # On an empty repository there was nothing to pull: this push makes us current.
            "was_current": head is None or self.state.get_meta("pulled_seq") == str(head.seq),
        }

    def _record_push(
        self,
        journal: dict[str, Any],
        snapshot: Snapshot | None,
        bases: dict[str, FileEntry | None],
    ) -> None:
        seq = int(journal["seq"])
        with self.state.transaction():
            self.state.set_bases(bases.items(), seq)
            if snapshot is not None:
                self._record_transcripts(snapshot)
            if snapshot is not None and journal["was_current"]:
                self.state.set_meta("pulled_seq", str(seq))
                if snapshot.parent is None:
                    # The first snapshot: nothing in it to pull, whatever is selected. A
                    # push keeps what a pull recorded: it adds only what is here.
                    self.state.set_meta(PULLED_SELECTION, ANY_SELECTION)
            self.state.end_push_journal()
        if snapshot is not None and snapshot.seq > int(self.state.get_meta("seen_seq") or 0):
            self._remember(snapshot)
            tag = self.repo.content_tag(snapshot.sealed) if snapshot.sealed else None
            if tag is not None:
                kept_head.save(self.state, kept_head.KeptHead(snapshot.seq, tag, snapshot.sealed))

    def _finish_killed_push(self) -> None:
        """A push killed after writing its snapshot but before recording it: when the
        snapshot of that number is the one it wrote (this device, same time and parent, the
        files it pushed), record it now; otherwise the push never happened."""
        found = self.state.push_journal()
        if found is None:
            return
        journal, shas = json.loads(found[0]), found[1]
        # Earlier versions journaled the bases in the header, as their whole entries or
        # their hashes.
        for path, base in journal.get("bases", {}).items():
            shas[path] = base["sha256"] if isinstance(base, dict) else base
        written: Snapshot | None = None
        with contextlib.suppress(ObjectNotFoundError):
            root = self.repo.load_root(int(journal["seq"]))
            if (
                root.device == self.device
                and root.time == journal["time"]
                and root.parent_id == journal["parent_id"]
            ):
                snapshot = self.repo.snapshot(root)
                if all(_sha(snapshot.files.get(path)) == sha for path, sha in shas.items()):
                    written = snapshot
        if written is None:
            with self.state.transaction():
                self.state.end_push_journal()
            return
        self._record_push(journal, written, {path: written.files.get(path) for path in shas})

    # -- sync -------------------------------------------------------------------------------

    def sync(self, sel: Selection, strategy: str, dry_run: bool, complete: bool) -> Result:
        """Pull, then push; when another machine pushed in between, pull and push again."""
        result = self.pull(sel, strategy, dry_run, complete)
        for _ in range(MAX_SYNC_ROUNDS):
            pull_left_conflicts = bool(result.conflicts)
            result.merge(self.push(sel, dry_run))
            # A conflict the pull did not see means another machine pushed in between.
            if dry_run or not result.conflicts or pull_left_conflicts:
                break
            result.merge(self.pull(sel, strategy, dry_run, complete))
        return result

    # -- pull -------------------------------------------------------------------------------

    def pull(
        self,
        sel: Selection,
        strategy: str = "ask",
        dry_run: bool = False,
        complete: bool = True,
    ) -> Result:
        """Bring remote changes here. `complete` says sel is everything this machine syncs,
        so a clean pull may mark the head as fully pulled."""
        result = Result()
        if not sel.only:
            self._refuse_a_vanished_folder(sel, None)
        root = self.head_root()
        if root is None or (
            complete
            and not dry_run
            and not self.every_session
            and self._pulled_in_full(sel, root.seq)
        ):
            if not dry_run:
                self._record_success("pull")
            return result
        head = self._snapshot(root)
        with self.state.transaction():
            self._record_transcripts(head)  # the next status need not read the head again
        walked = self.walk(sel, result.warnings, "mirror" if dry_run else "sync")
        local = self.scan(sel, result.warnings, walked=walked)
        plan = self.plan_pull(sel, local, head, strategy)
        result.skipped = local.skipped()
        result.warnings += [
            "projects pushed from under the home before their folder was mapped to a label "
            "stay in the repository under their old name: here they sync under the label"
            if label == "~"
            else f"projects labelled {label!r} stay in the repository: no folder here is "
            f"mapped to that label (`claude-sync map DIR {label}`)"
            for label in plan.unmapped
        ]
        self._keep_held(sel, plan, local)
        if dry_run:
            self._report_dry_pull(plan, result)
            return result
        self._merge(plan, result)
        self._hold_back_settings(plan, local, result)
        self._keep_unsettled(plan)
        self._name_authors(plan.conflicts, head)
        result.conflicts = plan.conflicts
        self._apply_pull(plan, local, result, partial=True)
        if mcp.TYPE in sel.types:
            result.warnings += mcp.reconcile(self.root, self.work_dir)
        result.skipped = sorted(set(result.skipped) | set(plan.skipped))
        with self.state.transaction():
            unresolved = {c.path for c in plan.conflicts}
            # (A conflict over a temporary name, recorded before those were left out, is
            # over a file nothing syncs any more.)
            selected = {
                p for p in self.state.conflicts() if self._covers(sel, p) or is_temporary(p)
            }
            for path in selected - unresolved:
                self.state.set_conflict(path, None)
            for c in plan.conflicts:
                self.state.set_conflict(c.path, c.to_json())
            # A remote change not applied here keeps the head unpulled: the next pull
            # takes it up again (and merges what changed here meanwhile).
            if complete and not plan.conflicts and not plan.skipped:
                self.state.set_meta("pulled_seq", str(head.seq))
                self.state.set_meta(PULLED_SELECTION, _selection_key(sel))
                self.state.set_meta("session_window", self.sessions.key())
                self.state.set_meta("unmapped_labels", ",".join(plan.unmapped))
        with self.state.transaction():
            # For status: these stay "to pull" until a repair elsewhere brings their data.
            # (A pull of some types only says nothing of the others.)
            before = json.loads(self.state.get_meta(UNAVAILABLE) or "{}")
            lost = {
                p: e for p, e in before.items() if not self._covers(sel, p) and not is_temporary(p)
            }
            lost |= {p: plan.write[p].sha256 for p in result.unavailable if p in plan.write}
            self.state.set_meta(UNAVAILABLE, json.dumps(lost) if lost else None)
        if not result.unavailable:
            self._record_success("pull")
        if (
            settings_trust.PATH in result.pulled + result.merged
            and self._window_widened()
            and not result.unavailable
        ):
            # A first pull brought a longer clean-up period: what it takes in comes now,
            # not with the next pull. (Not after a failure: the pull is run again anyway,
            # and a second pass would read the damaged packs again.)
            result.merge(self.pull(sel, strategy, dry_run, complete))
        return result

    def _window_widened(self) -> bool:
        """Whether settings.json, as pulled, gives this machine a longer session window
        than the one this pull used (which then becomes the one used)."""
        now = SessionPolicy.for_machine(self.window_setting, self.root)
        old = self.sessions.window
        if old is None or (now.window is not None and now.window <= old):
            return False
        self.sessions = now
        return True

    def _report_dry_pull(self, plan: Plan, result: Result) -> None:
        """What the pull would do, merges tried (nobody asked) but nothing written here."""
        if plan.merges:
            lost: dict[str, str] = {}
            with self._merge_inputs(plan.merges, result, lost) as inputs:
                for path, merge, local_bytes, base_bytes, remote_bytes in inputs:
                    if remote_bytes is None:
                        self._unavailable(plan, result, path, _why_lost(lost, merge.remote))
                    elif merge_file(path, base_bytes, local_bytes, remote_bytes) is None:
                        settle_conflict(plan, path, *merge)
                    else:
                        result.merged.append(path)
        self._name_authors(plan.conflicts, plan.head)
        result.conflicts = plan.conflicts
        lost = json.loads(self.state.get_meta(UNAVAILABLE) or "{}")
        result.unavailable += [p for p, e in plan.write.items() if lost.get(p) == e.sha256]
        result.pulled = sorted(plan.write)
        result.deleted = sorted(plan.delete)
        result.downloaded_bytes = sum(plan.write[p].size for p in result.pulled)

    def status(self, sel: Selection) -> Status:
        """What pull and push would do, from one look at the remote head."""
        result = Result()
        walked = self.walk(sel, result.warnings, "mirror")
        if not sel.only:
            self._refuse_a_vanished_folder(sel, walked)
        root = self.head_root()
        seq = None if root is None else root.seq
        in_step = seq is not None and self._pulled_in_full(sel, seq)
        if in_step and walked.digest == self.state.clean_tree():
            # Nothing to push (see TreeWalk) and nothing new to pull: no file need be read.
            self._report_skipped(walked, result)
            return Status(result, seq, self._remote_only_in_step(sel, root, walked))
        walked_units = walked.units
        local = self.scan(sel, result.warnings, walked=walked)
        del walked
        result.skipped = local.skipped()
        clean = not self._has_local_changes(sel, local)
        if clean and local.tree is not None and not sel.only:
            self.state.set_clean_units({WHOLE_TREE: local.tree, **walked_units})
        if not (in_step and clean):  # else nothing either way: the file list need not be read
            head = None if root is None else self._snapshot(root)
            plan = self.plan_pull(sel, local, head, "ask")
            self._keep_held(sel, plan, local)
            self._report_dry_pull(plan, result)
            self._report_dry_push(self.plan_push(sel, local, head), result)
        return Status(result, seq, self._remote_only(root, local.files, set(result.pulled)))

    def _remote_only_in_step(self, sel: Selection, root: SnapshotRoot, walked: TreeWalk) -> int:
        """_remote_only for a walk that found the tree clean, kept for that head and walk:
        mapping the paths of tens of thousands of files cost a status ~30 ms every time.
        Only while the walk saw every transcript here: not when sessions are not synced,
        or a folder of them was not looked into (a link not followed)."""
        key = f"{root.id} {walked.digest}"
        if resources.TYPES_BY_NAME["sessions"] not in sel.types or any(
            s.folder and f"{s.local_path}/".startswith("projects/") for s in walked.skipped
        ):
            key = ""
        kept, _, count = (self.state.get_meta(REMOTE_ONLY) or "").rpartition(" ")
        if key and kept == key:
            return int(count)
        # Only main transcripts are counted, all at this depth: not a sub-agent's file of
        # each session mapped for nothing.
        to_logical = self.mapper.to_logical
        here = {to_logical(p) for f in walked.found if (p := f.local_path).count("/") == 2}
        found = self._remote_only(root, here, set())
        self.state.set_meta(REMOTE_ONLY, f"{key} {found}" if key else None)
        return found

    def _remote_only(
        self, root: SnapshotRoot | None, here: Container[str], arriving: set[str]
    ) -> int:
        """Sessions a plain pull leaves in the repository that `pull --all` would bring:
        their transcript is not here (here: the logical paths a scan saw, else the disk
        says), nor among the paths the next pull brings, nor an old copy of a project
        that is here under a label now (see PathMapper.unmapped_label)."""
        return sum(
            1
            for path in self._transcripts(root)
            if path not in here
            and path not in arriving
            and self.mapper.unmapped_label(path) != "~"
            and not self.local_path(path).is_file()
        )

    def _transcripts(self, root: SnapshotRoot | None) -> list[str]:
        """The main transcripts of the head, recorded in the state by its id: counting the
        sessions only in the repository must not decode a file list of tens of thousands of
        entries at every `status`."""
        if root is None:
            return []
        paths = self.state.snapshot_transcripts(root.id)
        if paths is None:
            with self.state.transaction():
                paths = self._record_transcripts(self._snapshot(root))
        return paths

    def _record_transcripts(self, snapshot: Snapshot) -> list[str]:
        """Record the snapshot's main transcripts (see _transcripts); returns them. A push's
        snapshot takes its parent's, when they are recorded, and its own changes: the rest
        of its list need not be decoded."""
        files = snapshot.files
        before = (
            self.state.snapshot_transcripts(snapshot.parent_id)
            if isinstance(files, ChangedFiles) and snapshot.parent_id
            else None
        )
        if before is None:
            paths = [p for p in files if is_main_transcript(p)]
        else:
            kept = [p for p in before if p not in files.changes]
            changed = [p for p, e in files.changes.items() if e and is_main_transcript(p)]
            paths = sorted(kept + changed)
        self.state.set_snapshot_transcripts(snapshot.id, paths)
        return paths

    def _apply_pull(
        self, plan: Plan, local: LocalView, result: Result, partial: bool = False
    ) -> None:
        """Write the plan's files; with `partial`, files whose data is damaged or missing in
        the repository are left out (and stay unpulled) instead of failing the pull."""
        assert plan.head is not None
        seq = plan.head.seq
        outputs = {path: (self.local_abspath(path), entry) for path, entry in plan.write.items()}
        for path, free in casefold.renames_for(self.root, plan.write, local.files).items():
            outputs[path] = (self.local_abspath(free), outputs[path][1])
            result.warnings.append(f"{path} differs from another file only in case: kept as {free}")
        waiting = self.state.conflicts() if plan.copies else {}
        for path, entry in plan.copies.items():
            copy = _copy_name(path, seq)
            earlier = waiting.get(path) or {}
            if (
                earlier.get("copy")
                and earlier.get("remote_sha256") == entry.sha256
                and self.local_path(earlier["copy"]).exists()
            ):
                copy = earlier["copy"]  # the same remote version is beside it already
            else:
                outputs[copy] = (self.local_abspath(copy), entry)
            for c in plan.conflicts:
                if c.path == path:
                    c.copy = copy
        # A file the pull deletes where a folder of files it writes goes must go first.
        if in_way := _in_the_way(plan.delete, plan.write):
            with self.state.transaction():
                for path in in_way:
                    self._delete_here(path, local, seq, result, plan)
            plan.delete = [p for p in plan.delete if p not in in_way]
        folders = folders_of(dest for dest, _ in outputs.values())
        new_folders = missing_folders(folders, self.root)
        for path in self.drop_unwritable(outputs, self.root, result, folders):
            plan.skipped.append(path)
            plan.write.pop(path, None)
        filled: set[Path] = set()  # folders something was moved into
        try:
            with self.staged_files(
                outputs, self.root, result, partial, local.files, new_folders, resumable=True
            ) as staged:
                plan.skipped += [p for p in result.unavailable if p in outputs]
                filled = self._install(staged, local, plan, result)
        finally:
            remove_unfilled(new_folders, filled)

    @contextlib.contextmanager
    def staged_files(
        self,
        outputs: dict[str, tuple[str, FileEntry]],
        root: Path,
        result: Result,
        partial: bool = False,
        here: Mapping[str, LocalFile] | None = None,
        made: set[Path] | None = None,
        resumable: bool = False,
    ) -> Iterator[list[StagedFile]]:
        """Download and verify every output into a temporary file beside its destination,
        all before the caller moves any into place; the temporary files still in the list
        afterwards are removed (the caller takes out those it moved). With `partial`,
        outputs whose data cannot be had are left out and named in result.unavailable.
        here: the files the scan saw here, whose chunks need not be downloaded. made: the
        folders made for this call, where no earlier one can have left anything.
        resumable (a pull into the Claude folder): when the download fails or is
        interrupted (but for a full disk), the temporary files stay; a scan removes them
        once they are STALE_TMP_SECONDS old. Any call takes the chunks that such files
        hold, each checked against its id at its place, instead of downloading them again."""
        staged: list[StagedFile] = []
        # One fsync per file costs more than everything else on a fresh pull of thousands
        # of files: past a few files, one sync of the filesystem makes them all durable.
        each = len(outputs) <= FSYNC_EACH_UP_TO
        # The files (and missing folders) are created by the download threads, in parallel,
        # as their first blob arrives; creating thousands of files one by one costs as much
        # as downloading them. Folders are checked not to lead out of root before anything
        # is written, and again once they exist.
        allowed = self._allowed_roots(root)
        if partial:
            # One implausibly big file must not stop the rest of the pull.
            big = limits.too_large((path, entry.size) for path, (_, entry) in outputs.items())
            for path, why in big.items():
                result.unavailable.append(path)
                result.warnings.append(f"{path} could not be downloaded: {why}")
            outputs = {path: out for path, out in outputs.items() if path not in big}
        folders = folders_of(dest for dest, _ in outputs.values())
        keep = False  # the temporary files, for the next pull
        try:
            _check_inside(allowed, folders, root)
            staged += (StagedFile(path, dest, entry) for path, (dest, entry) in outputs.items())
            held = self._take_up_leftovers(staged, folders - (made or set()))
            limits.check_room(((s.path, s.entry.size) for s in staged), root, held)
            try:
                lost = self._download_into(staged, result, partial, here or {})
            except BaseException as exc:
                # A full disk must get its space back: the next pull may be hours away.
                keep = resumable and no_space(exc) is None
                raise
            for s in staged:
                if s.path in lost:
                    _remove(s.tmp)
                    result.unavailable.append(s.path)
                    result.warnings.append(f"{s.path} could not be downloaded: {lost[s.path]}")
            staged[:] = [s for s in staged if s.path not in lost]
            for s in staged:
                tmp = s.tmp
                if not s.entry.chunks:
                    _open_new(tmp).close()
                if each:
                    fsync_path(tmp)
                portable.set_mode(tmp, resources.capped_mode(s.path, s.entry.mode))
                mtime = self.sessions.mtime_ns(s.path, s.entry.mtime_ns)
                os.utime(tmp, ns=(mtime, mtime))
            _check_inside(allowed, folders, root)
            if not each:
                portable.sync_all(s.tmp for s in staged)
            yield staged
        finally:
            if not keep:
                for s in staged:
                    _remove(s.tmp)

    @staticmethod
    def _take_up_leftovers(staged: list[StagedFile], folders: set[Path]) -> int:
        """Tell each staged file what a pull that failed or was killed left under its
        temporary name in folders (StagedFile.left); returns how many bytes of it are on
        the disk already. What is not known is not there: the files no staged file takes up
        are removed, and so are the staged files' temporary names in a folder that could
        not be listed (a longer file left there would keep its tail)."""
        left, unlisted = _left_by_a_pull(folders)
        if not left and not unlisted:
            return 0
        held = 0
        for i, s in enumerate(staged):
            folder = Path(os.path.dirname(s.dest))
            if folder in unlisted:
                _remove(s.tmp)
            elif found := left.pop((folder, os.path.basename(s.tmp)), None):
                staged[i] = s._replace(left=found[0])
                # Not more than the file takes: a longer one is cut after the download.
                held += min(found[1], s.entry.size)
        for folder, name in left:
            _remove(os.path.join(folder, name))  # a claude-sync's that died: none runs now
        return held

    def drop_unwritable(
        self,
        outputs: dict[str, tuple[str, FileEntry]],
        root: Path,
        result: Result,
        folders: set[Path] | None = None,
    ) -> list[str]:
        """Take out of outputs (to be written under root; folders: theirs, when known) the
        files whose folder cannot be written here, each with a warning; returns their
        paths. One such folder (not writable, a link out, a path too long for this machine)
        must not stop the rest. The other folders exist afterwards."""
        if folders is None:
            folders = folders_of(dest for dest, _ in outputs.values())
        unwritable = self._unwritable(folders, self._allowed_roots(root), root)
        dropped = []
        for path, (dest, _) in list(outputs.items()) if unwritable else ():
            if (why := unwritable.get(Path(os.path.dirname(dest)))) is not None:
                result.warnings.append(f"cannot write {path}: {why}; skipped")
                del outputs[path]
                dropped.append(path)
        return dropped

    def _allowed_roots(self, root: Path) -> list[Path]:
        """Where writes may land: root, and the targets of its linked top-level resources
        (the folder of a linked file)."""
        allowed = [root.resolve()]
        for target in resources.linked_tops(root).values():
            allowed.append(Path(target) if os.path.isdir(target) else Path(target).parent)
        return allowed

    def _unwritable(self, folders: set[Path], allowed: list[Path], root: Path) -> dict[Path, str]:
        """Why files cannot be written in some of these folders (allowed: see
        _allowed_roots); the others exist afterwards. All at once: a pull can write into
        thousands of folders, and each check resolves the parts of a path they share."""
        # Checked before and after: mkdir must not follow a link out to create folders.
        why = _outside(allowed, folders, root)
        for folder in sorted(folders - why.keys(), key=lambda f: len(f.parts)):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why[folder] = f"{folder} cannot be created ({exc.strerror})"
        why.update(_outside(allowed, folders - why.keys(), root))
        for folder in folders - why.keys():
            if not os.access(folder, os.W_OK | os.X_OK):
                why[folder] = f"{folder} is not writable"
            elif len(os.fsencode(folder)) + TMP_NAME_ROOM >= _path_max(folder):
                # A longer home than the machine that pushed it: the file's temporary
                # name beside it would be too long a path.
                why[folder] = f"{folder} is too long a path here"
        return why

    def _download_into(
        self,
        staged: list[StagedFile],
        result: Result,
        partial: bool,
        here: Mapping[str, LocalFile],
    ) -> dict[str, str]:
        """Write each downloaded blob straight to its place in every temporary file that
        holds it: no staging copy, and packs are read in parallel. A blob's id is a MAC of
        its content, checked on download, and the snapshot lists the ids of each file, so a
        file made of checked blobs of the listed lengths is the file the snapshot describes.
        Blobs a file here already holds (here: as the scan saw them), or the temporary file
        a failed pull left (StagedFile.left), are read from it and checked the same way,
        not downloaded. Filtered files are rebuilt in memory, where their whole hash is
        checked. With `partial`, returns the paths whose data could not be had, with why."""
        # Where each blob goes: one place, or a list of them when files share it (a list per
        # blob cost a pull of 50,000 small files 3 MiB more at its peak).
        places: dict[str, _Place | list[_Place]] = {}
        held: dict[str, bytes | None] = {}
        for s in staged:
            if s.path in self.filters:
                held.update((blob, None) for blob, _ in s.entry.chunks)
                continue
            offset = 0
            for blob, length in s.entry.chunks:
                place = (s, offset, length)
                known = places.setdefault(blob, place)
                if isinstance(known, list):
                    known.append(place)
                elif known is not place:
                    places[blob] = [known, place]
                offset += length

        def deliver(blob_id: str, data: bytes, source: tuple[str, int] | None = None) -> None:
            found = places.get(blob_id, [])
            for s, offset, length in [found] if isinstance(found, tuple) else found:
                if len(data) != length:
                    raise CorruptionError("a blob does not have the length its snapshot says")
                tmp = s.tmp
                if source == (tmp, offset):
                    continue  # read from there: it is in place
                # A bare descriptor: a file object per blob costs more than the write when a
                # pull brings tens of thousands of small files.
                fd = _open_new_fd(tmp)
                try:
                    portable.pwrite(fd, data, offset)
                finally:
                    os.close(fd)
            if blob_id in held:
                held[blob_id] = data

        lost_blobs: dict[str, str] = {}
        wanted = set(places) | set(held)
        versions = ((s.path, s.entry) for s in staged)
        wanted -= self._deliver_from_here(wanted, here, deliver, versions, staged)
        self._download(wanted, deliver, result, lost=lost_blobs if partial else None)
        for s in staged:
            if s.left > s.entry.size and s.path not in self.filters:
                os.truncate(s.tmp, s.entry.size)  # what was there past its end is no part
        lost: dict[str, str] = {}
        for s in staged:
            why = next((lost_blobs[b] for b, _ in s.entry.chunks if b in lost_blobs), None)
            if why is not None:
                lost[s.path] = why
        # Each held blob let go of once the last file made of it is: a prompt history of
        # megabytes is there once in blobs, once joined, and once as written here.
        uses = collections.Counter(
            blob for s in staged if s.path in self.filters for blob, _ in s.entry.chunks
        )
        for s in staged:
            path, dest, entry = s.path, s.dest, s.entry
            if path in self.filters and path not in lost:
                data = b"".join(held[blob] or b"" for blob, _ in entry.chunks)
                for blob, _ in entry.chunks:
                    uses[blob] -= 1
                    if not uses[blob]:
                        held[blob] = None
                if hashlib.sha256(data).hexdigest() != entry.sha256:
                    raise CorruptionError(
                        f"data for {os.path.basename(dest)} does not match its snapshot entry"
                    )
                with _open_new(s.tmp) as fh:
                    self.filters[path].write_local(data, fh)
        return lost

    def _deliver_from_here(
        self,
        wanted: set[str],
        here: Mapping[str, LocalFile],
        deliver: Callable[[str, bytes, tuple[str, int]], None],
        versions: Iterable[tuple[str, FileEntry]],
        staged: Iterable[StagedFile] = (),
    ) -> set[str]:
        """Hand deliver the wanted blobs that the copies here of versions' files hold,
        read from them and checked against their ids, with where each was read; returns
        those delivered. A
        transcript that grew on another machine then costs a pull its new chunks, not the
        whole file again. So do the staged files' temporary files that a pull which
        failed or was killed left (StagedFile.left): a pull started again downloads only
        what is not there yet. A copy is looked at for its own chunks (as the scan saw them,
        here) and for the version's chunks at their places: it may hold them though it was
        cut otherwise (a merge base whose short last chunk the copy here cut again with its
        own append). (Filtered files are left out: their chunks are of their logical form,
        not of what is on disk. A file changed since the scan fails the check: its blobs
        are downloaded.)"""
        # Only the copies of the files wanted: a pull into a tree of 50,000 files must not
        # look through every file's chunks to bring one.
        sources: dict[str, set[tuple[str, int, int]]] = {}
        for path, entry in versions:
            f = here.get(path)
            if f is None or path in self.filters:
                continue
            for blob_id, offset, length in (*f.cached.chunks, *entry.located_chunks()):
                if blob_id in wanted and offset + length <= f.cached.stat.size:
                    sources.setdefault(f.abspath, set()).add((blob_id, offset, length))
        for s in staged:
            if s.left and s.path not in self.filters:
                for blob_id, offset, length in s.entry.located_chunks():
                    if blob_id in wanted and offset + length <= s.left:
                        sources.setdefault(s.tmp, set()).add((blob_id, offset, length))
        delivered: set[str] = set()
        for abspath, chunks in sources.items():
            try:
                with open(abspath, "rb") as fh:
                    for blob_id, offset, length in sorted(chunks, key=lambda c: c[1]):
                        if blob_id not in delivered:
                            fh.seek(offset)
                            data = fh.read(length)
                            if len(data) == length and self.repo.keys.names(blob_id, data):
                                deliver(blob_id, data, (abspath, offset))
                                delivered.add(blob_id)
            except OSError:
                continue  # what was not read is downloaded
        return delivered

    def _download(
        self,
        needed: set[str],
        deliver: Callable[[str, bytes], None],
        result: Result,
        allow_missing: bool = False,
        lost: dict[str, str] | None = None,
    ) -> None:
        """Hand every needed blob, verified, to deliver (from several threads at once).
        With allow_missing, blobs no index knows (a pruned merge base) are left out. With
        `lost`, blobs that cannot be had (in no index, or in a damaged or missing pack) are
        put there with the reason, and the rest is still delivered."""
        if not needed:
            return
        self.refresh_index()
        located = self.state.locate(needed)
        if len(located) != len(needed) and not allow_missing:
            if lost is None:
                raise CorruptionError(
                    f"{len(needed) - len(located)} blobs the snapshot needs are missing from "
                    "the repository's indexes"
                )
            lost.update(dict.fromkeys(needed - located.keys(), "its data is in no index"))
        packs = group_by_pack(located.items())
        advance = self.reporter.progress(
            "downloading", sum(loc.length for pack in packs.values() for loc in pack.values())
        )
        received_before = self.repo.downloaded_bytes

        def keep(blob_id: str, data: bytes) -> None:
            deliver(blob_id, data)
            advance(located[blob_id].length)

        def damaged(pack: str, exc: SyncError) -> None:
            assert lost is not None
            lost.update(dict.fromkeys(packs[pack], str(exc)))

        # Only on demand (resume, merges): a pull reads whole packs, so that a flipped byte
        # anywhere in one is seen, and the files that need it are named, at once.
        extents = self.state.pack_extents(packs) if self._by_range else None
        self.repo.read_packs(packs, keep, None if lost is None else damaged, extents)
        result.downloaded_bytes += self.repo.downloaded_bytes - received_before

    @staticmethod
    def _unavailable(plan: Plan, result: Result, path: str, why: str) -> None:
        """A file the pull leaves as it is here because its remote data cannot be had."""
        result.unavailable.append(path)
        result.warnings.append(f"{path} could not be downloaded: {why}")
        plan.skipped.append(path)

    def _ask(
        self, plan: Plan, conflict: Conflict, local: bytes, remote: bytes, base: bytes | None
    ) -> bytes | None:
        """The user's decision as merged bytes, or None to fall back to a strategy."""
        by_key = merge_keys(conflict.path, base, local, remote, "local")
        conflict.keys = None if by_key is None else by_key[1]
        answer = self.reporter.resolve(conflict, local, remote, base)
        if isinstance(answer, bytes):
            return answer
        if answer in ("local", "remote"):
            # A JSON file: the answer settles the keys named; the other keys merge.
            settled = merge_keys(conflict.path, base, local, remote, answer)
            if settled is not None:
                return settled[0]
            return local if answer == "local" else remote
        if answer == "both":
            # Keep the local version, the remote one beside it, and count it as settled.
            plan.copies[conflict.path] = plan.merges[conflict.path].remote
            return local
        return None

    def fetch(self, head: Snapshot, files: dict[str, FileEntry], result: Result) -> None:
        """Place the stored files that are missing here, as a pull would (for `resume`): a
        few blobs of a big pack are read by range (one session among a pack's many)."""
        plan = Plan(head, write={p: e for p, e in files.items() if not self.local_path(p).exists()})
        if plan.write:
            with self._reading_by_range():
                self._apply_pull(plan, LocalView(), result)

    @contextlib.contextmanager
    def _reading_by_range(self) -> Iterator[None]:
        """Downloads meanwhile read a few blobs of a big pack by range, each authenticated,
        instead of the whole pack (see _download)."""
        self._by_range = True
        try:
            yield
        finally:
            self._by_range = False

    def file_bytes(self, entry: FileEntry, result: Result) -> bytes:
        """One stored file's content, downloaded and verified, in memory."""
        pieces: dict[str, bytes] = {}
        self._download({blob for blob, _ in entry.chunks}, pieces.__setitem__, result)
        return b"".join(pieces[blob] for blob, _ in entry.chunks)

    def _fetch_blobs(
        self,
        entries: list[FileEntry],
        result: Result,
        allow_missing: bool = False,
        lost: dict[str, str] | None = None,
        merges: Mapping[str, Merge] | None = None,
    ) -> Path:
        """Download every blob the entries need into a staging folder; all verified. With
        `lost`, blobs in a damaged or missing pack are named there and left out. merges:
        those the entries are for, whose files here hold most of their chunks (see
        _deliver_from_here): both sides of a transcript merge share its old records."""
        staging = self.work_dir / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, mode=0o700)

        def keep(blob_id: str, data: bytes, source: object = None) -> None:
            (staging / blob_id).write_bytes(data)

        needed = {blob for e in entries for blob, _ in e.chunks}
        merges = merges or {}
        here = {path: merge.local for path, merge in merges.items()}
        versions = [(p, e) for p, (_, base, remote) in merges.items() for e in (base, remote) if e]
        needed -= self._deliver_from_here(needed, here, keep, versions)
        # A few files' versions (a merge's, settings.json's): often a few blobs of the big
        # pack a first push made.
        with self._reading_by_range():
            self._download(needed, keep, result, allow_missing, lost)
        return staging

    def _install(
        self,
        staged: list[StagedFile],
        local: LocalView,
        plan: Plan,
        result: Result,
    ) -> set[Path]:
        """Move verified files into place; a file that changed meanwhile is left alone.
        Those moved are taken out of staged (nothing is left to remove); returns the
        folders they went to."""
        assert plan.head is not None
        seq = plan.head.seq
        moved: set[str] = set()
        with self.state.transaction():
            # Recorded in one statement each, in the same transaction: a pull of thousands
            # of files otherwise spends more on single-row writes than on the files.
            # Deletions first: a folder whose files went may be where a file now goes.
            for path in plan.delete:
                self._delete_here(path, local, seq, result, plan)
            pulled: list[tuple[str, CachedFile]] = []
            bases: list[tuple[str, FileEntry | None]] = []
            for s in staged:
                path, dest, entry = s.path, s.dest, s.entry
                scanned = local.files.get(path)
                if (
                    path in plan.write
                    and not _unchanged_since_scan(dest, scanned)
                    # nothing where it goes, unread: nothing is lost
                    and not (scanned is None and _holds_nothing(dest, is_transcript(path)))
                ):
                    result.warnings.append(_why_not_installed(path, dest, scanned))
                    plan.skipped.append(path)
                    continue
                os.replace(s.tmp, dest)
                moved.add(path)
                if path not in plan.write:
                    continue
                self.reporter.action("pull", path)
                st = os.stat(dest)
                located = entry.located_chunks()
                pulled.append(
                    (path, CachedFile(_stat_key(st), portable.mode_of(st), entry.sha256, located))
                )
                bases.append((path, entry))
                result.pulled.append(path)
                if len(pulled) >= WRITE_BATCH:
                    self.state.remember_files(pulled)
                    self.state.set_bases(bases, seq)
                    pulled, bases = [], []
            self.state.remember_files(pulled)
            self.state.set_bases(bases, seq)
            for path, entry in plan.adopt.items():
                self.state.set_base(path, entry, seq)
            for path, (data, remote) in plan.merged.items():
                if self._write_merged(path, data, local.files.get(path), result, remote):
                    self.state.set_base(path, remote, seq)
                else:
                    plan.skipped.append(path)
            for path, data in plan.held.items():
                self._write_merged(path, data, local.files.get(path), result)
            # The renames must be on disk before the state says they happened.
            _sync_dirs(folders_of(s.dest for s in staged))
        filled = folders_of(s.dest for s in staged if s.path in moved)
        staged[:] = [s for s in staged if s.path not in moved]
        return filled

    def _delete_here(
        self, path: str, local: LocalView, seq: int, result: Result, plan: Plan
    ) -> None:
        """Delete a file the pull removes, unless it changed since the scan; then the
        folders that held only it, up to its top folder (a file may take their name)."""
        dest = self.local_path(path)
        if not _unchanged_since_scan(dest, local.files.get(path)):
            plan.skipped.append(path)
            return
        try:
            dest.unlink(missing_ok=True)
        except OSError as exc:
            # One file that cannot be deleted here must not stop the pull.
            result.warnings.append(f"cannot delete {path}: {exc.strerror}; skipped")
            plan.skipped.append(path)
            return
        self.reporter.action("delete", path)
        self.state.forget_file(path)
        self.state.set_base(path, None, seq)
        result.deleted.append(path)
        top = self.root / Path(self.mapper.to_local(path)).parts[0]
        folder = dest.parent
        while folder != top and top in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break  # not empty
            folder = folder.parent

    def _write_merged(
        self,
        path: str,
        data: bytes,
        scanned: LocalFile | None,
        result: Result,
        remote: FileEntry | None = None,
    ) -> bool:
        """Write a merge's result over the file scanned here (unless it changed since). Its
        chunks are cut as if it had grown from whichever of the versions merged (here, or
        remote) it begins with: a transcript appended on two machines keeps its old chunks,
        and the push sends the new records, not its old last chunk again."""
        dest = self.local_path(path)

        def unchanged(tmp: Path) -> bool:
            if scanned is not None:
                portable.set_mode(tmp, scanned.cached.mode)
            return _unchanged_since_scan(dest, scanned)

        grown_from = None if path in self.filters else _begins_with(data, scanned, remote)
        data = self._local_bytes(path, data)
        if not write_atomically(dest, data, prefix=f"{TMP_MARKER}-", before_rename=unchanged):
            result.warnings.append(f"{path} changed during the pull; it goes with the next sync")
            return False
        read = self._read(path, dest, dest.stat(), grown_from)
        cached = None if read is None else read[0]
        if cached is not None:
            self.state.remember_file(path, cached)
        self.reporter.action("merge", path)
        result.pulled.append(path)
        return True


def _begins_with(
    data: bytes, scanned: LocalFile | None, remote: FileEntry | None
) -> CachedFile | None:
    """The longest of the merged versions that data begins with, as a previous read of the
    file (see Engine._read): its chunks stand, and only what follows is cut."""
    versions = []
    if remote is not None:
        versions.append((remote.size, remote.sha256, remote.located_chunks()))
    if scanned is not None:
        versions.append((scanned.entry().size, scanned.sha256, scanned.cached.chunks))
    view = memoryview(data)
    for size, sha, chunks in sorted(versions, key=lambda v: -v[0]):
        if 0 < size < len(data) and hashlib.sha256(view[:size]).hexdigest() == sha:
            return CachedFile(StatKey(size, 0, 0, 0), 0, sha, chunks)
    return None


def _why_lost(lost: dict[str, str], entry: FileEntry) -> str:
    return next((lost[b] for b, _ in entry.chunks if b in lost), "its data is in no index")


def _content(staging: Path, entry: FileEntry | None) -> bytes | None:
    """A file's bytes from staged blobs; None when unknown or some blob is not there."""
    if entry is None:
        return None
    try:
        return b"".join((staging / blob).read_bytes() for blob, _ in entry.chunks)
    except FileNotFoundError:
        return None


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


def _synced_sha(transcript: bytes) -> str:
    """The content hash a scan gives a transcript with these bytes: of its whole records,
    not the one still being written."""
    return hashlib.sha256(split_unfinished(transcript)[0]).hexdigest()


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


def _selection_key(sel: Selection) -> str:
    """What a complete pull took in, as the state records it."""
    return json.dumps([sorted(t.name for t in sel.types), sel.include, sel.exclude])


def _selection_of_key(key: str) -> Selection:
    """The selection a state recorded (types no longer known are left out)."""
    names, include, exclude = json.loads(key)
    types = tuple(t for t in resources.TYPES if t.name in names)
    return Selection(types, include=tuple(include), exclude=tuple(exclude))


def _stat_key(st: resources.AnyStat) -> StatKey:
    return StatKey(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


def _copy_name(path: str, seq: int) -> str:
    """Where a conflict's remote version goes beside path: its name, cut short when the
    marker would make it longer than a file name may be (255 bytes)."""
    folder, _, name = path.rpartition("/")
    suffix = f"{CONFLICT_MARKER}-{seq}"
    room = 255 - len(suffix.encode())
    if len(name.encode()) > room:
        name = name.encode()[:room].decode(errors="ignore")
    return f"{folder}/{name}{suffix}" if folder else f"{name}{suffix}"


def _path_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        return 4096  # Linux's; pathconf is not on every system


def _why_not_installed(path: str, dest: str, scanned: LocalFile | None) -> str:
    """What a pull says of a file it did not put in place: something is where it goes."""
    if os.path.isdir(dest):
        return f"{path} is a folder here, with files in it: not pulled (rename one of them)"
    if scanned is None and _size_or_none(dest) == 0:
        return f"{path} is empty here (an editor saving it?): not pulled, left as it is"
    return f"{path} changed during the pull; kept the local version"


def _size_or_none(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _holds_nothing(dest: str, transcript: bool) -> bool:
    """Whether dest was an empty folder, now removed, or is an empty transcript (one of a
    session a lazy pull left out, which Claude Code made). Any other empty file may be one
    an editor truncated and is about to write: replaced, the editor's write would then
    look like an edit of the version pulled, and undo the other machine's changes."""
    with contextlib.suppress(OSError):
        st = os.lstat(dest)
        if stat.S_ISREG(st.st_mode):
            return transcript and not st.st_size
        os.rmdir(dest)
        return True
    return False


def _as_scanned(path: str, scanned: LocalFile, data: bytes) -> bool:
    """Whether data, read from the file now, is what the scan hashed (a record still
    being written at its end is not part of that)."""
    synced = data
    if scanned.unfinished:
        synced = data[: scanned.entry().size]
    elif path == HISTORY_PATH:
        synced = split_unfinished(data)[0]
    return hashlib.sha256(synced).hexdigest() == scanned.sha256


def _unchanged_since_scan(dest: str | Path, scanned: LocalFile | None) -> bool:
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return scanned is None
    return scanned is not None and _stat_key(st) == scanned.cached.stat


def _remove(path: str) -> None:
    # Any error: the files after it must still be removed (one whose folder could not be
    # made was never there).
    with contextlib.suppress(OSError):
        os.unlink(path)


def _open_new(path: str) -> Any:
    """A temporary output for writing whole, created (with its folder) if needed; never
    through a symlink."""
    fh = os.fdopen(_open_new_fd(path), "wb")
    fh.truncate()  # a failed pull's, left to be taken up again (see staged_files)
    return fh


def _open_new_fd(path: str) -> int:
    """_open_new's descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | portable.O_NOFOLLOW | portable.O_CLOEXEC | portable.O_BINARY
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags, 0o600)


def _in_the_way(deleted: list[str], written: Iterable[str]) -> list[str]:
    """The files deleted whose path is a folder of files written."""
    above = {p[:i] for p in written for i, c in enumerate(p) if c == "/"}
    return [p for p in deleted if p in above]


def _left_by_a_pull(
    folders: Iterable[Path],
) -> tuple[dict[tuple[Path, str], tuple[int, int]], set[Path]]:
    """The temporary files in folders (regular files only), by folder and name, with their
    sizes and how much of them is on the disk (written at scattered places, they have
    holes): what a pull that failed or was killed downloaded (see staged_files); and the
    folders that could not be listed."""
    left: dict[tuple[Path, str], tuple[int, int]] = {}
    unlisted: set[Path] = set()
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith(TMP_MARKER) and entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        if not st.st_mode & stat.S_IWUSR:
                            os.chmod(entry.path, 0o600)  # its mode set, then the pull was cut off
                        # (Where blocks are not counted, nothing is taken as there.)
                        stored = getattr(st, "st_blocks", 0) * 512
                        left[folder, entry.name] = (st.st_size, min(stored, st.st_size))
        except FileNotFoundError:
            continue
        except OSError:
            unlisted.add(folder)
    return left, unlisted


def folders_of(files: Iterable[str]) -> set[Path]:
    """The folders files are in: one Path per folder, not per file."""
    return {Path(folder) for folder in {os.path.dirname(f) for f in files}}


def remove_unfilled(new: set[Path], filled: set[Path]) -> None:
    """Of the folders made (new), those nothing was moved into (filled: the folders of the
    files that were): they would be left empty. (Only those: a pull of 50,000 files made
    15,000 folders, and failed to remove each.)"""
    filled = {above for folder in filled for above in (folder, *folder.parents)}
    for folder in sorted(new - filled, key=lambda f: len(f.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def missing_folders(folders: set[Path], root: Path) -> set[Path]:
    """The folders (and their parents inside root) that do not exist yet."""
    missing: set[Path] = set()
    for folder in folders:
        # A folder already found missing had its parents looked at then.
        while (
            folder not in missing
            and folder != root
            and folder.is_relative_to(root)
            # Not Path.exists: a path too long here raises (it is missing, and its files
            # are skipped with why by Engine._unwritable).
            and not os.path.exists(folder)
        ):
            missing.add(folder)
            folder = folder.parent
    return missing


def _sync_dirs(dirs: set[Path]) -> None:
    if len(dirs) > FSYNC_EACH_UP_TO:
        portable.sync_all(dirs)
        return
    for directory in dirs:
        fsync_path(directory)


def _check_inside(allowed: list[Path], folders: set[Path], root: Path) -> None:
    """Refuse folders (existing, or the existing part of their path) that a symlink leads
    out of the Claude directory (or the target of one of its linked resources)."""
    if outside := _outside(allowed, folders, root):
        raise SyncError(outside[min(outside)])


def _outside(allowed: list[Path], folders: set[Path], root: Path) -> dict[Path, str]:
    """The folders among these (existing, or the existing part of their path) that a
    symlink leads out of the Claude directory (or the target of one of its linked
    resources), each with why."""
    # What os.path.realpath gives, each parent resolved once for all its sub-folders: a
    # pull can write into tens of thousands of folders, and realpath looks at every
    # component of every one of them.
    real: dict[str, str] = {}

    def resolve(path: str) -> str:
        if (known := real.get(path)) is None:
            parent, name = os.path.split(path)
            if not name or parent == path:
                known = os.path.realpath(path)
            else:
                known = os.path.join(resolve(parent), name)
                if os.path.islink(known):
                    known = os.path.realpath(known)
            real[path] = known
        return known

    bounds = [str(a).rstrip(os.sep) for a in allowed]
    outside = {}
    for folder in folders:
        if portable.WINDOWS:
            # Junctions are no links to os.path.islink: there, Path.resolve decides.
            inside = any(folder.resolve().is_relative_to(a) for a in allowed)
        else:
            found = resolve(os.path.abspath(folder))
            inside = any(found == b or found.startswith(b + os.sep) for b in bounds)
        if not inside:
            outside[folder] = f"refusing to write in {folder}: it leads outside {root}"
    return outside
