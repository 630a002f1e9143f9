"""Bringing stored files here: every blob downloaded and verified, or read from a copy
here that holds it, and written straight into a temporary file beside its destination.
Nothing is moved into place until every file of the call is whole (the engine installs).
Also where a pull may write (never through a link out of the Claude folder), and the
local cache of the repository's indexes that says which pack holds each blob."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from claude_sync import identity, limits, portable, resources
from claude_sync.durable import WriteBack, fsync_path
from claude_sync.errors import CorruptionError, ObjectNotFoundError, SyncError, no_space
from claude_sync.model import BlobLocation
from claude_sync.open_worker import (
    OPEN_WORKERS_FROM_BYTES,
    OPEN_WORKERS_FROM_FILES,
    PackOpeners,
    Place,
    write_places,
)
from claude_sync.pathmap import FileFilter, read_logical
from claude_sync.planner import LocalFile, Merge
from claude_sync.repository import FileEntry, Repository, group_by_pack
from claude_sync.repository.kept_packs import KEPT_PACKS
from claude_sync.repository.packs import Handover
from claude_sync.resources import TMP_MARKER
from claude_sync.state import State
from claude_sync.write_worker import CREATE, FileWriters, for_workers, open_creating

if TYPE_CHECKING:
    from claude_sync.engine import Reporter, Result

#: the longest name of a temporary file beside a pulled one (StagedFile.tmp, or a rename's)
TMP_NAME_ROOM = 64


FSYNC_EACH_UP_TO = 16


INDEX_READ_ATTEMPTS = 3


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


def _path_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        return 4096  # Linux's; pathconf is not on every system


def remove_quietly(path: str) -> None:
    # Any error: the files after it must still be removed (one whose folder could not be
    # made was never there).
    with contextlib.suppress(OSError):
        os.unlink(path)


def open_new(path: str) -> Any:
    """A temporary output for writing whole, created (with its folder) if needed; never
    through a symlink."""
    fh = os.fdopen(open_creating(path, CREATE), "wb")
    fh.truncate()  # a failed pull's, left to be taken up again (see staged_files)
    return fh


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
    above: set[Path] = set()  # the folders filled and those they are in
    for folder in filled:
        # up to the first one met already: folders share their parents
        while folder not in above:
            above.add(folder)
            if folder.parent == folder:
                break
            folder = folder.parent
    for folder in sorted(new - above, key=lambda f: len(f.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def sync_dirs(dirs: set[Path]) -> None:
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
    # What cannot be looked at (missing, mostly): nothing below it is looked at either. A
    # first pull's folders do not exist yet, and each lstat of one failed (15,000 of them).
    absent: set[str] = set()

    def resolve(path: str) -> str:
        if (known := real.get(path)) is None:
            parent, name = os.path.split(path)
            if not name or parent == path:
                known = os.path.realpath(path)
            else:
                above = resolve(parent)
                known = os.path.join(above, name)
                if above in absent:
                    absent.add(known)
                else:
                    try:
                        if stat.S_ISLNK(os.lstat(known).st_mode):
                            known = os.path.realpath(known)
                    except (OSError, ValueError):  # as os.path.islink: not a link
                        absent.add(known)
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


def _with_parents(folders: set[Path], root: Path) -> list[str]:
    """folders and those they are in below root, each after the one it is in: made in this
    order, none is tried before its parent is there (a first pull's 15,000 folders were
    6,700 failed mkdir calls more)."""
    top = str(root)
    below = top.rstrip(os.sep) + os.sep
    every: set[str] = set()
    for path in folders:
        folder = str(path)
        while folder not in every and folder.startswith(below):
            every.add(folder)
            folder = os.path.dirname(folder)
        every.add(folder)  # a folder outside root, or root itself: made if missing
    return sorted(every, key=lambda f: f.count(os.sep))


def _make_folder(folder: str, made: set[Path]) -> None:
    """folder, and those it is in, unless it is there; adds those it made to made. (Not
    Path.mkdir: a pull can make 15,000 folders, and its path handling cost more than the
    system calls.)"""
    try:
        os.mkdir(folder)
    except FileExistsError:
        if not os.path.isdir(folder):
            raise
        return
    except FileNotFoundError:
        parent = os.path.dirname(folder)
        if parent == folder:
            raise
        _make_folder(parent, made)
        try:
            os.mkdir(folder)
        except FileExistsError:  # made meanwhile, by someone else
            if not os.path.isdir(folder):
                raise
            return
    made.add(Path(folder))


def _read_prefix(path: str, size: int) -> bytes:
    """The first size bytes of a temporary file (never through a symlink)."""
    flags = os.O_RDONLY | portable.O_NOFOLLOW | portable.O_CLOEXEC | portable.O_BINARY
    with os.fdopen(os.open(path, flags), "rb") as fh:
        return fh.read(size)


class Downloads:
    """The downloads of one engine: its repository, state and filters, and the mtime a
    placed file gets (the session policy's, which a command may change)."""

    def __init__(
        self,
        repo: Repository,
        state: State,
        filters: Mapping[str, FileFilter],
        reporter: Reporter,
        work_dir: Path,
        placed_mtime: Callable[[str, int], int],
    ) -> None:
        self.repo = repo
        self.state = state
        self.filters = filters
        self.reporter = reporter
        self.work_dir = work_dir
        self.placed_mtime = placed_mtime
        #: read a few blobs of a big pack by range (see reading_by_range)
        self._by_range = False

    def packs_kept(self) -> contextlib.AbstractContextManager[None]:
        """A pull or restore: the packs its code guard reads whole are kept for the rest of
        it (see KeptPacks)."""
        return self.repo.packs_kept(self.work_dir / KEPT_PACKS)

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
        folders: set[Path] | None = None,
        writers: FileWriters | None = None,
    ) -> Iterator[list[StagedFile]]:
        """Download and verify every output into a temporary file beside its destination,
        all before the caller moves any into place; the temporary files still in the list
        afterwards are removed (the caller takes out those it moved). With `partial`,
        outputs whose data cannot be had are left out and named in result.unavailable.
        here: the files the scan saw here, whose chunks need not be downloaded. made: the
        folders made for this call, where no earlier one can have left anything.
        resumable (a pull into the Claude folder): when the download or the caller fails
        or is interrupted (but for a full disk), the temporary files stay; a scan removes them
        once they are STALE_TMP_SECONDS old. Any call takes the chunks that such files
        hold, each checked against its id at its place, instead of downloading them again.
        folders: the outputs' folders, when the caller has them (a second set of them was
        4 MiB of a 50,000-file pull's peak). writers: worker processes that write the
        files of one chunk (see write_worker)."""
        staged: list[StagedFile] = []
        # One fsync per file costs more than everything else on a fresh pull of thousands
        # of files: past a few files, one sync of the filesystem makes them all durable.
        each = len(outputs) <= FSYNC_EACH_UP_TO
        if each:
            writers = None  # each file is synced by itself, here
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
            if big:
                outputs = {path: out for path, out in outputs.items() if path not in big}
                folders = None
        if folders is None:
            folders = folders_of(dest for dest, _ in outputs.values())
        keep = False  # the temporary files, for the next pull
        try:
            _check_inside(allowed, folders, root)
            staged += (StagedFile(path, dest, entry) for path, (dest, entry) in outputs.items())
            held = self._take_up_leftovers(staged, folders - (made or set()))
            sizes = [(s.path, s.entry.size) for s in staged]
            try:
                limits.check_room(sizes, root, held)
            except SyncError:
                # The packs a pull keeps to read again (see KeptPacks) give their room first.
                if not self.repo.drop_kept_packs():
                    raise
                limits.check_room(sizes, root, held)
            try:
                lost = self._download_into(staged, result, partial, here or {}, writers)
            except BaseException as exc:
                # A full disk must get its space back: the next pull may be hours away.
                keep = resumable and no_space(exc) is None
                raise
            for s in staged if lost else ():
                if s.path in lost:
                    remove_quietly(s.tmp)
                    result.unavailable.append(s.path)
                    result.warnings.append(f"{s.path} could not be downloaded: {lost[s.path]}")
            if lost:
                staged[:] = [s for s in staged if s.path not in lost]
            for s in staged:
                if writers is not None and self._whole_in_one(s):
                    continue  # its mode and time came with its bytes
                tmp = s.tmp
                if not s.entry.chunks:
                    open_new(tmp).close()
                if each:
                    fsync_path(tmp)
                portable.set_mode(tmp, resources.capped_mode(s.path, s.entry.mode))
                mtime = self.placed_mtime(s.path, s.entry.mtime_ns)
                os.utime(tmp, ns=(mtime, mtime))
            _check_inside(allowed, folders, root)
            if not each:
                portable.sync_all(s.tmp for s in staged)
            try:
                yield staged
            except BaseException as exc:
                # Cut off while they were moved into place: those not moved yet are whole
                # and checked, and the next pull takes them up rather than download them
                # again.
                keep = resumable and no_space(exc) is None
                raise
        finally:
            if not keep:
                for s in staged:
                    remove_quietly(s.tmp)

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
                remove_quietly(s.tmp)
            elif found := left.pop((folder, os.path.basename(s.tmp)), None):
                staged[i] = s._replace(left=found[0])
                # Not more than the file takes: a longer one is cut after the download.
                held += min(found[1], s.entry.size)
        for folder, name in left:
            remove_quietly(os.path.join(folder, name))  # a claude-sync's that died: none runs now
        return held

    def drop_unwritable(
        self,
        outputs: dict[str, tuple[str, FileEntry]],
        root: Path,
        result: Result,
        folders: set[Path] | None = None,
    ) -> tuple[list[str], set[Path]]:
        """Take out of outputs (to be written under root; folders: theirs, when known) the
        files whose folder cannot be written here, each with a warning; returns their
        paths, and the folders made for the others (those they are in too). One such
        folder (not writable, a link out, a path too long for this machine) must not stop
        the rest. The other folders exist afterwards: staged_files looks at them again."""
        if folders is None:
            folders = folders_of(dest for dest, _ in outputs.values())
        unwritable, made = self._unwritable(folders, self._allowed_roots(root), root)
        dropped = []
        for path, (dest, _) in list(outputs.items()) if unwritable else ():
            if (why := unwritable.get(Path(os.path.dirname(dest)))) is not None:
                result.warnings.append(f"cannot write {path}: {why}; skipped")
                del outputs[path]
                dropped.append(path)
        return dropped, made

    def _allowed_roots(self, root: Path) -> list[Path]:
        """Where writes may land: root, and the targets of its linked top-level resources
        (the folder of a linked file)."""
        allowed = [root.resolve()]
        for target in resources.linked_tops(root).values():
            allowed.append(Path(target) if os.path.isdir(target) else Path(target).parent)
        return allowed

    def _unwritable(
        self, folders: set[Path], allowed: list[Path], root: Path
    ) -> tuple[dict[Path, str], set[Path]]:
        """Why files cannot be written in some of these folders (allowed: see
        _allowed_roots), and the folders made for the others, which exist afterwards. All
        at once: a pull can write into thousands of folders, and each check resolves the
        parts of a path they share."""
        # Before they are made: mkdir must not follow a link out to create folders. (Once
        # they exist, staged_files looks again, before it writes anything in them.)
        why = _outside(allowed, folders, root)
        made: set[Path] = set()
        wanted = folders - why.keys()
        for folder in _with_parents(wanted, root):
            try:
                _make_folder(folder, made)
            except OSError as exc:
                if (path := Path(folder)) in wanted:
                    why[path] = f"{folder} cannot be created ({exc.strerror})"
        for folder in folders - why.keys():
            if not os.access(folder, os.W_OK | os.X_OK):
                why[folder] = f"{folder} is not writable"
            elif len(os.fsencode(folder)) + TMP_NAME_ROOM >= _path_max(folder):
                # A longer home than the machine that pushed it: the file's temporary
                # name beside it would be too long a path.
                why[folder] = f"{folder} is too long a path here"
        return why, made

    def _download_into(
        self,
        staged: list[StagedFile],
        result: Result,
        partial: bool,
        here: Mapping[str, LocalFile],
        writers: FileWriters | None = None,
    ) -> dict[str, str]:
        """Write each downloaded blob straight to its place in every temporary file that
        holds it: no staging copy, and packs are read in parallel. A blob's id is a MAC of
        its content, checked on download, and the snapshot lists the ids of each file, so a
        file made of checked blobs of the listed lengths is the file the snapshot describes.
        Blobs a file here already holds (here: as the scan saw them), or the temporary file
        a failed pull left (StagedFile.left), are read from it and checked the same way,
        not downloaded. Filtered files are written as stored, then read back whole, their
        hash checked, and written again as they are here. writers: who writes a file of one
        chunk, whole, with its mode and time. With `partial`, returns the paths whose data
        could not be had, with why."""
        # Where each blob goes: one place, or a list of them when files share it (a list per
        # blob cost a pull of 50,000 small files 3 MiB more at its peak).
        places: dict[str, _Place | list[_Place]] = {}
        for s in staged:
            offset = 0
            for blob, length in s.entry.chunks:
                place = (s, offset, length)
                known = places.setdefault(blob, place)
                if isinstance(known, list):
                    known.append(place)
                elif known is not place:
                    places[blob] = [known, place]
                offset += length

        def places_of(blob_id: str) -> list[_Place]:
            found = places.get(blob_id, [])
            return [found] if isinstance(found, tuple) else found

        def whole(s: StagedFile) -> tuple[int, int] | tuple[None, None]:
            """The mode and mtime of a file written whole, with them (by the write
            workers, or an open worker); (None, None) for one written a blob at a time."""
            if writers is None or not self._whole_in_one(s):
                return None, None
            mode = portable.file_mode(resources.capped_mode(s.path, s.entry.mode))
            return mode, self.placed_mtime(s.path, s.entry.mtime_ns)

        def deliver(blob_id: str, data: bytes, source: tuple[str, int] | None = None) -> None:
            for s, offset, length in places_of(blob_id):
                if len(data) != length:
                    raise CorruptionError("a blob does not have the length its snapshot says")
                tmp = s.tmp
                if source == (tmp, offset):
                    continue  # read from there: it is in place
                mode, mtime = whole(s)
                if writers is not None and mode is not None and mtime is not None:
                    writers.write(tmp, data, mode, mtime)
                else:
                    write_places(data, [(tmp, offset, length, None, None)])
                if write_back is not None:
                    write_back.wrote(length, offset == 0)

        def written_at(blob_id: str) -> list[Place]:
            return [(s.tmp, offset, length, *whole(s)) for s, offset, length in places_of(blob_id)]

        def handover(
            pack: str, wanted: dict[str, BlobLocation], pieces: Iterator[bytes]
        ) -> bool | Iterator[bytes]:
            """A whole pack's blobs opened and written by an open worker (see open_worker
            and Packs.read_packs)."""
            assert openers is not None
            # Made as they are sent (see PackOpeners.open).
            blobs = (
                (blob_id, loc.offset, loc.length, written_at(blob_id))
                for blob_id, loc in wanted.items()
            )
            size = starts = 0
            for blob in wanted:
                for _, offset, length in places_of(blob):
                    size += length
                    starts += offset == 0
            taken = openers.open(pack, blobs, pieces)
            if taken is True and write_back is not None:
                write_back.wrote(size, starts)
            return taken

        lost_blobs: dict[str, str] = {}
        wanted = set(places)
        versions = ((s.path, s.entry) for s in staged)
        # (Up to FSYNC_EACH_UP_TO files, each is synced by itself, not the machine's disks.)
        many = len(staged) > FSYNC_EACH_UP_TO
        openers: PackOpeners | None = None
        with WriteBack() if many else contextlib.nullcontext() as write_back:
            try:
                wanted -= self.deliver_from_here(wanted, here, deliver, versions, staged)
                openers = self._pack_openers(wanted, places_of)
                self.download(
                    wanted,
                    deliver,
                    result,
                    lost=lost_blobs if partial else None,
                    handover=None if openers is None else handover,
                )
                if writers is not None:
                    writers.written()
            except BaseException:
                # Nothing more is written once the caller cleans up.
                for workers in (writers, openers):
                    if workers is not None:
                        workers.stop()
                raise
            finally:
                if openers is not None:
                    openers.close()
        for s in staged:
            if s.left > s.entry.size and s.path not in self.filters:
                os.truncate(s.tmp, s.entry.size)  # what was there past its end is no part
        lost: dict[str, str] = {}
        for s in staged if lost_blobs else ():
            why = next((lost_blobs[b] for b, _ in s.entry.chunks if b in lost_blobs), None)
            if why is not None:
                lost[s.path] = why
        # A filtered file's blobs went to its temporary file like any other's, not into
        # memory until the last pack came: a prompt history of megabytes was held there all
        # through the download (~10 MiB of a fresh pull's peak). Read back, it is checked
        # whole before its local form replaces it (what a failed pull left past its end is
        # not read).
        for s in staged:
            path, dest, entry = s.path, s.dest, s.entry
            if path in self.filters and path not in lost:
                data = _read_prefix(s.tmp, entry.size) if entry.chunks else b""
                if identity.of(self.repo.keys.file_hash, data, entry.sha256) != entry.sha256:
                    raise CorruptionError(
                        f"data for {os.path.basename(dest)} does not match its snapshot entry"
                    )
                with open_new(s.tmp) as fh:
                    self.filters[path].write_local(data, fh)
        return lost

    def _pack_openers(
        self, wanted: set[str], places_of: Callable[[str], list[_Place]]
    ) -> PackOpeners | None:
        """Open workers for a download that writes many bytes or files (see open_worker);
        None where they would not pay, or cannot start (the pull then opens every pack)."""
        if portable.WINDOWS:
            return None
        files = {s.path for blob in wanted for s, _, _ in places_of(blob)}
        size = sum(length for blob in wanted for _, _, length in places_of(blob))
        if size < OPEN_WORKERS_FROM_BYTES and len(files) < OPEN_WORKERS_FROM_FILES:
            return None
        try:
            return PackOpeners(self.repo.keys)
        except (OSError, ValueError):
            return None

    def _whole_in_one(self, s: StagedFile) -> bool:
        """Whether a staged file is written whole by the write workers (see FileWriters): a
        small one of one chunk, nothing a failed pull left to take up, no filter to write
        it again."""
        return (
            for_workers(s.entry.size, len(s.entry.chunks))
            and not s.left
            and s.path not in self.filters
        )

    def deliver_from_here(
        self,
        wanted: set[str],
        here: Mapping[str, LocalFile],
        deliver: Callable[[str, bytes, tuple[str, int] | None], None],
        versions: Iterable[tuple[str, FileEntry]],
        staged: Iterable[StagedFile] = (),
    ) -> set[str]:
        """Hand deliver the wanted blobs that the copies here of versions' files hold,
        read from them and checked against their ids, with where each was read (None for
        a filtered file's, made from its copy); returns those delivered. A
        transcript that grew on another machine then costs a pull its new chunks, not the
        whole file again. So do the staged files' temporary files that a pull which
        failed or was killed left (StagedFile.left): a pull started again downloads only
        what is not there yet. A copy is looked at for its own chunks (as the scan saw them,
        here) and for the version's chunks at their places: it may hold them though it was
        cut otherwise (a merge base whose short last chunk the copy here cut again with its
        own append). A filtered file's chunks are of its logical form: they are looked for
        in the copy here made logical again (a prompt history that grew elsewhere, merged
        with this machine's, costs the new prompts, not the whole history). A file changed
        since the scan fails the check: its blobs are downloaded."""
        # Only the copies of the files wanted: a pull into a tree of 50,000 files must not
        # look through every file's chunks to bring one.
        sources: dict[str, set[tuple[str, int, int]]] = {}
        logical: dict[str, tuple[str, set[tuple[str, int, int]]]] = {}
        for path, entry in versions:
            f = here.get(path)
            if f is None:
                continue
            chunks = {c for c in (*f.cached.chunks, *entry.located_chunks()) if c[0] in wanted}
            if path in self.filters:
                logical.setdefault(path, (f.abspath, set()))[1].update(chunks)
                continue
            for blob_id, offset, length in chunks:
                if offset + length <= f.cached.stat.size:
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
        for path, (abspath, chunks) in logical.items():
            try:
                data = read_logical(abspath, self.filters[path])
            except OSError:
                continue
            view = memoryview(data)
            for blob_id, offset, length in sorted(chunks, key=lambda c: c[1]):
                piece = view[offset : offset + length]
                fits = blob_id not in delivered and len(piece) == length
                if fits and self.repo.keys.names(blob_id, piece):
                    deliver(blob_id, bytes(piece), None)
                    delivered.add(blob_id)
        return delivered

    def download(
        self,
        needed: set[str],
        deliver: Callable[[str, bytes], None],
        result: Result,
        allow_missing: bool = False,
        lost: dict[str, str] | None = None,
        handover: Handover | None = None,
    ) -> None:
        """Hand every needed blob, verified, to deliver (from several threads at once).
        With allow_missing, blobs no index knows (a pruned merge base) are left out. With
        `lost`, blobs that cannot be had (in no index, or in a damaged or missing pack) are
        put there with the reason, and the rest is still delivered. handover: offered each
        whole pack first (see Packs.read_packs)."""
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

        def handed(
            pack: str, wanted: dict[str, BlobLocation], pieces: Iterator[bytes]
        ) -> bool | Iterator[bytes]:
            assert handover is not None
            # The bar moves as the pack's pieces go to its worker, up to the bytes wanted
            # from it: a pack at a time, it stood still for seconds on a slow link.
            left = sum(loc.length for loc in wanted.values())
            counting = True

            def counted() -> Iterator[bytes]:
                nonlocal left
                for piece in pieces:
                    if counting and (step := min(len(piece), left)):
                        left -= step
                        advance(step)
                    yield piece

            taken = handover(pack, wanted, counted())
            if taken is True and left:
                advance(left)
            counting = False  # (opened here instead: each blob counts itself)
            return taken

        def damaged(pack: str, exc: SyncError) -> None:
            assert lost is not None
            lost.update(dict.fromkeys(packs[pack], str(exc)))

        # Only on demand (resume, resolve, merges, a pull of some paths): a pull of all
        # reads whole packs, so that a flipped byte anywhere in one is seen, and the files
        # that need it are named, at once.
        extents = self.state.pack_extents(packs) if self._by_range else None
        self.repo.read_packs(
            packs,
            keep,
            None if lost is None else damaged,
            extents,
            None if handover is None or extents is not None else handed,
        )
        result.downloaded_bytes += self.repo.downloaded_bytes - received_before

    @contextlib.contextmanager
    def reading_by_range(self) -> Iterator[None]:
        """Downloads meanwhile read a few blobs of a big pack by range, each authenticated,
        instead of the whole pack (see download)."""
        self._by_range = True
        try:
            yield
        finally:
            self._by_range = False

    def file_bytes(self, entry: FileEntry, result: Result) -> bytes:
        """One stored file's content, downloaded and verified, in memory."""
        pieces: dict[str, bytes] = {}
        self.download({blob for blob, _ in entry.chunks}, pieces.__setitem__, result)
        return b"".join(pieces[blob] for blob, _ in entry.chunks)

    def fetch_blobs(
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
        deliver_from_here): both sides of a transcript merge share its old records."""
        staging = self.work_dir / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, mode=0o700)

        def keep(blob_id: str, data: bytes, source: object = None) -> None:
            (staging / blob_id).write_bytes(data)

        needed = {blob for e in entries for blob, _ in e.chunks}
        merges = merges or {}
        here = {path: merge.local for path, merge in merges.items()}
        versions = [(p, e) for p, (_, base, remote) in merges.items() for e in (base, remote) if e]
        needed -= self.deliver_from_here(needed, here, keep, versions)
        # A few files' versions (a merge's, settings.json's): often a few blobs of the big
        # pack a first push made.
        with self.reading_by_range():
            self.download(needed, keep, result, allow_missing, lost)
        return staging
