"""The Claude Code resource model: which files under ~/.claude are synced, under what type.

Logical paths are POSIX paths relative to the Claude directory. Every synced file belongs to
exactly one resource type; a path no type claims is never read, uploaded or written, whatever
a snapshot says, so a hostile snapshot cannot plant `.credentials.json` or hook scripts.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import itertools
import json
import operator
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from claude_sync import forked_walk
from claude_sync.merge import MCP_SERVERS

# Files claude-sync writes beside real ones; they must never be synced back.
CONFLICT_MARKER = ".claude-sync-conflict"
TMP_MARKER = ".claude-sync-tmp"
STALE_TMP_SECONDS = 600
# Secrets that no type may ever claim, checked on every path in both directions.
NEVER = frozenset({".credentials.json", ".claude.json", "settings.local.json"})
# Control characters have no place in a file name Claude Code writes; one in a snapshot
# could only be there to play tricks on a terminal.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# What sets a folder entry's name apart from a plain one, in one search per entry: a
# temporary file's marker, a control character, a backslash, or a byte that is not UTF-8
# (os.scandir gives it as a lone surrogate).
_ODD_NAME = re.compile(f"{re.escape(TMP_MARKER)}|[\x00-\x1f\x7f-\x9f\\\\\ud800-\udfff]")
#: The most permissive modes a pull or restore sets: nothing group- or world-writable, and
#: executable bits only on hook scripts (an opt-in type).
MODE_CAP = 0o644
EXECUTABLE_MODE_CAP = 0o755
#: the repository format whose readers know the types added after format 8 (`agent-memory`,
#: `workflows`, `themes`, `keybindings`; docs/FORMAT.md §3): claude-sync refuses a whole
#: snapshot that lists a path no type it knows claims, so a type added later is pushed only
#: to a repository upgraded to the format that brought it
LATER_TYPES_FORMAT = 9


@dataclass(frozen=True)
class ResourceType:
    """A kind of thing in the Claude folder that is synced (or not) as a whole, by the
    folders and files it owns: `agents`, `sessions`, `settings`, ..."""

    name: str
    description: str
    folders: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    default: bool = True
    # Claude Code deletes old transcripts on its own: such deletions must never spread.
    propagate_deletes: bool = True
    #: the first repository format whose readers know this type (see LATER_TYPES_FORMAT)
    since_format: int = 1


TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "sessions",
        "conversation transcripts, sub-agent transcripts, tool results, project memory",
        folders=("projects",),
        propagate_deletes=False,
    ),
    ResourceType(
        "history",
        "prompt history (history.jsonl)",
        files=("history.jsonl",),
        propagate_deletes=False,
    ),
    ResourceType("settings", "user settings (settings.json)", files=("settings.json",)),
    ResourceType("memory", "user memory (CLAUDE.md)", files=("CLAUDE.md",)),
    ResourceType("agents", "custom sub-agents", folders=("agents",)),
    ResourceType(
        "agent-memory",
        "what sub-agents with `memory: user` keep learning (agent-memory/)",
        folders=("agent-memory",),
        since_format=LATER_TYPES_FORMAT,
    ),
    ResourceType("commands", "custom slash commands", folders=("commands",)),
    ResourceType("skills", "skills", folders=("skills",)),
    ResourceType(
        "workflows",
        "saved workflows (workflows/: scripts that start sub-agents, so code)",
        folders=("workflows",),
        since_format=LATER_TYPES_FORMAT,
    ),
    ResourceType("rules", "rules", folders=("rules",)),
    ResourceType("output-styles", "output styles", folders=("output-styles",)),
    ResourceType(
        "themes", "custom themes (themes/)", folders=("themes",), since_format=LATER_TYPES_FORMAT
    ),
    ResourceType(
        "keybindings",
        "key bindings (keybindings.json)",
        files=("keybindings.json",),
        since_format=LATER_TYPES_FORMAT,
    ),
    ResourceType(
        "plugins",
        "plugin manifests (not plugin caches)",
        files=("plugins/installed_plugins.json", "plugins/known_marketplaces.json"),
    ),
    ResourceType("todos", "per-session todo lists", folders=("todos",), default=False),
    ResourceType("plans", "plan-mode plans", folders=("plans",), default=False),
    ResourceType("hooks", "hook scripts (executable code)", folders=("hooks",), default=False),
    ResourceType(
        "mcp",
        "user-scope MCP servers (only `mcpServers` of ~/.claude.json; env may hold tokens)",
        files=(MCP_SERVERS,),
        default=False,
    ),
    # Claims no file: enabled, it lets what runs code (code_trust.py) arrive unasked.
    ResourceType(
        "settings-commands",
        "what runs code arrives without asking (settings.json's hooks, statusLine, "
        "permissions, env…; agents', skills' and commands' hooks, allowed-tools, shell lines; "
        "skills' scripts, workflows, key bindings): any key holder can run code here",
        default=False,
    ),
)
TYPES_BY_NAME = {t.name: t for t in TYPES}


def valid_logical_path(path: str) -> bool:
    """A relative, normalized POSIX path with no component that could climb out of the root."""
    if not path or path.startswith("/") or "\\" in path or _CONTROL.search(path):
        return False
    folder, sep, name = path.rpartition("/")
    if name in ("", ".", "..") or (sep and not _valid_folder(folder)):
        return False
    return name not in NEVER and CONFLICT_MARKER not in name and TMP_MARKER not in name


def _plain_name(name: str) -> bool:
    """A file name valid_logical_path accepts in any valid folder."""
    return not (
        name in NEVER
        or CONFLICT_MARKER in name
        or TMP_MARKER in name
        or "\\" in name
        or name in ("", ".", "..")
        or _CONTROL.search(name)
    )


@functools.lru_cache(maxsize=1 << 14)
def _valid_folder(folder: str) -> bool:
    """Once per folder, not per file: a scan checks tens of thousands of paths."""
    return all(p not in ("", ".", "..") for p in folder.split("/"))


# Which type claims a path, by the path itself or by its top folder: looked up, not searched,
# because a scan asks for every one of tens of thousands of files.
_BY_FILE = {name: t for t in reversed(TYPES) for name in t.files}
_BY_FOLDER = {folder: t for t in reversed(TYPES) for folder in t.folders}
assert all("/" not in folder for folder in _BY_FOLDER), "type_of looks up top folders only"
assert not any(f.partition("/")[0] in _BY_FOLDER for f in _BY_FILE), "_folder_type claims all"


@functools.lru_cache(maxsize=1 << 16)
def _folder_type(folder: str) -> ResourceType | None:
    """The type that claims each file of folder with a _plain_name, by the folder alone;
    None when its files are to be checked one by one. Once per folder, not per file: a
    scan asks for each of tens of thousands of files, and paths there share few folders."""
    rtype = _BY_FOLDER.get(folder.partition("/")[0])
    return rtype if rtype is not None and valid_logical_path(f"{folder}/_") else None


def type_of(path: str) -> ResourceType | None:
    """The type that owns logical path; None for a path no type syncs (or not a valid
    logical path), which is never read, written or deleted."""
    folder, sep, name = path.rpartition("/")
    if sep and (rtype := _folder_type(folder)) is not None and _plain_name(name):
        return rtype
    if not valid_logical_path(path):
        return None
    top, sep, _ = path.partition("/")
    return _BY_FILE.get(path) or (_BY_FOLDER.get(top) if sep else None)


def capped_mode(path: str, mode: int) -> int:
    """The permission bits a file from the repository gets: the snapshot's, capped."""
    rtype = type_of(path)
    cap = EXECUTABLE_MODE_CAP if rtype is not None and rtype.name == "hooks" else MODE_CAP
    return mode & cap or 0o600


