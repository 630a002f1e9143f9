"""A first walk's helper: a child process that lists the synced folders, and looks at their
entries, several folders at once, so that the walk finds them in the kernel's caches.

A walk reads each folder and each file's inode one after the other. When they are not
cached (a first push after a reboot, or the bench's dropped page cache) it waits on the disk
for each: 50,000 files in 15,000 folders took 2.0-2.4 s here, against 1.3-1.4 s with this
child listing the same folders on four threads beside it. A child, not threads of the walk:
the walk's own threads would take turns at the interpreter's lock (slower when cached), and
a process of its own uses the other core. When they are cached already, the child costs the
walk ~0.15 s at 50,000 files: it is started for a walk whose files this machine has never
recorded (whose scan then reads them all anyway), and for one whose first look finds the
disk being read (`cold`: after a reboot, the first push a hook runs), not otherwise.

It looks at what the walk looks at, and no more: the folders it is given (each inside the
Claude folder, never through a link), never following a link below them, never opening a
file. Being only a help, it is stopped once the walk is done, wherever it got to.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from claude_sync import portable, worker_process

#: folders listed at once (measured: 4 threads 1.26-1.41 s, 8 threads 1.27-1.62 s)
THREADS = 4


def listed(folder: str) -> Iterator[str]:
    """Each folder below folder (itself first) as it is listed, its entries looked at; a
    link is not followed, nor is folder itself when it is one."""
    if os.path.islink(folder):
        return
    pending = [folder]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError), os.scandir(current) as entries:
            yield current
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    else:
                        entry.stat(follow_symlinks=False)


def _walk(folder: str) -> None:
    for _ in listed(folder):
        pass


def _subfolders(folder: str) -> Iterator[os.DirEntry[str]]:
    """A synced folder's subfolders, as listed; none when it is a link or cannot be listed."""
    if os.path.islink(folder):
        return
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield entry


def _shared_out(folders: list[str]) -> list[str]:
    """The folders' own subfolders, to be shared out among the threads (a synced folder
    such as `projects` holds most of the tree); a folder that holds none, as itself."""
    shared: list[str] = []
    for folder in folders:
        shared += [e.path for e in _subfolders(folder)] or [folder]
    return shared


#: the fewest files recorded for a walk to look whether the disk is cold: a smaller tree is
#: walked in little time either way
COLD_WALK_FILES = 2000
#: how many of the synced folders' subfolders `cold` looks at, and the fewest it judges by
PROBE, PROBE_LEAST = 16, 4
#: the time per subfolder looked at (the synced folders listed, and each subfolder's inode)
#: above which the disk is taken to be read, not its cache: 20-30 µs here from the cache,
#: 200 µs to 1 ms from the disk
COLD_LOOK = 100e-6


def cold(folders: list[str]) -> bool:
    """Whether the folders' entries seem to come from the disk, not its cache: listing them
    and looking at PROBE of their subfolders (PROBE_LEAST at least) took over COLD_LOOK
    each."""
    began, looked = time.perf_counter(), 0
    every = itertools.chain.from_iterable(_subfolders(f) for f in folders)
    for entry in itertools.islice(every, PROBE):
        with contextlib.suppress(OSError):
            entry.stat(follow_symlinks=False)
        looked += 1
    return looked >= PROBE_LEAST and time.perf_counter() - began > COLD_LOOK * looked


def start(folders: list[str]) -> subprocess.Popen[bytes] | None:
    """The child, listing folders (absolute paths); None where it is not worth one (no
    folder, Windows) or cannot start."""
    if not folders or portable.WINDOWS:
        return None
    try:
        child = worker_process.start(worker_process.module_command("claude_sync.walk_warmer"))
        assert child.stdin is not None
        child.stdin.write("\0".join(folders).encode("utf-8", "surrogateescape"))
        child.stdin.close()
    except (OSError, ValueError):
        return None
    return child


def stop(child: subprocess.Popen[bytes] | None) -> None:
    """Stop the child, wherever it got to, and wait until it is gone."""
    if child is None:
        return
    with contextlib.suppress(OSError):
        child.kill()
    worker_process.finish(child, None)


def main() -> None:
    folders = sys.stdin.buffer.read().decode("utf-8", "surrogateescape").split("\0")
    shared = _shared_out([f for f in folders if f])
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(_walk, shared):
            pass


if __name__ == "__main__":
    main()
