"""Bounds on what a pull or restore may write: a snapshot can make one small blob stand for
a huge file (the same blob listed many times), so sizes are checked before any download."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from claude_sync.errors import ConfigError, SyncError

MAX_FILE_SIZE_ENV = "CLAUDE_SYNC_MAX_FILE_SIZE"
#: A long session's transcript is hundreds of MiB and a very long one more than a GiB; a
#: file far beyond this is a snapshot that lies about a size, not a transcript.
DEFAULT_MAX_FILE_SIZE = 16 << 30
#: Left free after a pull: a full disk breaks Claude Code and everything else.
RESERVE = 64 * 1024 * 1024
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def max_file_size() -> int:
    """The largest file a pull writes: CLAUDE_SYNC_MAX_FILE_SIZE (bytes, or 512M, 2G)."""
    text = os.environ.get(MAX_FILE_SIZE_ENV, "").strip().lower().removesuffix("b")
    if not text:
        return DEFAULT_MAX_FILE_SIZE
    unit = text[-1] if text[-1] in _UNITS else ""
    try:
        value = int(float(text[: len(text) - len(unit)]) * _UNITS[unit])
    except ValueError:
        raise ConfigError(
            f"{MAX_FILE_SIZE_ENV} must be a size such as 512M or 2G, not {text!r}"
        ) from None
    if value <= 0:
        raise ConfigError(f"{MAX_FILE_SIZE_ENV} must be positive")
    return value


def too_large(files: Iterable[tuple[str, int]]) -> dict[str, str]:
    """The files larger than is plausible, each with why it is not written."""
    limit = max_file_size()
    return {
        path: f"it would be {_size(size)}, more than the {_size(limit)} a synced file may be "
        f"(raise {MAX_FILE_SIZE_ENV} if it is genuine)"
        for path, size in files
        if size > limit
    }


def check_room(files: Iterable[tuple[str, int]], root: Path, held: int = 0) -> None:
    """Refuse, before anything is downloaded, a file larger than is plausible or a set of
    files that would not fit on the disk holding root (held: bytes of them there already)."""
    files = list(files)
    for path, why in too_large(files).items():
        raise SyncError(f"refusing to write {path}: {why}")
    total = max(0, sum(size for _, size in files) - held)
    if not total:
        return
    free = shutil.disk_usage(existing_above(root)).free
    if total + RESERVE > free:
        raise SyncError(
            f"not enough free space: writing these files needs {_size(total)}, plus "
            f"{_size(RESERVE)} left free for everything else, and {_size(free)} is free on "
            f"the disk of {root}; free some space and run the command again"
        )


def existing_above(path: Path) -> Path:
    """path, or the nearest folder above it that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
