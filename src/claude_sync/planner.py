"""The sync decision, as pure functions: (local view, merge base, remote head) -> plan.

Every decision is three-way, per logical path: the local version (L), the version at the last
sync (the base, B) and the remote head's version (R). Only a path whose L differs from B has
something to push; only one whose R differs from B has something to pull; only one where both
differ, and differently, is a conflict.

Nothing here reads a file, the state or the backend: the engine scans, loads and transfers
around these functions, so they can be tested against any interleaving of machines.
A path the scan could not see this time (unreadable, emptied mid-write, a link it does not
follow) is *unknown*: it is neither pushed, nor deleted, nor overwritten, and its base stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from claude_sync import resources
from claude_sync.repository import FileEntry, Snapshot
from claude_sync.resources import ResourceType
from claude_sync.state import CachedFile


@dataclass(frozen=True)
class LocalFile:
    path: str
    abspath: str
    cached: CachedFile
    #: a transcript: its last record, while being written, is not part of what is synced
    append_only: bool = False

    @property
    def sha256(self) -> str:
        return self.cached.sha256

    @property
    def unfinished(self) -> bool:
        """Whether the file ends in a record still being written (not synced yet)."""
        return self.append_only and self.cached.stat.size > self.entry().size

    def entry(self) -> FileEntry:
        return FileEntry(
            sha256=self.cached.sha256,
            # The stored content's size: a filtered file's differs from its size on disk.
            size=sum(length for _, _, length in self.cached.chunks),
            mtime_ns=self.cached.stat.mtime_ns,
            mode=self.cached.mode,
            chunks=tuple((blob, length) for blob, _, length in self.cached.chunks),
        )


@dataclass
class LocalView:
    """What one scan saw: the files it read, and what exists but could not be seen."""

    files: dict[str, LocalFile] = field(default_factory=dict)
    #: logical paths that exist here but were not read this time
    unknown: set[str] = field(default_factory=set)
    #: logical folders that could not be listed (or links not followed): all below is unknown
    unknown_dirs: set[str] = field(default_factory=set)

    def skipped(self) -> list[str]:
        return sorted(self.unknown | self.unknown_dirs)

    def is_unknown(self, path: str) -> bool:
        if path in self.unknown:
            return True
        return any(path.startswith(d + "/") for d in self.unknown_dirs)


@dataclass
class Conflict:
    path: str
    local_sha256: str | None
    remote_sha256: str | None
    base_sha256: str | None
    remote_device: str
    remote_seq: int
    remote_time: float
    local_mtime_ns: int | None
    copy: str | None = None
    #: guarded settings.json keys the remote changed, held back until the user agrees
    held: list[str] | None = None
    #: keys of a JSON file changed differently on both sides (the file's other keys merged)
    keys: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Plan:
    head: Snapshot | None
    upload: dict[str, LocalFile] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    adopt: dict[str, FileEntry | None] = field(default_factory=dict)
    write: dict[str, FileEntry] = field(default_factory=dict)
    copies: dict[str, FileEntry] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    #: changed on both sides: (ours, base, theirs), settled by an automatic merge if possible
    merges: dict[str, tuple[LocalFile, FileEntry | None, FileEntry]] = field(default_factory=dict)
    #: merge results to write here (the next push sends them)
    merged: dict[str, tuple[bytes, FileEntry]] = field(default_factory=dict)
    #: remote changes not applied this time (unknown here, or changed during the pull): the
    #: head is not fully pulled while any is left
    skipped: list[str] = field(default_factory=list)
    #: `map` labels of remote projects with no folder here: left in the repository
    unmapped: list[str] = field(default_factory=list)
    #: what is written while a guarded settings change waits (the base does not move)
    held: dict[str, bytes] = field(default_factory=dict)
    #: JSON files merged except these keys (in `merged` with local's values there, until
    #: the pull turns them into a conflict that keeps the base)
    unsettled: dict[str, list[str]] = field(default_factory=dict)
    strategy: str = "ask"


def sha(entry: FileEntry | LocalFile | None) -> str | None:
    return None if entry is None else entry.sha256


Triple = tuple[str, ResourceType, LocalFile | None, FileEntry | None, FileEntry | None]


def _triples(
    paths: set[str],
    local: LocalView,
    bases: Mapping[str, FileEntry],
    head: Snapshot | None,
    covers: Callable[[str], bool],
) -> Iterator[Triple]:
    remote = head.files if head else {}
    for path in sorted(paths | set(bases)):
        rtype = resources.type_of(path)
        if rtype is None or not covers(path):
            continue
        yield path, rtype, local.files.get(path), bases.get(path), remote.get(path)


def plan_push(
    local: LocalView,
    bases: Mapping[str, FileEntry],
    head: Snapshot | None,
    covers: Callable[[str], bool],
) -> Plan:
    plan = Plan(head)
    for path, rtype, ours, base, theirs in _triples(set(local.files), local, bases, head, covers):
        if sha(ours) == sha(base) or local.is_unknown(path):
            continue
        if ours is None:
            if rtype.propagate_deletes and sha(theirs) == sha(base):
                plan.remove.append(path)
            continue
        if sha(theirs) == ours.sha256:
            plan.adopt[path] = theirs
        elif sha(theirs) == sha(base):
            plan.upload[path] = ours
        else:
            plan.conflicts.append(conflict(path, ours, base, theirs, head))
    return plan


def plan_pull(
    local: LocalView,
    bases: Mapping[str, FileEntry],
    head: Snapshot | None,
    covers: Callable[[str], bool],
    strategy: str,
    was_synced: Callable[[str, str], bool],
) -> Plan:
    """was_synced(path, sha256): whether that content of path is in an earlier snapshot."""
    plan = Plan(head, strategy=strategy)
    remote = set(head.files) if head else set()
    for path, rtype, ours, base, theirs in _triples(remote, local, bases, head, covers):
        if sha(theirs) == sha(base):
            continue
        if local.is_unknown(path):
            plan.skipped.append(path)
        elif sha(ours) == sha(theirs):
            plan.adopt[path] = theirs
        elif sha(ours) == sha(base):
            if theirs is not None and ours is not None and ours.unfinished:
                # Written over, the record being appended here would be lost: it stays at
                # the end, after what arrives (the transcript merge keeps it there).
                plan.merges[path] = (ours, base, theirs)
            elif theirs is not None:
                plan.write[path] = theirs
            elif rtype.propagate_deletes:
                plan.delete.append(path)
            else:
                plan.adopt[path] = None
        elif ours is not None and theirs is not None:
            if base is None and was_synced(path, ours.sha256):
                plan.write[path] = theirs  # an old version here: the local state was lost
            else:
                plan.merges[path] = (ours, base, theirs)
        elif not rtype.propagate_deletes:
            # Claude Code's own clean-up of a transcript that grew elsewhere: restore it.
            if theirs is not None:
                plan.write[path] = theirs
            else:
                plan.adopt[path] = None
        else:
            settle_conflict(plan, path, ours, base, theirs)
    return plan


def has_local_changes(
    local: LocalView, bases: Mapping[str, str], covers: Callable[[str], bool]
) -> bool:
    """Whether a push has anything to do (bases: each path's base content hash)."""
    for path in set(local.files) | set(bases):
        if not covers(path) or sha(local.files.get(path)) == bases.get(path):
            continue
        if path in local.files:
            return True
        # A vanished session is Claude Code's clean-up, not a change to push.
        rtype = resources.type_of(path)
        if rtype is not None and rtype.propagate_deletes and not local.is_unknown(path):
            return True
    return False


def settle_conflict(
    plan: Plan,
    path: str,
    ours: LocalFile | None,
    base: FileEntry | None,
    theirs: FileEntry | None,
) -> None:
    """A real conflict (a deletion counts as a change): settle it as the strategy says.
    Until it is settled both versions are kept: ours in place, theirs beside it."""
    strategy = plan.strategy
    if strategy == "local":
        plan.adopt[path] = theirs
    elif strategy == "remote":
        if theirs is None:
            plan.delete.append(path)
        else:
            plan.write[path] = theirs
    elif ours is None and theirs is not None and strategy == "both":
        plan.write[path] = theirs
    else:
        if theirs is not None and ours is not None:
            plan.copies[path] = theirs
        if strategy == "both":
            plan.adopt[path] = theirs
        else:
            plan.conflicts.append(conflict(path, ours, base, theirs, plan.head))


def conflict(
    path: str,
    ours: LocalFile | None,
    base: FileEntry | None,
    theirs: FileEntry | None,
    head: Snapshot | None,
) -> Conflict:
    return Conflict(
        path=path,
        local_sha256=sha(ours),
        remote_sha256=sha(theirs),
        base_sha256=sha(base),
        remote_device=head.device if head else "",
        remote_seq=head.seq if head else 0,
        remote_time=head.time if head else 0.0,
        local_mtime_ns=ours.cached.stat.mtime_ns if ours else None,
    )