class FileStat(NamedTuple):
    """What a scan keeps of a file's stat, under os.stat_result's names: a scan keeps one
    per file of the tree until it knows which changed, and an os.stat_result holds three
    times as much."""

    st_size: int
    st_mtime_ns: int
    st_ino: int
    st_ctime_ns: int
    st_mode: int


#: a stat as the scan keeps it, or as os.stat gives it
AnyStat = FileStat | os.stat_result


class FoundFile(NamedTuple):
    """A regular file the scan selected, as it is on disk here (a tuple: a scan makes one
    per file of the tree; its absolute path is made when asked for, not kept: 8 MiB at
    50,000 files)."""

    #: relative to the Claude folder, as named on this machine (the mapper gives its logical path)
    local_path: str
    #: the Claude folder (one string shared by all)
    root: str
    st: FileStat

    @property
    def abspath(self) -> str:
        return f"{self.root}/{self.local_path}"


@dataclass(frozen=True)
class Skipped:
    """Something that exists but was not read this time: never a deletion."""

    #: relative to the Claude folder, as named on this machine
    local_path: str
    folder: bool
    reason: str


EMPTY = "is empty"
# Top-level resources users keep in a dotfiles repository and link back (chezmoi, stow, yadm):
# followed wherever they point, for reading and for writing.
LINKABLE = frozenset(
    {
        *("agents", "commands", "skills", "workflows", "rules", "output-styles", "themes"),
        *("CLAUDE.md", "settings.json", "keybindings.json"),
    }
)


