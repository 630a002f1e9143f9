"""Installing a pull: the files the downloads staged are moved into place, deletions and
merges written, and the new bases recorded, all in one transaction of the state. A file
that changed here since the scan is never overwritten: it is left for the next sync."""

from __future__ import annotations

import contextlib
import operator
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from claude_sync import casefold, identity, portable
from claude_sync.downloads import (
    StagedFile,
    folders_of,
    remove_unfilled,
    sync_dirs,
)
from claude_sync.durable import write_atomically
from claude_sync.identity import NewFileHash
from claude_sync.merge import is_transcript
from claude_sync.planner import LocalFile, LocalView, Plan
from claude_sync.reading import stat_key
from claude_sync.repository import FileEntry
from claude_sync.resources import CONFLICT_MARKER, TMP_MARKER
from claude_sync.state import CachedFile, StatKey
from claude_sync.write_worker import WORKER_FILES, FileWriters, Placed, for_workers

#: rows written to the state in one statement (a pull records thousands of files)
WRITE_BATCH = 1024

if TYPE_CHECKING:
    from claude_sync.engine import Engine, Result


class Installer:
    """The engine's installation of what its pulls bring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply_pull(
        self, plan: Plan, local: LocalView, result: Result, partial: bool = False
    ) -> None:
        """Write the plan's files; with `partial`, files whose data is damaged or missing in
        the repository are left out (and stay unpulled) instead of failing the pull."""
        assert plan.head is not None
        seq = plan.head.seq
        outputs = {
            path: (self.engine.local_abspath(path), entry) for path, entry in plan.write.items()
        }
        for path, free in casefold.renames_for(self.engine.root, plan.write, local.files).items():
            outputs[path] = (self.engine.local_abspath(free), outputs[path][1])
            result.warnings.append(f"{path} differs from another file only in case: kept as {free}")
        waiting = self.engine.state.conflicts() if plan.copies else {}
        for path, entry in plan.copies.items():
            copy = _copy_name(path, seq)
            earlier = waiting.get(path) or {}
            if (
                earlier.get("copy")
                and earlier.get("remote_sha256") == entry.sha256
                and self.engine.local_path(earlier["copy"]).exists()
            ):
                copy = earlier["copy"]  # the same remote version is beside it already
            else:
                outputs[copy] = (self.engine.local_abspath(copy), entry)
            for c in plan.conflicts:
                if c.path == path:
                    c.copy = copy
        # A file the pull deletes where a folder of files it writes goes must go first.
        if in_way := _in_the_way(plan.delete, plan.write):
            with self.engine.state.transaction():
                for path in in_way:
                    self.delete_here(path, local, seq, result, plan)
            plan.delete = [p for p in plan.delete if p not in in_way]
        folders = folders_of(dest for dest, _ in outputs.values())
        dropped, new_folders = self.engine.downloads.drop_unwritable(
            outputs, self.engine.root, result, folders
        )
        for path in dropped:
            plan.skipped.append(path)
            plan.write.pop(path, None)
        if dropped:
            folders = folders_of(dest for dest, _ in outputs.values())
        filled: set[Path] = set()  # folders something was moved into
        try:
            with (
                _file_writers(outputs, self.engine.filters) as writers,
                self.engine.downloads.staged_files(
                    outputs,
                    self.engine.root,
                    result,
                    partial,
                    local.files,
                    new_folders,
                    resumable=True,
                    folders=folders,
                    writers=writers,
                ) as staged,
            ):
                plan.skipped += [p for p in result.unavailable if p in outputs]
                filled = self.install(staged, local, plan, result, writers)
        finally:
            remove_unfilled(new_folders, filled)

    def install(
        self,
        staged: list[StagedFile],
        local: LocalView,
        plan: Plan,
        result: Result,
        writers: FileWriters | None = None,
    ) -> set[Path]:
        """Move verified files into place; a file that changed meanwhile is left alone.
        Those moved are taken out of staged (nothing is left to remove); returns the
        folders they went to. writers: worker processes that move the files whose place is
        as the scan saw it (the others are looked at here)."""
        assert plan.head is not None
        seq = plan.head.seq
        moved: set[str] = set()
        # The state's rows in the order of their key: 50,000 in another order took the
        # install's writes twice as long.
        staged.sort(key=_staged_path)
        with self.engine.state.transaction():
            # Recorded in one statement per part, in the same transaction: a pull of
            # thousands of files otherwise spends more on single-row writes than on the
            # files. Deletions first: a folder whose files went may be where a file now goes.
            for path in plan.delete:
                self.delete_here(path, local, seq, result, plan)
            # A part's rows are written while the workers move the next part's files: the
            # moves are the kernel's, the rows this thread's (50,000 small files: 0.8 s and
            # 1.0 s here, one after the other before).
            parts = [staged[i : i + WRITE_BATCH] for i in range(0, len(staged), WRITE_BATCH)]
            placed: dict[str, Placed] = {}
            for n, part in enumerate(parts):
                if writers is not None:
                    writers.send_moves(
                        (s.tmp, s.dest, _scanned_stat(local.files.get(s.path)))
                        for s in part
                        if s.path in plan.write
                    )
                if n:
                    self._record(parts[n - 1], placed, local, plan, result, moved)
                placed = writers.moved() if writers is not None else {}
            if parts:
                self._record(parts[-1], placed, local, plan, result, moved)
            for path, entry in plan.adopt.items():
                self.engine.state.set_base(path, entry, seq)
            for path, (data, remote) in plan.merged.items():
                if self.write_merged(path, data, local.files.get(path), result, remote):
                    self.engine.state.set_base(path, remote, seq)
                else:
                    plan.skipped.append(path)
            for path, data in plan.held.items():
                self.write_merged(path, data, local.files.get(path), result)
            # The renames must be on disk before the state says they happened.
            folders = folders_of(s.dest for s in staged)
            sync_dirs(folders)
        if len(moved) < len(staged):
            folders = folders_of(s.dest for s in staged if s.path in moved)
        staged[:] = [s for s in staged if s.path not in moved]
        return folders

    def _record(
        self,
        part: list[StagedFile],
        placed: dict[str, Placed],
        local: LocalView,
        plan: Plan,
        result: Result,
        moved: set[str],
    ) -> None:
        """Record the files of part the workers placed (placed: what each became, by
        dest); move those they did not, unless they changed since the scan (then say why)."""
        assert plan.head is not None
        pulled: list[tuple[str, CachedFile]] = []
        bases: list[tuple[str, FileEntry | None]] = []
        for s in part:
            path, dest, entry = s.path, s.dest, s.entry
            scanned = local.files.get(path)
            done = placed.get(dest)
            if done is None:
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
            self.engine.reporter.action("pull", path)
            if done is None:
                st = os.stat(dest)
                key, mode = stat_key(st), portable.mode_of(st)
            else:
                key, mode = StatKey(*done[0]), stat.S_IMODE(done[1])
            pulled.append((path, CachedFile(key, mode, entry.sha256, entry.located_chunks())))
            bases.append((path, entry))
            result.pulled.append(path)
        self.engine.state.remember_files(pulled)
        self.engine.state.set_bases(bases, plan.head.seq)

    def delete_here(
        self, path: str, local: LocalView, seq: int, result: Result, plan: Plan
    ) -> None:
        """Delete a file the pull removes, unless it changed since the scan; then the
        folders that held only it, up to its top folder (a file may take their name)."""
        dest = self.engine.local_path(path)
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
        self.engine.reporter.action("delete", path)
        self.engine.state.forget_file(path)
        self.engine.state.set_base(path, None, seq)
        result.deleted.append(path)
        top = self.engine.root / Path(self.engine.mapper.to_local(path)).parts[0]
        folder = dest.parent
        while folder != top and top in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                break  # not empty
            folder = folder.parent

    def write_merged(
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
        and the push sends the new records, not its old last chunk again. A filtered file
        keeps the remote version's chunks as far as they still match, wherever the merge
        put the new lines (Chunker.digest_bytes): a prompt history whose prompts from two
        machines interleave begins with neither."""
        dest = self.engine.local_path(path)

        def unchanged(tmp: Path) -> bool:
            if scanned is not None:
                portable.set_mode(tmp, scanned.cached.mode)
            return _unchanged_since_scan(dest, scanned)

        if path in self.engine.filters and remote is not None:
            grown_from: CachedFile | None = _as_read(
                remote.size, remote.sha256, remote.located_chunks()
            )
        else:
            grown_from = _begins_with(self.engine.repo.keys.file_hash, data, scanned, remote)
        data = self.engine.local_bytes(path, data)
        if not write_atomically(dest, data, prefix=f"{TMP_MARKER}-", before_rename=unchanged):
            result.warnings.append(f"{path} changed during the pull; it goes with the next sync")
            return False
        read = self.engine.reader.read(path, dest, dest.stat(), grown_from)
        cached = None if read is None else read[0]
        if cached is not None:
            self.engine.state.remember_file(path, cached)
        self.engine.reporter.action("merge", path)
        result.pulled.append(path)
        return True


