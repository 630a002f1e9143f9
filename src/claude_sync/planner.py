"""The sync decision, as pure functions: (local view, merge base, remote head) -> plan.

Every decision is three-way, per logical path: the *local* version, the *base* (the version at
the last sync) and the *remote* head's version. Only a path whose local version differs from
its base has something to push; only one whose remote version differs from its base has
something to pull; only one where both differ, and differently, is a conflict.

Nothing here reads a file, the state or the backend: the engine scans, loads and transfers
around these functions, so they can be tested against any interleaving of machines.
A path the scan could not see this time (unreadable, emptied mid-write, a link it does not
follow) is *unknown*: it is neither pushed, nor deleted, nor overwritten, and its base stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from claude_sync import resources
from claude_sync.merge import HISTORY_PATH
from claude_sync.repository import FileEntry, Snapshot
from claude_sync.resources import ResourceType
from claude_sync.session_policy import session_of
from claude_sync.session_summary import SessionSummary
from claude_sync.state import Bases, CachedFile


class LocalFile(NamedTuple):
    """A file as the scan saw it here: its logical path, where it is on disk, and the
    cached stat and content hash its version is compared by. A tuple: a scan makes one
    per file of the tree, and a frozen dataclass sets each field through a call."""

    path: str
    #: where it is: the Claude folder and the path in it (its absolute path is made when
    #: asked for, as FoundFile's)
    root: str
    local_path: str
    cached: CachedFile
    #: a transcript: its last record, while being written, is not part of what is synced
    append_only: bool = False
    #: a main transcript's summary, when a push's scan read it (see SessionPolicy.summary)
    summary: SessionSummary | None = None

    @property
    def abspath(self) -> str:
        return f"{self.root}/{self.local_path}"

    @property
    def sha256(self) -> str:
        """The hash of the content that is synced (without an unfinished last record)."""
        return self.cached.sha256

    @property
    def unfinished(self) -> bool:
        """Whether the file ends in a record still being written (not synced yet)."""
        return self.append_only and self.cached.stat.size > self.entry().size

    def entry(self) -> FileEntry:
        """This version as a snapshot would list it."""
        cached = self.cached
        chunks = tuple([(blob, length) for blob, _, length in cached.chunks])
        # The stored content's size: a filtered file's differs from its size on disk.
        size = sum([length for _, length in chunks])
        return FileEntry(cached.sha256, size, cached.stat.mtime_ns, cached.mode, chunks)


@dataclass
class LocalView:
    """What one scan saw: the files it read, and what exists but could not be seen."""

    files: dict[str, LocalFile] = field(default_factory=dict)
    #: logical paths that exist here but were not read this time
    unknown: set[str] = field(default_factory=set)
    #: logical folders that could not be listed (or links not followed): all below is unknown
    unknown_dirs: set[str] = field(default_factory=set)
    #: the digest of the walk the view was made from (clean_tree.TreeWalk); None when a file
    #: it found could not be read as it was found
    tree: str | None = None

    def skipped(self) -> list[str]:
        """Every unknown path and folder, sorted (what a command reports as skipped)."""
        return sorted(self.unknown | self.unknown_dirs)

    def is_unknown(self, path: str) -> bool:
        """Whether path exists here but was not seen: it must be neither pushed as deleted
        nor written over."""
        if path in self.unknown:
            return True
        # A folder skipped covers its own path too: a link skipped may hide either.
        return any(path == d or path.startswith(d + "/") for d in self.unknown_dirs)


@dataclass
class Conflict:
    """A path changed differently on both sides and not settled: the versions involved
    (by hash), and who changed it remotely. Stored as JSON in the state until resolved."""

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
        """The form kept in the state and printed by `--json` (field names are a contract)."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, recorded: dict[str, Any]) -> Conflict:
        """A conflict as the state keeps it (to_json)."""
        return cls(**recorded)


@dataclass
class Plan:
    """What a push or pull is to do against one remote head, path by path. The planner
    fills it; the engine carries it out and may move paths between its lists (a merge that
    fails becomes a conflict, a file changed meanwhile is skipped)."""

    head: Snapshot | None
    upload: dict[str, LocalFile] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    adopt: dict[str, FileEntry | None] = field(default_factory=dict)
    write: dict[str, FileEntry] = field(default_factory=dict)
    copies: dict[str, FileEntry] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    #: changed on both sides, settled by an automatic merge if possible
    merges: dict[str, Merge] = field(default_factory=dict)
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
    """A version's content hash; None for an absent one, so absence compares as a version."""
    return None if entry is None else entry.sha256


