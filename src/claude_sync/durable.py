"""Durability of local writes: what a rename or a new file needs to survive a power cut."""

from __future__ import annotations

import os
from pathlib import Path


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
