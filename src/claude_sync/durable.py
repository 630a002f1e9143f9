"""Durability of local writes: what a rename or a new file needs to survive a power cut."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

#: how much a long run of writes leaves unwritten on the disk before the disk is told to start
WRITE_BACK_EVERY = 64 << 20
#: what a new file costs the disk to write back besides its bytes (its inode, its name in a
#: folder, the journal's record of them), counted as that many bytes: a pull of 50,000 small
#: files (34 MiB) otherwise left all of them to the sync at its end (0.45-0.8 s here, against
#: under 0.1 s with a write-back every ~4,000 files while they were written)
FILE_WRITE_BACK = 16 << 10


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
    durable: bool = True,
) -> bool:
    """Put a file in place whole or not at all, and durably: the bytes (or what `content`
    writes to the open file) go to a temporary file in the same folder, which is fsynced,
    renamed to path, and then the folder is fsynced so the rename survives a power cut too.

    `private` makes the file readable by the owner only. `before_rename` may adjust the
    written temporary file (mode, times) and return False to abandon the write: path is left
    untouched and False returned. `rename` is os.replace, or a create-only rename that raises
    FileExistsError when path exists. The temporary file never outlives the call. Without
    `durable`, nothing is synced: whole or not at all still, but a power cut may undo it."""
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
            if durable:
                os.fsync(fh.fileno())
        if before_rename is not None and not before_rename(Path(tmp)):
            return False
        rename(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    if durable:
        fsync_path(path.parent)
    return True


def write_private(path: Path, data: bytes, durable: bool = True) -> None:
    """Atomically replace path with data, readable by the owner only (durable: see
    write_atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    write_atomically(path, data, private=True, durable=durable)


class WriteBack:
    """While a long run of writes goes on (a pull of a GiB), the disk writes what it has
    written so far, so that the sync at its end (portable.sync_all) waits for the last part,
    not for all of it: 0.5 s of a 1 GiB pull here, and on a machine whose memory takes many
    GiB before the kernel starts on its own. A thread calls os.sync() each time another
    `every` bytes are written; where there is no os.sync, nothing happens. Used in a `with`
    block; wrote() is called from any thread."""

    def __init__(self, every: int | None = None) -> None:
        self._every = every or WRITE_BACK_EVERY
        self._written = 0
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._done = False
        self._thread: threading.Thread | None = None

    def wrote(self, size: int, files: int = 0) -> None:
        """size more bytes written, to files new files (see FILE_WRITE_BACK)."""
        with self._lock:
            self._written += size + files * FILE_WRITE_BACK
            if self._written < self._every or not hasattr(os, "sync"):
                return
            self._written = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="write-back", daemon=True)
                self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._done:
                return
            os.sync()

    def __enter__(self) -> WriteBack:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done = True
        self._wanted.set()
        # Not waited for when the writes failed or were interrupted: the sync going on would
        # only delay the error (and the thread ends with the process).
        if self._thread is not None and kind is None:
            self._thread.join()
