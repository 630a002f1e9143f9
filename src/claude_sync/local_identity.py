"""This machine's files set against versions whose identity is of another kind (identity.py).

In a repository whose writers went over to keyed-BLAKE3 identities, a file read anew here gets
one, while its merge base or the remote version may still carry the SHA-256 it was stored
under. Equal content must not look changed (a push of nothing new, or a conflict on a
machine joining with the same files), so before a plan a local file whose id is of the other
kind than its base's or the remote version's, at the same size, is read and hashed in that
kind; if it is that version, it takes its id (here and in the state, so it is read once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from claude_sync import identity
from claude_sync.chunking import read_blocks
from claude_sync.merging import synced_part
from claude_sync.planner import LocalFile, LocalView
from claude_sync.state import Bases, CachedFile

if TYPE_CHECKING:
    from claude_sync.engine import Engine
    from claude_sync.repository import FileEntry, Snapshot


class LocalIdentities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def align(
        self, view: LocalView, bases: Bases | None, head: Snapshot | None, pull: bool = False
    ) -> None:
        """Give each file of view the id of its base or remote version when it is that
        content, and a base the remote version's id when it is that version (see the
        module's docstring). pull: for a pull's plan, which reads the whole remote list
        anyway, every base is looked at, not only those of files changed or gone here."""
        files = head.files if head is not None else {}
        if bases:
            self._relabel_bases(view, bases, files, pull)
        found = identity.to_align(
            view.files,
            bases.sha if bases else _none,
            bases.get if bases else _none,
            files.get,
        )
        aligned: list[tuple[str, CachedFile]] = []
        for path, ids in found.items():
            local = view.files[path]
            other = self.which(path, local, ids)
            if other is not None:
                c = local.cached
                cached = CachedFile(c.stat, c.mode, other, c.raw_chunks)
                view.files[path] = local._replace(cached=cached)
                aligned.append((path, cached))
        if aligned:
            with self.engine.state.transaction():
                self.engine.state.remember_files(aligned)

    def _relabel_bases(
        self, view: LocalView, bases: Bases, files: Mapping[str, FileEntry], every: bool
    ) -> None:
        """A base whose remote version is the same content under an id of the other kind
        (another machine changed the file and changed it back since the upgrade) takes
        that id: else a change here, or a deletion, would look like a conflict with a
        change there, and an unchanged file would be pulled again. Equal chunk lists prove
        equal content. Unless every, only files changed or gone here are looked up (a push
        reads only the groups it changes)."""
        relabelled = []
        for path in bases:
            mine = view.files.get(path)
            ours = bases.sha(path)
            if ours is None or (not every and mine is not None and mine.sha256 == ours):
                continue
            theirs = files.get(path)
            if (
                theirs is not None
                and identity.kind_of(theirs.sha256) != identity.kind_of(ours)
                and theirs.size == bases[path].size
                and theirs.chunks == bases[path].chunks
            ):
                bases.relabel(path, theirs)
                relabelled.append((path, theirs.sha256))
        if relabelled:
            with self.engine.state.transaction():
                for path, file_id in relabelled:
                    self.engine.state.relabel_base(path, file_id)

    def names(self, local: LocalFile, file_id: str | None) -> bool:
        """Whether file_id names the content of the local file as it was scanned."""
        if file_id is None or local.sha256 == file_id:
            return file_id is not None
        if identity.kind_of(local.sha256) == identity.kind_of(file_id):
            return False
        return self.which(local.path, local, [file_id]) is not None

    def which(self, path: str, local: LocalFile, ids: list[str]) -> str | None:
        """The first of ids that names the file's content, if it is still what was scanned."""
        new_hash = self.engine.repo.keys.file_hash
        try:
            if path in self.engine.filters:  # its logical form is made in memory
                data = self.engine.reader.logical_bytes(path, local.abspath)
                return identity.same_content(
                    new_hash, [synced_part(path, local, data)], local.sha256, ids
                )
            # A record still being written at the end is not part of what was scanned.
            size = local.entry().size if local.unfinished else None
            with open(local.abspath, "rb") as fh:
                return identity.same_content(new_hash, read_blocks(fh, size), local.sha256, ids)
        except OSError:
            return None  # what it holds is found out by the next scan


def _none(path: str) -> None:
    return None
