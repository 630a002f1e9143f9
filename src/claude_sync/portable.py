"""What differs between Linux, macOS and Windows (and file systems without hard links), kept
here so that the rest of the code calls one function that works everywhere."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claude_sync.durable import fsync_path

if TYPE_CHECKING:
    from claude_sync import resources

WINDOWS = os.name == "nt"
#: flags that exist only on some systems; 0 (no effect) elsewhere
O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
O_BINARY: int = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def pwrite(fd: int, data: bytes, offset: int) -> None:
    """Write all of data at offset. Without os.pwrite (Windows) seek and write: callers open
    one descriptor per write, so nothing else moves its position in between."""
    view = memoryview(data)
    while view:
        if hasattr(os, "pwrite"):
            written = os.pwrite(fd, view, offset)
        else:
            os.lseek(fd, offset, os.SEEK_SET)
            written = os.write(fd, view)
        view = view[written:]
        offset += written


def prefetch(files: Iterable[tuple[str, int]]) -> None:
    """Have the disk start reading these files (path, bytes from the start) while the caller
    works on others: reads from a cold cache otherwise wait for the disk one file at a time
    (a first push of 1 GiB spent a third of its readers' time in them). Where the system
    cannot be told (no posix_fadvise), or a file cannot be opened, nothing: its read waits."""
    if not hasattr(os, "posix_fadvise"):
        return
    # Only what was a regular file, by its own name: a name now a link, or a pipe that would
    # block the open, or a device, is left to its read (which says what it is).
    flags = os.O_RDONLY | O_CLOEXEC | O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
    for path, size in files:
        try:
            fd = os.open(path, flags)
        except OSError:
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.posix_fadvise(fd, 0, size, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def mode_of(st: os.stat_result | resources.FileStat) -> int:
    """A file's permission bits to store. Windows has only a read-only flag, which would come
    out as 0o666 (world-writable) elsewhere: its files are stored as private."""
    return 0o600 if WINDOWS else stat.S_IMODE(st.st_mode)


def set_mode(path: str | Path, mode: int) -> None:
    """Apply stored permission bits where they mean something (not on Windows, where a mode
    from elsewhere could only make the file read-only and block its next replacement)."""
    if not WINDOWS:
        os.chmod(path, file_mode(mode))


def file_mode(mode: int) -> int:
    """The permission bits set_mode gives a file stored with mode."""
    return mode & 0o777 or 0o600


def sync_all(paths: Iterable[str | Path]) -> None:
    """Make many written files durable: one os.sync() where there is one, else each file."""
    if hasattr(os, "sync"):
        os.sync()
        return
    for path in paths:
        fsync_path(path)


def detached() -> dict[str, Any]:
    """Popen arguments for a worker that outlives the process starting it, and its signals."""
    if WINDOWS:
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS  # type: ignore[attr-defined]
        return {"creationflags": flags}
    return {"start_new_session": True}


def create_only_rename(tmp: str, path: str | Path) -> None:
    """Give the complete file tmp the name path unless that name exists (FileExistsError).

    A hard link does it atomically. Where the file system has none (FAT, exFAT, some network
    shares): on Windows a rename refuses to replace; elsewhere an O_EXCL create claims the
    name first, so of two writers only one proceeds, and the complete file replaces the
    empty claim at once (readers authenticate every object, so an object seen empty in that
    instant is an error to retry, never accepted data)."""
    try:
        os.link(tmp, path)
        return
    except FileExistsError:
        raise
    except (OSError, NotImplementedError, AttributeError) as exc:
        if isinstance(exc, OSError) and not _no_hard_links(exc):
            raise
    if WINDOWS:
        os.rename(tmp, path)
        return
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_NOFOLLOW, 0o600))
    os.replace(tmp, path)


def _no_hard_links(exc: OSError) -> bool:
    unsupported = {errno.EPERM, errno.ENOSYS, errno.EXDEV, errno.EMLINK}
    unsupported |= {getattr(errno, n) for n in ("ENOTSUP", "EOPNOTSUPP") if hasattr(errno, n)}
    return exc.errno in unsupported or getattr(exc, "winerror", None) == 1  # ERROR_INVALID_FUNCTION