class Versions(NamedTuple):
    """One path's three versions, as the planner weighs them (None: absent on that side)."""

    path: str
    rtype: ResourceType
    local: LocalFile | None
    base: FileEntry | None
    remote: FileEntry | None


class Merge(NamedTuple):
    """A path changed on both sides, to be merged: its local, base and remote versions."""

    local: LocalFile
    base: FileEntry | None
    remote: FileEntry


def _base_sha(bases: Mapping[str, FileEntry], path: str) -> str | None:
    # The state's bases know each hash without decoding the entry.
    return bases.sha(path) if isinstance(bases, Bases) else sha(bases.get(path))


def _versions(
    paths: set[str],
    view: LocalView,
    bases: Mapping[str, FileEntry],
    head: Snapshot | None,
    covers: Callable[[str], bool],
    settled: Callable[[str, str | None, str | None, Callable[[], str | None]], bool],
) -> Iterator[Versions]:
    """Each path's versions, but for those settled(path, local, base, remote hash) says
    need nothing: told apart by hashes alone, so a plan over tens of thousands of
    unchanged paths decodes no entry. The remote hash is a call: a push asks for it only
    where the local version changed, so the head's other groups are never decoded."""
    remote = head.files if head else {}
    for path in sorted(paths | set(bases)):
        local = view.files.get(path)
        if settled(path, sha(local), _base_sha(bases, path), lambda p=path: sha(remote.get(p))):
            continue
        rtype = resources.type_of(path)
        if rtype is None or not covers(path):
            continue
        yield Versions(path, rtype, local, bases.get(path), remote.get(path))


def plan_push(
    view: LocalView,
    bases: Mapping[str, FileEntry],
    head: Snapshot | None,
    covers: Callable[[str], bool],
) -> Plan:
    """What to send: paths changed here only are uploaded (or removed remotely, for types
    that propagate deletes); a path changed on both sides is a conflict, never pushed over;
    an unknown path is left out."""
    plan = Plan(head)

    def settled(path: str, local: str | None, base: str | None, remote: Callable[[], Any]) -> bool:
        return local == base or view.is_unknown(path)

    paths = set(view.files)
    for path, rtype, local, base, remote in _versions(paths, view, bases, head, covers, settled):
        if local is None:
            if rtype.propagate_deletes and sha(remote) == sha(base):
                plan.remove.append(path)
            elif rtype.propagate_deletes and remote is not None:
                # Deleted here, changed there: as a pull would say, not "up to date".
                plan.conflicts.append(conflict(path, None, base, remote, head))
            continue
        if sha(remote) == local.sha256:
            plan.adopt[path] = remote
        elif sha(remote) == sha(base):
            plan.upload[path] = local
        else:
            plan.conflicts.append(conflict(path, local, base, remote, head))
    return plan


def plan_pull(
    view: LocalView,
    bases: Mapping[str, FileEntry],
    head: Snapshot | None,
    covers: Callable[[str], bool],
    strategy: str,
    was_synced: Callable[[str, str], bool],
    restore_gone: bool = False,
) -> Plan:
    """was_synced(path, sha256): whether that content of path is in an earlier snapshot.
    restore_gone: also bring back files gone here whose deletion does not spread (sessions
    Claude Code cleaned up), unchanged elsewhere: a pull of every session (`pull --all`)."""
    plan = Plan(head, strategy=strategy)
    remote_paths = set(head.files) if head else set()

    def settled(path: str, local: str | None, base: str | None, remote: Callable[[], Any]) -> bool:
        if remote() != base:
            return False
        return not (restore_gone and local is None and base is not None and _kept(path))

    for path, rtype, local, base, remote in _versions(
        remote_paths, view, bases, head, covers, settled
    ):
        if view.is_unknown(path):
            plan.skipped.append(path)
        elif sha(local) == sha(remote):
            plan.adopt[path] = remote
        elif sha(local) == sha(base):
            if (
                remote is not None
                and local is not None
                and (local.unfinished or path == HISTORY_PATH)
            ):
                # Written over, the record being appended here would be lost: it stays at
                # the end, after what arrives (the transcript merge keeps it there). A
                # prompt half-appended to the history is not seen by its size (its filter
                # changes it): the history, lines only ever added, is always merged.
                plan.merges[path] = Merge(local, base, remote)
            elif remote is not None:
                plan.write[path] = remote
            elif rtype.propagate_deletes:
                plan.delete.append(path)
            else:
                plan.adopt[path] = None
        elif local is not None and remote is not None:
            if base is None and was_synced(path, local.sha256):
                plan.write[path] = remote  # an old version here: the local state was lost
            else:
                plan.merges[path] = Merge(local, base, remote)
        elif not rtype.propagate_deletes:
            # Claude Code's own clean-up of a transcript that grew elsewhere: restore it.
            if remote is not None:
                plan.write[path] = remote
            else:
                plan.adopt[path] = None
        else:
            settle_conflict(plan, path, local, base, remote)
    if not restore_gone:
        _whole_sessions(plan, view, remote_paths, covers)
    return plan


