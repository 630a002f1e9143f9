"""Starting and stopping the plain child processes a push hands work to (summary_worker,
read_worker): started with only what an interpreter needs in their environment, talked to
over their standard input and output."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Sequence

#: all a worker keeps of this process's environment: what an interpreter needs to start
_KEEP = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL", "TZ", "TMPDIR", "TEMP", "TMP")


def start(command: Sequence[str]) -> subprocess.Popen[bytes]:
    """A worker, with pipes to its input and output."""
    env = {name: value for name in _KEEP if (value := os.environ.get(name)) is not None}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def finish(proc: subprocess.Popen[bytes], collector: threading.Thread | None) -> None:
    """Close the worker's input (it exits), killed if it does not within 5 s, and wait for
    the thread that reads its output (if one was started)."""
    with contextlib.suppress(OSError, ValueError):
        assert proc.stdin is not None
        proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if collector is not None:
        collector.join(timeout=5)
    with contextlib.suppress(OSError, ValueError):
        assert proc.stdout is not None
        proc.stdout.close()
