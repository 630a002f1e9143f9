"""Half of a big walk done by a forked copy of this process, beside the other half.

A push, `status` and the hooks' commands walk the whole Claude folder to know whether
anything changed: at 50,000 files in 15,000 folders, 0.40 s of a 0.6 s no-op push, most of
it the kernel's listing and `lstat` (a bare walk is 0.28 s here, `find` 0.27 s). Threads do
not share that (each step takes the interpreter's lock back: a walk on two threads was
slower); a second process does (two halves in 0.15-0.16 s). A forked copy starts at once,
knows the walk's settings, and sends back only what it found.

Only where a fork is safe: on Linux, from a process with no other thread, the interpreter's
or a library's (a lock another thread holds at the fork stays held in the child forever;
Python 3.12 warns of it; and a signal to the process could land in that thread, not the one
that holds signals across the fork). The
child only lists folders and reads inodes, then leaves with `os._exit` (no `atexit`, no
buffers flushed, the state's database untouched). Being only a help, its failure costs
nothing but time: the parent walks that half itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: a walk this machine knows to see at least this many files is split (a fork and its
#: child's answer cost ~5 ms: a walk of 2,000 files takes ~15 ms)
WORTH_FILES = 5000
#: how long the parent waits for the child's half once its own is done: WAIT_FACTOR times
#: what its own took, and at least MIN_WAIT seconds
WAIT_FACTOR, MIN_WAIT = 4, 10.0
_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def available() -> bool:
    """Whether a walk may fork here and now: a second core free for the child (on one, or
    on a busy machine, the split only adds the fork's cost: 0.06-0.1 s at 50,000 files)."""
    if sys.platform != "linux" or _threads() != 1:
        return False
    cores = len(os.sched_getaffinity(0))
    return cores >= 2 and others_running() < cores - 1


def _threads() -> int:
    """This process's threads, the interpreter's and any a library started: with one, a
    signal sent to the process can only reach the thread that holds it across the fork."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def others_running() -> int:
    """How many other tasks the kernel has running or ready to run right now (the load
    average lags a minute behind: after a push's busy seconds it said busy while idle)."""
    try:
        with open("/proc/loadavg", "rb") as fh:
            return int(fh.read().split()[3].split(b"/")[0]) - 1
    except (OSError, ValueError, IndexError):
        return 0


def beside(theirs: Callable[[], T], mine: Callable[[], None]) -> T | None:
    """Runs theirs in a forked child while mine runs here; theirs' result (picklable), or
    None when the child failed or could not start (the caller then does that part itself;
    mine has run either way)."""
    # No signal between the fork and each side's own handling of it: one landing in the
    # interpreter's at-fork hooks was printed as "Exception ignored" and lost (the command
    # went on), and in the child before its `try` it ran the parent's error path there.
    was = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    parent = os.getpid()
    pipe: tuple[int, int] | None = None
    try:
        read_end, write_end = pipe = os.pipe()
        pid = os.fork()
    except OSError:  # (no memory, no descriptor, or no process left under a limit)
        signal.pthread_sigmask(signal.SIG_SETMASK, was)
        for end in pipe or ():
            os.close(end)
        mine()
        return None
    if pid == 0:  # the child: never returns to the command, whatever happens
        try:
            _child(theirs, read_end, write_end, was, parent)
        finally:
            os._exit(1)
    os.close(write_end)
    done = False
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, was)  # a signal held meanwhile lands here
        began = time.monotonic()
        mine()
        data = _answer(read_end, max(MIN_WAIT, WAIT_FACTOR * (time.monotonic() - began)))
        done = data is not None
    finally:
        os.close(read_end)
        if not done:
            # Interrupted (Ctrl-C), failed here, or the child is too slow: its half is not
            # wanted.
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # (SIGCHLD ignored: reaped already)
            os.waitpid(pid, 0)
    try:
        # Whole only if the child wrote it all: a pickle cut short lacks its last opcode.
        result: T = pickle.loads(data or b"")
    except (pickle.UnpicklingError, EOFError, ValueError):
        return None
    return result


def _die_with(parent: int) -> None:
    """The kernel kills this child when the command ends, however it ends: a command
    killed (SIGKILL) while its process group was stopped left the child stopped, holding
    the caller's output open, for as long as nobody resumed it."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0 or os.getppid() != parent:
        os._exit(1)  # (the command already gone before it was asked: its half is not wanted)


def _answer(read_end: int, wait: float) -> bytes | None:
    """All the child writes, until it closes its end; None when it is not done within wait
    seconds of now (a child stopped, or on a disk far slower for it than here)."""
    deadline = time.monotonic() + wait
    pieces = []
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([read_end], [], [], left)[0]:
            break
        piece = os.read(read_end, 1 << 20)
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)
    return None


def _child(
    theirs: Callable[[], T], read_end: int, write_end: int, mask: set[int], parent: int
) -> None:
    code = 1  # whatever went wrong (it is never raised: the parent walks this half)
    try:
        os.close(read_end)
        _die_with(parent)
        # A Ctrl-C reaches the whole process group: the parent decides for both. A SIGTERM
        # ends the child as it is (not the command's handler, which would raise here).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        data = pickle.dumps(theirs(), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
        code = 0
    finally:
        os._exit(code)
