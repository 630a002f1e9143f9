"""The scan: the Claude folder's files as they are now. A file whose stat is what the
state last recorded is taken as it was; the others are read (hashed, chunked and, for a
push, sealed as they are read, several at once), their summaries made, and what could not
be read said once, with why.

The scanner is the engine's: it reads the engine's settings (its mapper, filters and
session policy, which a command may change after the engine is made)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from claude_sync import __version__, forked_walk, mcp, resources, terminal, walk_warmer
from claude_sync.chunking import ChunkSink
from claude_sync.clean_tree import TreeWalk
from claude_sync.merge import is_transcript
from claude_sync.planner import LocalFile, LocalView
from claude_sync.read_worker import ReadWorkers
from claude_sync.reading import SMALL_READ, FileRead, InTurn, SealedSink, new_bytes, stat_key
from claude_sync.resources import Selection
from claude_sync.session_summary import SummaryMark
from claude_sync.state import CachedFile
from claude_sync.summary_worker import SummaryWorker

if TYPE_CHECKING:
    from claude_sync.engine import Engine, Result
    from claude_sync.uploads import NewChunks

# A scan hands files under SMALL_READ bytes to its readers READ_BATCH at a time: fewer round
# trips to the read workers (a first push of 50,000 small files: 6.1-6.4 s with 256, against
# 6.3-6.8 s with 64, alternating runs).
READ_BATCH = 256


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


class Scanner:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        warmer = None
        split = False
        if not sel.only:
            folders = resources.folders_of(self.engine.root, sel)
            state = self.engine.state
            if not state.remembers_files() or (
                state.remembers_files(walk_warmer.COLD_WALK_FILES) and walk_warmer.cold(folders)
            ):
                warmer = walk_warmer.start(folders)
            else:
                split = state.remembers_files(forked_walk.WORTH_FILES)
        try:
            found = list(resources.scan(self.engine.root, sel, skipped, split))
        finally:
            walk_warmer.stop(warmer)
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
        reader = self.engine.reader
        worker = reader.summary_worker(changed) if summaries else None
        # Small files are read on one thread: their work is mostly Python's, under the
        # interpreter lock, and with two threads taking it in turn at each read's system
        # call a first push of 50,000 small files took 12.6 s instead of 8.6 s. A bigger
        # file's hashing, compression and sealing let go of the lock: those use every core.
        # Thousands of them are read by worker processes, one thread talking to each.
        readers = reader.read_workers(changed) if keep_sealed is not None else None
        cores = os.cpu_count() or 1
        with (
            _closing(readers),  # left last: once no thread still talks to them
            ThreadPoolExecutor(max_workers=cores) as pool,
            ThreadPoolExecutor(max_workers=2 * readers.count if readers else 1) as small_files,
            _closing(worker),
        ):
            reads: list[Future[list[FileRead]]] = []
            # Bigger files are read one at a time, newest first, by as many readers as cores
            # taking the next in turn: a task each held a Future, its lock and condition
            # (~60 MiB for the 20,000 files over 64 KiB of the `huge` bench set), and
            # tasks of several files would seal files far apart in time together.
            bigger = InTurn([item for item in changed if item[0].st.st_size >= SMALL_READ])
            try:
                try:
                    if bigger:
                        marks = reader.marks_of(bigger.items) if summaries else None
                        args = (bigger, marks, keep, worker)
                        for _ in range(min(cores, len(bigger.items))):
                            reads.append(pool.submit(reader.read_in_turn, *args))
                    for batch in _small_batches(changed):
                        marks = reader.marks_of(batch) if summaries else None
                        if readers is not None:
                            args = (readers, batch, marks, keep, keep_sealed, worker)
                            task = small_files.submit(reader.read_batch_elsewhere, *args)
                        else:
                            task = small_files.submit(reader.read_batch, batch, marks, keep, worker)
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
                    summary, mark = reader.summary_of(read, outcome, worker)
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
            "pushing", sum(new_bytes(f.st, c) for f, _, c in changed)
        )

        def keep(blob_id: str, data: memoryview) -> None:
            sink(blob_id, data)
            advance(len(data))

        def keep_sealed(chunks: list[tuple[str, bytes]], length: int) -> None:
            sink.take_sealed(chunks)
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
