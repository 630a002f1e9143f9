"""Case-insensitive file systems (macOS and Windows by default): two logical paths that differ
only in case (`agents/Review.md`, `agents/review.md`, both possible from Linux) would be one
file there, and writing the second would overwrite the first. A pull writes such a path under
a free name instead (`agents/Review (case 2).md`) and warns; that name is then an ordinary
file, synced as one, so nothing is lost on any machine.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
from collections.abc import Iterable
from pathlib import Path

from claude_sync.resources import TMP_MARKER


def plan_renames(writes: Iterable[str], present: Iterable[str]) -> dict[str, str]:
    """For a case-insensitive target holding `present` (logical paths): the new logical path
    of each write that would land on a file of another name, the others unchanged."""
    taken = {p.casefold(): p for p in present}
    renames = {}
    for path in sorted(writes):
        owner = taken.setdefault(path.casefold(), path)
        if owner == path:
            continue
        folder, name = posixpath.split(path)
        stem, dot, ext = name.partition(".") if not name.startswith(".") else (name, "", "")
        n = 2
        while True:
            candidate = posixpath.join(folder, f"{stem} (case {n}){dot}{ext}")
            if candidate.casefold() not in taken:
                break
            n += 1
        taken[candidate.casefold()] = candidate
        renames[path] = candidate
    return renames


def is_case_insensitive(folder: Path) -> bool:
    """Whether names in folder ignore case: a probe file found under its upper-case name."""
    name = f".case{TMP_MARKER}-{secrets.token_hex(4)}"
    try:
        os.close(os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return False
    try:
        return (folder / name.upper()).exists()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(folder / name)


def renames_for(root: Path, writes: Iterable[str], present: Iterable[str]) -> dict[str, str]:
    """plan_renames where root is case-insensitive (probed only when a collision is possible)."""
    renames = plan_renames(writes, present)
    return renames if renames and is_case_insensitive(root) else {}