_staged_path = operator.attrgetter("path")


def _begins_with(
    new_hash: NewFileHash, data: bytes, scanned: LocalFile | None, remote: FileEntry | None
) -> CachedFile | None:
    """The longest of the merged versions that data begins with, as a previous read of the
    file (see FileReader.read): its chunks stand, and only what follows is cut."""
    versions = []
    if remote is not None:
        versions.append((remote.size, remote.sha256, remote.located_chunks()))
    if scanned is not None:
        versions.append((scanned.entry().size, scanned.sha256, scanned.cached.chunks))
    view = memoryview(data)
    for size, sha, chunks in sorted(versions, key=lambda v: -v[0]):
        if 0 < size <= len(data) and identity.of(new_hash, view[:size], sha) == sha:
            return _as_read(size, sha, chunks)
    return None


def _as_read(size: int, sha: str, chunks: tuple[tuple[str, int, int], ...]) -> CachedFile:
    """A version, as a previous read of the file (see FileReader.read)."""
    return CachedFile(StatKey(size, 0, 0, 0), 0, sha, chunks)


def _copy_name(path: str, seq: int) -> str:
    """Where a conflict's remote version goes beside path: its name, cut short when the
    marker would make it longer than a file name may be (255 bytes)."""
    folder, _, name = path.rpartition("/")
    suffix = f"{CONFLICT_MARKER}-{seq}"
    room = 255 - len(suffix.encode())
    if len(name.encode()) > room:
        name = name.encode()[:room].decode(errors="ignore")
    return f"{folder}/{name}{suffix}" if folder else f"{name}{suffix}"


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