def linked_tops(root: Path) -> dict[str, str]:
    """The linkable top-level resources that are symlinks here, and where they lead."""
    links = {}
    for name in sorted(LINKABLE):
        path = root / name
        if path.is_symlink():
            with contextlib.suppress(OSError):
                links[name] = os.path.realpath(path, strict=True)
    return links


@dataclass(frozen=True)
class Selection:
    """What one command works on: some resource types, optionally only some paths of them."""

    types: tuple[ResourceType, ...]
    #: local paths (files or folders) relative to the root; empty means all of the types
    only: tuple[str, ...] = ()
    #: glob patterns on logical paths (`*` crosses folders): a path must match an include
    #: pattern when there are any, and no exclude pattern
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def covers(self, path: str, only: tuple[str, ...] | None = None) -> bool:
        """Whether path is part of this selection: its type selected, under one of the
        `only` prefixes (this selection's unless given), and through the globs."""
        prefixes = self.only if only is None else only
        if type_of(path) not in self.types or is_temporary(path):
            return False
        if prefixes and not any(path == o or path.startswith(o + "/") for o in prefixes):
            return False
        if self.include and not any(fnmatch.fnmatchcase(path, g) for g in self.include):
            return False
        return not (self.exclude and any(fnmatch.fnmatchcase(path, g) for g in self.exclude))

    def key(self) -> str:
        """The types and globs, as the state records what a machine syncs or pulled."""
        return json.dumps([sorted(t.name for t in self.types), self.include, self.exclude])

    @classmethod
    def from_key(cls, key: str) -> Selection:
        """The selection a key recorded (types no longer known are left out)."""
        names, include, exclude = json.loads(key)
        types = tuple(t for t in TYPES if t.name in names)
        return cls(types, include=tuple(include), exclude=tuple(exclude))


#: NAME.tmp, NAME.tmp.PID.TIME, NAME.tmp.1a2b3c: not NAME.tmp.md, a user's own name
_TEMPORARY = re.compile(r"\.tmp(?:\.[0-9a-f]+)*\Z")


def is_temporary(path: str) -> bool:
    """A file a program writes under a temporary name, to rename it over the real one once
    whole (Claude Code's own: `NAME.tmp`, `NAME.tmp.PID.TIME`). Never synced, nor deleted:
    pushed, it became a copy every machine kept, a transcript's deletion never spreading."""
    return ".tmp" in path and _TEMPORARY.search(path.rpartition("/")[2]) is not None