def _whole_sessions(
    plan: Plan, view: LocalView, remote_paths: set[str], covers: Callable[[str], bool]
) -> None:
    """A session this pull writes arrives whole: its files gone here and unchanged elsewhere
    (Claude Code cleaned the session up, then another machine continued it) come back with
    it, else it would be listed as here without its sub-agents and tool results."""
    if plan.head is None:
        return
    keys = {key for p in plan.write if (key := session_of(p)) is not None}
    if not keys:
        return
    for path in remote_paths:
        if (
            path.startswith("projects/")
            and path not in view.files
            and path not in plan.write
            and session_of(path) in keys
            and not view.is_unknown(path)
            and covers(path)
        ):
            plan.write[path] = plan.head.files[path]


def shape_clashes(plan: Plan) -> dict[str, str]:
    """New files to upload that the head holds as a folder, or under a path it holds as a
    file (a file here, a folder of that name on another machine): path -> the head's path
    it clashes with. Pushed, the repository would hold both, and neither machine could
    write the other's (sessions, named by ids, are left out of the look)."""
    head = plan.head
    if head is None:
        return {}
    new = [p for p in plan.upload if p not in head.files and not p.startswith("projects/")]
    if not new:
        return {}
    gone = set(plan.remove)
    clashes = {}
    for path in new:
        for i, c in enumerate(path):
            if c == "/" and path[:i] in head.files and path[:i] not in gone:
                clashes[path] = path[:i]
    for path in new:
        if path not in clashes:
            below = next((p for p in _paths_below(head, path) if p not in gone), None)
            if below is not None:
                clashes[path] = below
    return clashes


def _paths_below(head: Snapshot, folder: str) -> Iterator[str]:
    """The head's paths under folder, decoding only the manifest groups that can hold them
    (a push decodes the groups it changes, not a list of tens of thousands)."""
    prefix = folder + "/"
    group = getattr(head.files, "group", None)
    if not head.parts or group is None:
        yield from (p for p in head.files if p.startswith(prefix))
        return
    for name in head.parts:
        if name == folder or name.startswith(prefix) or folder.startswith(name + "/"):
            yield from (p for p in group(name) if p.startswith(prefix))


def _kept(path: str) -> bool:
    """Whether path is of a type whose deletions do not spread."""
    rtype = resources.type_of(path)
    return rtype is not None and not rtype.propagate_deletes


def has_local_changes(
    view: LocalView, bases: Mapping[str, str], covers: Callable[[str], bool]
) -> bool:
    """Whether a push has anything to do (bases: each path's base content hash)."""
    files = view.files
    for path, local in files.items():
        if local.cached.sha256 != bases.get(path) and covers(path):
            return True
    for path in bases.keys() - files.keys():
        # A vanished session is Claude Code's clean-up, not a change to push.
        rtype = resources.type_of(path)
        if (
            rtype is not None
            and rtype.propagate_deletes
            and covers(path)
            and not view.is_unknown(path)
        ):
            return True
    return False


def settle_conflict(
    plan: Plan,
    path: str,
    local: LocalFile | None,
    base: FileEntry | None,
    remote: FileEntry | None,
) -> None:
    """A real conflict (a deletion counts as a change): settle it as the strategy says.
    Until it is settled both versions are kept: the local one in place, the remote one beside it."""
    strategy = plan.strategy
    if strategy == "local":
        plan.adopt[path] = remote
    elif strategy == "remote":
        if remote is None:
            plan.delete.append(path)
        else:
            plan.write[path] = remote
    elif local is None and remote is not None and strategy == "both":
        plan.write[path] = remote
    else:
        if remote is not None and local is not None:
            plan.copies[path] = remote
        if strategy == "both":
            plan.adopt[path] = remote
        else:
            plan.conflicts.append(conflict(path, local, base, remote, plan.head))


def conflict(
    path: str,
    local: LocalFile | None,
    base: FileEntry | None,
    remote: FileEntry | None,
    head: Snapshot | None,
) -> Conflict:
    """The record of a conflict over path, its remote side credited to head."""
    return Conflict(
        path=path,
        local_sha256=sha(local),
        remote_sha256=sha(remote),
        base_sha256=sha(base),
        remote_device=head.device if head else "",
        remote_seq=head.seq if head else 0,
        remote_time=head.time if head else 0.0,
        local_mtime_ns=local.cached.stat.mtime_ns if local else None,
    )
