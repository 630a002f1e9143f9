"""Running one command and measuring it: wall time, peak RSS, output."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass
class Run:
    """One finished command."""

    wall: float
    peak_rss: int  # bytes
    stdout: str
    stderr: str


class CommandFailed(RuntimeError):
    def __init__(self, message: str, wall: float) -> None:
        super().__init__(message)
        self.wall = wall


def _has_gnu_time() -> bool:
    if not os.access(GNU_TIME, os.X_OK):
        return False
    probe = subprocess.run([GNU_TIME, "-f", "%M", "true"], capture_output=True, text=True)
    return probe.returncode == 0 and probe.stderr.strip().isdigit()


HAS_GNU_TIME = _has_gnu_time()


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 3600) -> Run:
    """Run args; peak RSS from GNU time when present, else from getrusage of the children."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        prefix = [GNU_TIME, "-f", "%M", "-o", rss_file.name] if HAS_GNU_TIME else []
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        # What the last command (or the data's generation) left to write back would slow
        # this one's own writes: on this disk an fsync'd 8 MiB write took from 2 to 25 ms
        # of CPU depending on it, and the tools run one after another.
        os.sync()
        start = time.perf_counter()
        proc = subprocess.run(
            prefix + args, env=env, cwd=cwd, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=timeout,
        )  # fmt: skip
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise CommandFailed(
                f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout[-2000:]}\n"
                f"{proc.stderr[-4000:]}",
                wall,
            )
        if HAS_GNU_TIME:
            peak_kib = int(rss_file.read().strip().splitlines()[-1])
        else:  # the largest child so far: right only when it grows, hence GNU time first
            peak_kib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return Run(wall, peak_kib * 1024, proc.stdout, proc.stderr)


def tree_bytes(root: Path) -> int:
    """Sum of the sizes of every file under root."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def need(commands: list[str]) -> list[str]:
    """The commands among these that are not on PATH."""
    return [c for c in commands if shutil.which(c) is None]


#: how long the page cache's memory is left to the host after it is dropped
SETTLE_SECONDS = 3.0


def start_cold() -> bool:
    """Write out what is dirty and drop the page cache, so that the next command starts
    from the memory the one before it did: on this benchmark's VM, memory the page cache
    takes for the first time costs ~3 s of system time per GiB, and without this the
    first tool to pull a big set took all of it and the next one reused what the earlier
    steps had cached (ordering, not speed, decided a 1.6x). False where it cannot (not
    root, not Linux): the numbers then carry that noise."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    time.sleep(SETTLE_SECONDS)
    return True
