"""Project folder names: what Claude Code derives on this machine <-> one shared logical name.

Claude Code keeps a project's sessions in `projects/<enc>/`, where `enc` is the project's
real path with every character that is not an ASCII letter or digit replaced by `-`. The
encoding works character by character, so a project under the home directory always starts
with the encoded home. We store such folders as `~` + the rest (`-home-ann-code-app` ->
`~-code-app`) and write them back under this machine's encoded home, so `claude --resume`
finds them whatever the home directory is called. User path maps do the same for folders that
live in different places on different machines (`/Users/ann/work` here, `/home/ann/src` there,
both mapped to the label `work` -> `@work-…`).

Names Claude Code truncated (over 200 characters, with a hash suffix of the full path) and
names under no rule keep their name: they are resumable on machines with the same path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from claude_sync.merge import MCP_SERVERS

MAX_NAME = 200
PROJECTS = "projects/"
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
LABEL = re.compile(r"[A-Za-z0-9]+")


def encode(path: str) -> str:
    """The folder name Claude Code uses for a project directory (before truncation)."""
    return _NOT_ALNUM.sub("-", path)


class PathMapper:
    def __init__(self, home: Path, maps: dict[str, str] | None = None) -> None:
        # (encoded local prefix, logical prefix), longest local prefix first.
        places: list[tuple[str, str]] = []  # (directory, logical prefix)
        for directory, label in (maps or {}).items():
            for variant in _variants(Path(directory).expanduser()):
                places.append((variant, "@" + label))
        for variant in _variants(home):
            places.append((variant, "~"))
        self.places = sorted(set(places), key=lambda r: len(r[0]), reverse=True)
        self.rules = sorted(
            {(encode(d), p) for d, p in places}, key=lambda r: len(r[0]), reverse=True
        )

    def folder_to_logical(self, name: str) -> str:
        if len(name) > MAX_NAME:
            return name
        for local, logical in self.rules:
            if _has_prefix(name, local):
                return logical + name[len(local) :]
        return name

    def folder_to_local(self, logical: str) -> str:
        # The first rule whose logical prefix matches is the longest local one.
        for local, prefix in self.rules:
            if _has_prefix(logical, prefix):
                name = local + logical[len(prefix) :]
                if len(name) <= MAX_NAME and self.folder_to_logical(name) == logical:
                    return name
        return logical

    def to_logical(self, rel: str) -> str:
        folder, rest = _split(rel)
        return rel if folder is None else f"{PROJECTS}{self.folder_to_logical(folder)}{rest}"

    def to_local(self, logical: str) -> str:
        folder, rest = _split(logical)
        return logical if folder is None else f"{PROJECTS}{self.folder_to_local(folder)}{rest}"


def _variants(path: Path) -> set[str]:
    """The path as given and as resolved: Claude Code uses the real path of the project."""
    return {str(path), os.path.realpath(path)}


def _has_prefix(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + "-")


def _split(rel: str) -> tuple[str | None, str]:
    if not rel.startswith(PROJECTS):
        return None, ""
    folder, sep, rest = rel[len(PROJECTS) :].partition("/")
    return (folder, sep + rest) if folder else (None, "")


HOME_TOKEN = b"${CLAUDE_SYNC_HOME}"
#: JSON files holding absolute paths under the home, stored with the home as HOME_TOKEN
HOME_MAPPED = (
    "settings.json",
    "plugins/installed_plugins.json",
    "plugins/known_marketplaces.json",
    MCP_SERVERS,
)


class HomeFilter:
    """settings.json holds absolute paths (hook commands, allowed directories): stored with
    the home directory as a token, written back with this machine's home."""

    def __init__(self, home: Path) -> None:
        self.home = str(home).rstrip("/").encode()

    def to_logical(self, data: bytes) -> bytes:
        if len(self.home) < 2:
            return data
        data = data.replace(self.home + b"/", HOME_TOKEN + b"/")
        return data.replace(b'"' + self.home + b'"', b'"' + HOME_TOKEN + b'"')

    def to_local(self, data: bytes) -> bytes:
        return data.replace(HOME_TOKEN, self.home) if len(self.home) >= 2 else data
