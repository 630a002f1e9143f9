"""Sending a push's data: the chunks its scan cuts go straight to the pack writer
(NewChunks), what the scan did not seal is read again and added (a file that changed
meanwhile waits for the next push), and just before the snapshot is written, the packs it
leans on are checked to be still there (a prune may have run during a long push)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from claude_sync.errors import BackendError
from claude_sync.meanwhile import meanwhile
from claude_sync.planner import LocalFile, Plan
from claude_sync.repository import BlobLocation, PackWriter, group_by_pack

if TYPE_CHECKING:
    from claude_sync.engine import Engine


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

    def take_sealed(self, chunks: list[tuple[str, bytes]]) -> None:
        """Chunks a read worker sealed already."""
        wanted = [(blob_id, sealed) for blob_id, sealed in chunks if self._wanted(blob_id)]
        if wanted:
            with self._sending():
                self._writer.add_sealed(wanted)

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


def in_head(plan: Plan) -> set[str]:
    """The blobs the head lists for the paths a push uploads (an appended transcript's old
    chunks): no prune takes them from under a head that lists them (it keeps the newest
    snapshot's blobs, even in a pack it marked), so their packs need no look at the marks.
    A blob shared with another of the head's files is not among them: finding it would
    take decoding the whole list."""
    head = plan.head.files if plan.head else {}
    return {b for p in plan.upload if (e := head.get(p)) for b, _ in e.chunks}


class Uploads:
    """The engine's sending of a push's data."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upload(self, plan: Plan, writer: PackWriter, warnings: list[str]) -> None:
        # What the scan sealed is on its way: only the rest may need reading.
        pending = writer.pending
        rest = {b for f in plan.upload.values() for b, _, _ in f.cached.chunks if b not in pending}
        if not rest:
            return
        packs = self.engine.state.blob_packs(rest)
        # Packs marked by prune may vanish: never lean on a blob stored only there. The
        # head's blobs for the same paths are kept by any prune (see in_head): the marks,
        # a request, are read only for the others. A blob in no index is sent again either
        # way, the head's too: a pack that `repair` dropped is healed by the next push.
        held = in_head(plan)
        lean = any(b not in held and b in packs for b in rest)
        doomed = self.engine.repo.marked_packs() if lean else set()

        def is_new(blob_id: str) -> bool:
            if blob_id in writer.pending:
                return False
            pack = packs.get(blob_id)
            return pack is None or (blob_id not in held and pack in doomed)

        todo = [f for f in plan.upload.values() if any(is_new(b) for b, _, _ in f.cached.chunks)]
        todo.sort(key=lambda f: -f.cached.stat.mtime_ns)  # newest first, as the scan
        # What is sent, not the files' sizes: an append to a big transcript sends its end.
        new = {b: length for f in todo for b, _, length in f.cached.chunks if is_new(b)}
        advance = self.engine.reporter.progress("uploading", sum(new.values()))
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
            if f.path in self.engine.filters:
                content = self.engine.reader.logical_bytes(f.path, f.abspath)

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

    def data_still_there(
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
        relied = {b for f in plan.upload.values() for b, _, _ in f.cached.chunks} - in_head(plan)
        # Where the blobs this round wrote went, its indexes say: only the others are looked
        # up (a first push of 50,000 files asked the cache for each). Not earlier rounds':
        # their packs may be the ones a prune took.
        packs: set[str] = set()
        for locations in written.values():
            packs.update(loc.pack for b, loc in locations.items() if b in relied)
            relied.difference_update(locations)
        packs.update(self.engine.state.blob_packs(relied).values())
        if not packs:
            return True
        # The prune marks are read while the packs are looked up: a request's wait less,
        # at the cost of looking up a marked pack too (it is gone either way).
        marks = meanwhile(self.engine.repo.marked_packs, self.engine.repo.parallel > 1)
        missing = self.engine.repo.missing_objects(packs)
        gone = (packs & marks()) | missing
        if not gone:
            return True
        for name, locations in list(written_indexes.items()):
            if any(loc.pack in missing for loc in locations.values()):
                kept = {b: loc for b, loc in locations.items() if loc.pack not in missing}
                del written_indexes[name]
                if kept:
                    replacement = self.engine.repo.write_index(
                        {
                            pack: [(b, loc.offset, loc.length) for b, loc in blobs.items()]
                            for pack, blobs in group_by_pack(kept.items()).items()
                        }
                    )
                    written_indexes[replacement] = kept
                self.engine.repo.delete_objects([name])
        with self.engine.state.transaction():
            lost = self.engine.state.forget_packs(gone)
        writer.pending -= lost
        return False