def scan(
    root: Path, selection: Selection, skipped: list[Skipped], split: bool = False
) -> Iterator[FoundFile]:
    """Regular, non-empty files selected. Symlinks are followed only within root, or within
    the target of a linked top-level resource; what is left out is added to skipped.
    split: the projects folder is walked half here, half in a forked copy of this process
    where it can be (forked_walk.py; for a big tree: the fork costs ~2 ms)."""
    try:
        real_root = str(root.resolve(strict=True))
    except OSError:
        return
    walk = _Walk(str(root), real_root, skipped, split)
    if selection.only:
        # Only the types here: the include and exclude globs are on synced paths, which the
        # caller knows (a project folder is named otherwise on another machine).
        for rel in selection.only:
            # A type's own folder is walked as a whole scan walks it, whatever is there: a
            # link to a folder not there now skipped, not read as empty (its files deleted).
            if rel in _BY_FOLDER or (root / rel).is_dir():
                yield from (f for f in walk.folder(rel) if type_of(f.local_path) in selection.types)
            else:
                found = walk.file(rel, walk.boundary(rel))
                if found and type_of(found.local_path) in selection.types:
                    yield found
        return
    for rtype in selection.types:
        for name in rtype.files:
            found = walk.file(name, walk.boundary(name))
            if found:
                yield found
        for folder in rtype.folders:
            yield from walk.folder(folder)
    _sweep_top(root)


def folders_of(root: Path, selection: Selection) -> list[str]:
    """The synced folders a walk of selection lists, where they are (root resolved); none
    when root is not there."""
    try:
        real_root = str(root.resolve(strict=True))
    except OSError:
        return []
    return [os.path.join(real_root, f) for rtype in selection.types for f in rtype.folders]


def _sweep_top(root: Path) -> None:
    """A killed pull's temporary files beside the top-level files (CLAUDE.md, settings.json,
    or their targets in a dotfiles folder): no folder walk passes there."""
    folders = {str(root)} | {os.path.dirname(target) for target in linked_tops(root).values()}
    for folder in folders:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(TMP_MARKER):
                    _remove_if_stale(entry.path)


def _inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip("/") + "/")