def _scanned_stat(scanned: LocalFile | None) -> tuple[int, int, int, int] | None:
    return None if scanned is None else tuple(scanned.cached.stat)  # type: ignore[return-value]


@contextlib.contextmanager
def _file_writers(
    outputs: dict[str, tuple[str, FileEntry]], filters: Mapping[str, object]
) -> Iterator[FileWriters | None]:
    """Write workers for a pull of many small files (see write_worker); None where
    they would not pay, or cannot start (the pull then writes them itself)."""
    whole = sum(
        1
        for p, (_, e) in outputs.items()
        if for_workers(e.size, len(e.chunks)) and p not in filters
    )
    writers = None
    if whole >= WORKER_FILES and not portable.WINDOWS:
        with contextlib.suppress(OSError, ValueError):
            writers = FileWriters()
    try:
        yield writers
    finally:
        if writers is not None:
            writers.close()


def _unchanged_since_scan(dest: str | Path, scanned: LocalFile | None) -> bool:
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        return scanned is None
    return scanned is not None and stat_key(st) == scanned.cached.stat


def _in_the_way(deleted: list[str], written: Iterable[str]) -> list[str]:
    """The files deleted whose path is a folder of files written."""
    if not deleted:
        return []  # (the folders of 50,000 files pulled are not gathered for nothing)
    above = {p[:i] for p in written for i, c in enumerate(p) if c == "/"}
    return [p for p in deleted if p in above]
