"""Durability of local writes: what a rename or a new file needs to survive a power cut."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_path(path: str | Path) -> None:
    """Flush a file's or folder's contents (a folder: the names in it) to the disk.
    Windows cannot open a folder for this, nor needs to: NTFS journals its names."""
    if os.name == "nt" and os.path.isdir(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(
    path: Path,
    content: bytes | Callable[[BinaryIO], object],
    *,
    prefix: str = ".tmp-",
    private: bool = False,
    before_rename: Callable[[Path], bool] | None = None,
    rename: Callable[[str, Path], None] = os.replace,
) -> bool:
    """Put a file in place whole or not at all, and durably: the bytes (or what `content`
    writes to the open file) go to a temporary file in the same folder, which is fsynced,
    renamed to path, and then the folder is fsynced so the rename survives a power cut too.

    `private` makes the file readable by the owner only. `before_rename` may adjust the
    written temporary file (mode, times) and return False to abandon the write: path is left
    untouched and False returned. `rename` is os.replace, or a create-only rename that raises
    FileExistsError when path exists. The temporary file never outlives the call."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        if private:
            os.chmod(tmp, 0o600)  # os.fchmod is POSIX-only
        with os.fdopen(fd, "wb") as fh:
            if isinstance(content, bytes):
                fh.write(content)
            else:
                content(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if before_rename is not None and not before_rename(Path(tmp)):
            return False
        rename(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fsync_path(path.parent)
    return True


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace path with data, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    write_atomically(path, data, private=True)
