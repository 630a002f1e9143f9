"""A snapshot's file list as a push or pull reads it: a manifest group is decoded the first
time a path in it is asked for, and a new snapshot is its base plus what changed, so a push
that touches one project decodes that project's entries only (docs/FORMAT.md §6).

At 50,000 files, decoding the whole list costs ~0.6 s and ~90 MiB; a push of one appended
transcript needs one group of it."""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

from claude_sync import resources
from claude_sync.errors import CorruptionError
from claude_sync.model import FileEntry
from claude_sync.repository.format import grouped, manifest_group, piece_of

#: part names -> each part's "groups" object, as parsed
PartBodies = Callable[[list[str]], dict[str, dict[str, Any]]]
#: chunk list names -> each list's chunks, checked
ChunkLists = Callable[[list[str]], dict[str, tuple[tuple[str, int], ...]]]


class StoredFiles(Mapping[str, FileEntry]):
    """The file list of a stored snapshot, its groups decoded on demand (a big file's
    chunk lists with its group).

    A group's entries are checked as the whole list used to be at load (its paths in their
    own group, each claimed by a synced type, each entry consistent): a snapshot is refused
    by whoever reads the group that is wrong. Iterating decodes every group, so a pull (and
    anything that walks the list) refuses a bad snapshot before it writes anything."""

    def __init__(
        self,
        parts: dict[str, tuple[str, ...]],
        load: PartBodies,
        load_lists: ChunkLists,
        what: str,
    ) -> None:
        self.parts = parts
        self._load = load
        self._load_lists = load_lists
        self._what = what
        self._groups: dict[str, dict[str, FileEntry]] = {}
        self._all: dict[str, FileEntry] | None = None  # every group, once all are decoded
        self._bodies: dict[str, dict[str, Any]] = {}
        # Which groups still need a parsed part: it is dropped once they are decoded.
        self._waiting: dict[str, set[str]] = {}
        for group, names in parts.items():
            for name in names:
                self._waiting.setdefault(name, set()).add(group)

    def group(self, group: str) -> dict[str, FileEntry]:
        """A group's entries (empty for a group the snapshot does not have)."""
        found = self._groups.get(group)
        if found is None:
            self._decode([group] if group in self.parts else [])
            found = self._groups.get(group, {})
        return found

    def _decode(self, groups: list[str]) -> None:
        wanted = [g for g in groups if g not in self._groups]
        names = {n for g in wanted for n in self.parts[g] if n not in self._bodies}
        if names:
            self._bodies.update(self._load(sorted(names)))
        for group in wanted:
            self._groups[group] = self._decode_group(group)

    def _decode_group(self, group: str) -> dict[str, FileEntry]:
        what, pieces = self._what, self.parts[group]
        files: dict[str, FileEntry] = {}
        try:
            # Each part once, however many of the group's pieces it holds.
            for name in dict.fromkeys(pieces):
                for path, entry in self._bodies[name][group].items():
                    path = str(path)
                    if manifest_group(path) != group:
                        raise CorruptionError(f"{what} lists a file in the wrong manifest part")
                    # A part may also hold other pieces of the group (written by the same
                    # push) or pieces no snapshot uses any more: each piece is taken from
                    # the part its snapshot names for it.
                    if len(pieces) == 1 or pieces[piece_of(path, len(pieces))] == name:
                        files[path] = FileEntry.from_json(entry, what, lists_ok=True)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            raise CorruptionError(f"{what} is malformed") from None
        check_paths(files, what)
        listing = [e for e in files.values() if e.lists]
        if listing:
            listed = self._load_lists(sorted({n for e in listing for n, _, _ in e.lists}))
            for path, entry in files.items():
                if entry.lists:
                    files[path] = entry.with_listed(listed, what)
        for name in pieces:
            waiting = self._waiting.get(name)
            if waiting is not None:
                waiting.discard(group)
                if not waiting:
                    del self._waiting[name]
                    self._bodies.pop(name, None)
        return files

    def everything(self) -> dict[str, FileEntry]:
        """The whole list, every group decoded."""
        if self._all is None:
            self._decode(list(self.parts))
            self._all = {p: e for files in self._groups.values() for p, e in files.items()}
        return self._all

    def __getitem__(self, path: str) -> FileEntry:
        # Once all is decoded (a pull), a lookup per path is a plain dict's.
        if self._all is not None:
            return self._all[path]
        return self.group(manifest_group(path))[path]

    def __contains__(self, path: object) -> bool:
        if self._all is not None:
            return path in self._all
        return isinstance(path, str) and path in self.group(manifest_group(path))

    def __iter__(self) -> Iterator[str]:
        return iter(self.everything())

    def __len__(self) -> int:
        return len(self.everything())

    def keys(self) -> KeysView[str]:
        return self.everything().keys()

    def items(self) -> ItemsView[str, FileEntry]:
        return self.everything().items()

    def values(self) -> ValuesView[FileEntry]:
        return self.everything().values()


class ChangedFiles(Mapping[str, FileEntry]):
    """A new snapshot's file list: its base's, with some paths changed (None: removed).
    Writing it rewrites only the groups these paths are in."""

    def __init__(self, base: Mapping[str, FileEntry], changes: dict[str, FileEntry | None]):
        self.base = base
        self.changes = changes
        self._base_groups: dict[str, dict[str, FileEntry]] | None = None
        self._by_group: dict[str, dict[str, FileEntry | None]] = {}
        for path, entry in changes.items():
            self._by_group.setdefault(manifest_group(path), {})[path] = entry

    def touched(self) -> set[str]:
        """The groups the changes are in."""
        return set(self._by_group)

    def group(self, group: str) -> dict[str, FileEntry]:
        if isinstance(self.base, StoredFiles | ChangedFiles):
            files = dict(self.base.group(group))
        else:  # a plain dict, grouped once
            if self._base_groups is None:
                self._base_groups = grouped(dict(self.base))
            files = dict(self._base_groups.get(group, {}))
        for path, entry in self._by_group.get(group, {}).items():
            if entry is None:
                files.pop(path, None)
            else:
                files[path] = entry
        return files

    def __getitem__(self, path: str) -> FileEntry:
        if path in self.changes:
            entry = self.changes[path]
            if entry is None:
                raise KeyError(path)
            return entry
        return self.base[path]

    def __iter__(self) -> Iterator[str]:
        yield from (path for path in self.base if path not in self.changes)
        yield from (path for path, entry in self.changes.items() if entry is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def check_paths(files: Mapping[str, FileEntry], what: str) -> None:
    """Only paths some resource type claims can be in a snapshot: anything else (a credential
    file, a plugin cache, `..`) was put there to be written where it must not be."""
    for path in files:
        if resources.type_of(path) is None:
            raise CorruptionError(
                f"{what} lists a path no synced type claims ({path!r}); refusing it"
            )