@dataclass
class _Walk:
    """Strings and scandir, not Path objects: a scan of thousands of files is on the hot
    path of every push. Symlinked folders are not descended into: no loops, no escapes."""

    root: str
    real_root: str
    skipped: list[Skipped]
    #: walk the projects folder on two processes (see scan)
    split: bool = False

    def boundary(self, path: str) -> str:
        """Where links under path may lead: the Claude folder, or the target of a linked
        top-level resource."""
        top = path.split("/", 1)[0]
        if top in LINKABLE and os.path.islink(f"{self.root}/{top}"):
            with contextlib.suppress(OSError):
                return os.path.realpath(f"{self.root}/{top}", strict=True)
        return self.real_root

    def skip(self, path: str, folder: bool, reason: str) -> None:
        self.skipped.append(Skipped(path, folder, reason))

    def file(self, path: str, boundary: str) -> FoundFile | None:
        if type_of(path) is None:
            return None
        return self._claimed_file(path, boundary)

    def _claimed_file(self, path: str, boundary: str) -> FoundFile | None:
        abspath = f"{self.root}/{path}"
        try:
            lst = os.lstat(abspath)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.skip(path, False, f"cannot be read ({exc.strerror})")
            return None
        if stat.S_ISLNK(lst.st_mode):
            # A link not followed hides what its path held when last synced, a file or a
            # whole folder (one replaced by a link to a dotfiles checkout, or to a drive
            # not mounted now): skipped as a folder, neither is taken for deleted.
            try:
                target = os.path.realpath(abspath, strict=True)
                lst = os.stat(abspath)
            except OSError:
                self.skip(path, True, "is a broken link or a link loop")
                return None
            if not _inside(target, boundary):
                self.skip(path, True, f"is a link to {target}, outside the synced folder")
                return None
            if stat.S_ISDIR(lst.st_mode):
                self.skip(path, True, "is a linked folder, which is not followed")
                return None
        if not stat.S_ISREG(lst.st_mode):
            self.skip(path, False, "is not a regular file")
            return None
        if lst.st_size == 0:
            self.skip(path, False, EMPTY)
            return None
        return FoundFile(
            path,
            self.root,
            FileStat(lst.st_size, lst.st_mtime_ns, lst.st_ino, lst.st_ctime_ns, lst.st_mode),
        )

    def folder(self, folder: str) -> list[FoundFile]:
        boundary = self.boundary(folder)
        try:
            real = os.path.realpath(f"{self.root}/{folder}", strict=True)
        except FileNotFoundError:
            # A missing folder has nothing to sync; a dangling link (a dotfiles checkout not
            # there right now) hides files that exist: reading it as empty would delete them
            # everywhere.
            if os.path.islink(f"{self.root}/{folder}"):
                self.skip(folder, True, "is a broken link or a link loop")
            return []
        except OSError:
            self.skip(folder, True, "is a broken link or a link loop")
            return []
        if not _inside(real, boundary):
            self.skip(folder, True, f"is a link to {real}, outside the synced folder")
            return []
        return self._tree(folder, boundary)

    def _tree(self, top: str, boundary: str) -> list[FoundFile]:
        """Each folder's files in name order, then its subfolders one after the other
        (depth first), listed rather than yielded: a generator's each level costs every
        file below it a step, and a push walks tens of thousands."""
        # A folder's files are claimed (or not) by the tree's top folder alone
        # (_folder_type): its subfolders, whose names passed _ODD_NAME, inherit that.
        claimed = _folder_type(top) is not None
        found: list[FoundFile] = []
        subdirs = self._dir(top, boundary, claimed, found)
        if self.split and top == _SPLIT_FOLDER and len(subdirs) > 1 and forked_walk.available():
            for part in self._halves(subdirs, boundary, claimed):
                found += part
        else:
            self._below(subdirs, boundary, claimed, found)
        return found

    def _below(self, tops: list[str], boundary: str, claimed: bool, found: list[FoundFile]) -> None:
        """Adds the files of tops and of every folder below them, depth first."""
        pending = tops[::-1]
        while pending:
            subdirs = self._dir(pending.pop(), boundary, claimed, found)
            pending.extend(reversed(subdirs))

    def _halves(self, subdirs: list[str], boundary: str, claimed: bool) -> list[list[FoundFile]]:
        """The files below each of subdirs, in its order, every other one walked by a
        forked child; what was left out added to skipped in the order a walk meets it."""
        ours, theirs = subdirs[::2], subdirs[1::2]  # alternate: halves alike in size

        def each(folders: list[str]) -> list[tuple[list[FoundFile], list[Skipped]]]:
            parts = []
            for folder in folders:
                found: list[FoundFile] = []
                before = len(self.skipped)
                self._below([folder], boundary, claimed, found)
                parts.append((found, self.skipped[before:]))
                del self.skipped[before:]
            return parts

        def walked_there() -> tuple[str, list[int], list[int], list[list[Skipped]]]:
            # Flat: the paths in one string, the stats in one list (a tuple per file took
            # twice as long to send and take back: 0.06 s at 25,000 files).
            paths, stats, counts, skipped = [], [], [], []
            for found, left_out in each(theirs):
                paths += [f.local_path for f in found]
                for f in found:
                    stats.extend(f.st)
                counts.append(len(found))
                skipped.append(left_out)
            return "\0".join(paths), stats, counts, skipped

        mine: list[tuple[list[FoundFile], list[Skipped]]] = []
        sent = forked_walk.beside(walked_there, lambda: mine.extend(each(ours)))
        if sent is None:
            there = each(theirs)
        else:
            joined, stats, counts, skipped = sent
            root, values = self.root, iter(stats)
            paths = joined.split("\0") if joined else []
            files = [
                _tuple(FoundFile, (path, root, _tuple(FileStat, st)))
                for path, st in zip(paths, zip(*[values] * 5, strict=True), strict=True)
            ]
            bounds = itertools.pairwise(itertools.accumulate(counts, initial=0))
            there = [
                (files[start:end], left_out)
                for (start, end), left_out in zip(bounds, skipped, strict=True)
            ]
        walked: list[tuple[list[FoundFile], list[Skipped]]] = [([], [])] * len(subdirs)
        walked[::2], walked[1::2] = mine, there
        parts = []
        for found, skipped in walked:
            parts.append(found)
            self.skipped += skipped
        return parts

    def _dir(self, rel: str, boundary: str, claimed: bool, found: list[FoundFile]) -> list[str]:
        """Adds the files of one folder to found; returns its subfolders, in name order."""
        try:
            with os.scandir(f"{self.root}/{rel}") as it:
                entries = sorted(it, key=_name)
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.skip(rel, True, f"cannot be read ({exc.strerror})")
            return []
        subdirs = []
        root, odd = self.root, _ODD_NAME.search
        for entry in entries:
            name = entry.name
            if odd(name):
                self._odd(rel, entry)
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(f"{rel}/{name}")
            elif not (claimed and name not in NEVER and CONFLICT_MARKER not in name):
                if file := self.file(f"{rel}/{name}", boundary):
                    found.append(file)
            elif entry.is_file(follow_symlinks=False):
                # The common case, a regular file by its directory entry, on the hot path of
                # every push: one stat, tuples made as tuples (a NamedTuple's own
                # constructor is a Python function, ~20 ms at 50,000 files).
                try:
                    lst = entry.stat(follow_symlinks=False)
                except OSError:
                    lst = None  # gone, or it cannot be read: said as _claimed_file says it
                if lst is None or not stat.S_ISREG(lst.st_mode) or not lst.st_size:
                    if file := self._claimed_file(f"{rel}/{name}", boundary):
                        found.append(file)
                    continue
                st = (lst.st_size, lst.st_mtime_ns, lst.st_ino, lst.st_ctime_ns, lst.st_mode)
                found.append(_tuple(FoundFile, (f"{rel}/{name}", root, _tuple(FileStat, st))))
            elif file := self._claimed_file(f"{rel}/{name}", boundary):
                found.append(file)
        return subdirs

    def _odd(self, rel: str, entry: os.DirEntry[str]) -> None:
        """An entry whose name no file or folder synced has: a temporary file, or a name
        that is said and never synced."""
        name = entry.name
        if TMP_MARKER in name:
            _remove_if_stale(entry.path)
        elif not _utf8(name):
            self.skip(
                f"{rel}/{name.encode('utf-8', 'replace').decode()}",
                False,
                "has a name that is not valid UTF-8",
            )
        elif "\\" in name:
            self.skip(f"{rel}/{name}", False, "has a backslash in its name")
        # Never synced (a line break would split every listing of it), but said, where a
        # plain name would be.
        elif type_of(f"{rel}/{_CONTROL.sub('_', name)}") is not None:
            self.skip(f"{rel}/{name}", False, "has a control character in its name")


