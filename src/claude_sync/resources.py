"""The Claude Code resource model: which files under ~/.claude are synced, under what type.

Logical paths are POSIX paths relative to the Claude directory. Every synced file belongs to
exactly one resource type; a path no type claims is never read, uploaded or written, whatever
a snapshot says, so a hostile snapshot cannot plant `.credentials.json` or hook scripts.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
#: The most permissive modes a pull or restore sets: nothing group- or world-writable, and
#: executable bits only on hook scripts (an opt-in type).
MODE_CAP = 0o644
EXECUTABLE_MODE_CAP = 0o755


@dataclass(frozen=True)
class ResourceType:
    name: str
    description: str
    folders: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    default: bool = True
    # Claude Code deletes old transcripts on its own: such deletions must never spread.
    propagate_deletes: bool = True

    def claims(self, path: str) -> bool:
        return path in self.files or any(path.startswith(f + "/") for f in self.folders)


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
    ResourceType("commands", "custom slash commands", folders=("commands",)),
    ResourceType("skills", "skills", folders=("skills",)),
    ResourceType("rules", "rules", folders=("rules",)),
    ResourceType("output-styles", "output styles", folders=("output-styles",)),
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
    # Claims no file: enabled, it lets settings.json keys that run code arrive unasked.
    ResourceType(
        "settings-commands",
        "settings.json keys that run code (hooks, statusLine, apiKeyHelper, permissions, env…) "
        "arrive without asking: any key holder can run code here",
        default=False,
    ),
)
TYPES_BY_NAME = {t.name: t for t in TYPES}


def valid_logical_path(path: str) -> bool:
    """A relative, normalized POSIX path with no component that could climb out of the root."""
    if not path or path.startswith("/") or "\\" in path or _CONTROL.search(path):
        return False
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return False
    name = parts[-1]
    return name not in NEVER and CONFLICT_MARKER not in name and TMP_MARKER not in name


@functools.lru_cache(maxsize=1 << 16)
def type_of(path: str) -> ResourceType | None:
    if not valid_logical_path(path):
        return None
    for rtype in TYPES:
        if rtype.claims(path):
            return rtype
    return None


def capped_mode(path: str, mode: int) -> int:
    """The permission bits a file from the repository gets: the snapshot's, capped."""
    rtype = type_of(path)
    cap = EXECUTABLE_MODE_CAP if rtype is not None and rtype.name == "hooks" else MODE_CAP
    return mode & cap or 0o600


@dataclass(frozen=True)
class FoundFile:
    path: str  # logical
    abspath: str
    st: os.stat_result


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
        prefixes = self.only if only is None else only
        if type_of(path) not in self.types:
            return False
        if prefixes and not any(path == o or path.startswith(o + "/") for o in prefixes):
            return False
        if self.include and not any(fnmatch.fnmatchcase(path, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatchcase(path, g) for g in self.exclude)


def scan(root: Path, selection: Selection) -> Iterator[FoundFile]:
    """Regular, non-empty files selected; symlinks are followed only within root."""
    try:
        real_root = str(root.resolve(strict=True))
    except OSError:
        return
    top = str(root)
    if selection.only:
        for rel in selection.only:
            if (root / rel).is_dir():
                found_all = _walk(top, real_root, rel)
                yield from (f for f in found_all if selection.covers(f.path))
            else:
                found = _regular_file(top, real_root, rel)
                if found and selection.covers(found.path):
                    yield found
        return
    for rtype in selection.types:
        for name in rtype.files:
            found = _regular_file(top, real_root, name)
            if found:
                yield found
        for folder in rtype.folders:
            yield from _walk(top, real_root, folder)


def _inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip("/") + "/")


def _regular_file(root: str, real_root: str, path: str) -> FoundFile | None:
    if type_of(path) is None:
        return None
    abspath = f"{root}/{path}"
    try:
        lst = os.lstat(abspath)
        if stat.S_ISLNK(lst.st_mode):
            if not _inside(os.path.realpath(abspath, strict=True), real_root):
                return None
            lst = os.stat(abspath)
    except OSError:
        return None
    if not stat.S_ISREG(lst.st_mode) or lst.st_size == 0:
        return None
    return FoundFile(path, abspath, lst)


def _walk(root: str, real_root: str, folder: str) -> Iterator[FoundFile]:
    # A folder that is itself a symlink out of the root is skipped entirely.
    try:
        if not _inside(os.path.realpath(f"{root}/{folder}", strict=True), real_root):
            return
    except OSError:
        return
    yield from _walk_dir(root, real_root, folder)


def _walk_dir(root: str, real_root: str, rel: str) -> Iterator[FoundFile]:
    """Strings and scandir, not Path objects: a scan of thousands of files is on the hot
    path of every push. Symlinked folders are not descended into: no loops, no escapes."""
    try:
        with os.scandir(f"{root}/{rel}") as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    subdirs = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subdirs.append(entry.name)
        elif TMP_MARKER in entry.name:
            _remove_if_stale(entry.path)
        else:
            found = _regular_file(root, real_root, f"{rel}/{entry.name}")
            if found:
                yield found
    for name in subdirs:
        yield from _walk_dir(root, real_root, f"{rel}/{name}")


def _remove_if_stale(path: str) -> None:
    """A temporary file of a claude-sync that was killed mid-write. Scans run under the
    machine-wide lock, so an old one belongs to no running claude-sync."""
    with contextlib.suppress(OSError):
        if time.time() - os.lstat(path).st_mtime > STALE_TMP_SECONDS:
            os.unlink(path)


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
