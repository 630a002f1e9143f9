"""Half of a big walk done by a forked copy of this process, beside the other half.

A push, `status` and the hooks' commands walk the whole Claude folder to know whether
anything changed: at 50,000 files in 15,000 folders, 0.40 s of a 0.6 s no-op push, most of
it the kernel's listing and `lstat` (a bare walk is 0.28 s here, `find` 0.27 s). Threads do
not share that (each step takes the interpreter's lock back: a walk on two threads was
slower); a second process does (two halves in 0.15-0.16 s). A forked copy starts at once,
knows the walk's settings, and sends back only what it found.

Only where a fork is safe: on Linux, from a process with no other thread (a lock another
thread holds at the fork stays held in the child forever; Python 3.12 warns of it). The
child only lists folders and reads inodes, then leaves with `os._exit` (no `atexit`, no
buffers flushed, the state's database untouched). Being only a help, its failure costs
nothing but time: the parent walks that half itself.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: a walk this machine knows to see at least this many files is split (a fork and its
#: child's answer cost ~5 ms: a walk of 2,000 files takes ~15 ms)
WORTH_FILES = 5000


def available() -> bool:
    """Whether a walk may fork here and now."""
    return sys.platform == "linux" and threading.active_count() == 1


def beside(theirs: Callable[[], T], mine: Callable[[], None]) -> T | None:
    """Runs theirs in a forked child while mine runs here; theirs' result (picklable), or
    None when the child failed (the caller then does that part itself)."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: never returns
        _child(theirs, read_end, write_end)
    os.close(write_end)
    done = False
    try:
        mine()
        with os.fdopen(read_end, "rb") as pipe:
            read_end = -1
            data = pipe.read()
        done = True
    finally:
        if read_end != -1:
            os.close(read_end)
        if not done:
            # Interrupted (Ctrl-C) or failed here: the child's half is not wanted.
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # (SIGCHLD ignored: reaped already)
            os.waitpid(pid, 0)
    try:
        # Whole only if the child wrote it all: a pickle cut short lacks its last opcode.
        result: T = pickle.loads(data)
    except (pickle.UnpicklingError, EOFError, ValueError):
        return None
    return result


def _child(theirs: Callable[[], T], read_end: int, write_end: int) -> None:
    code = 1  # whatever went wrong (it is never raised: the parent walks this half)
    try:
        os.close(read_end)
        # A Ctrl-C reaches the whole process group: the parent decides for both.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        data = pickle.dumps(theirs(), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
        code = 0
    finally:
        os._exit(code)