#: the folder a split walk shares between two processes: where tens of thousands of files are
_SPLIT_FOLDER = "projects"
_name = operator.attrgetter("name")
_tuple = tuple.__new__


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _remove_if_stale(path: str) -> None:
    """A temporary file of a claude-sync that was killed mid-write. Scans run under the
    machine-wide lock, so an old one belongs to no running claude-sync. Old since its last
    change too: a pull's downloaded files carry the times of the files they are (often
    days old) and wait for the next pull that takes them up."""
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if time.time() - max(st.st_mtime, st.st_ctime) > STALE_TMP_SECONDS:
            os.unlink(path)


def waiting_for_upgrade(
    types: tuple[ResourceType, ...], repo_format: int
) -> tuple[ResourceType, ...]:
    """The types a repository of that format cannot hold yet (see LATER_TYPES_FORMAT)."""
    return tuple(t for t in types if t.since_format > repo_format)


UPGRADE_FIRST = (
    "{} is synced once the repository is upgraded: update claude-sync on every machine, "
    "then run `claude-sync upgrade` once (older versions refuse the repository then)"
)


def select(
    names: list[str],
    enabled: dict[str, bool],
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> Selection:
    """The types a command works on: those named, or every enabled type."""
    if names:
        types = tuple(TYPES_BY_NAME[n] for n in names)
    else:
        types = tuple(t for t in TYPES if enabled.get(t.name, t.default))
    return Selection(types, include=include, exclude=exclude)
