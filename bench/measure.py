"""Running one command and measuring it: wall time, peak RSS, output."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
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


#: a machine this little busy (a share of all its cores) is quiet enough to start a command
QUIET_SHARE = 0.1
#: the longest wait for it
QUIET_TIMEOUT = 180.0


def _busy_and_total() -> tuple[int, int]:
    """The machine's CPU ticks spent busy and in all, since it started (/proc/stat)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def wait_quiet() -> float | None:
    """Wait until the machine has been quiet (under QUIET_SHARE of its cores busy) for a
    second; the seconds waited, or None where that cannot be seen (no /proc/stat). A guard:
    no tool is timed while the last one's work (a server's, the disk's write-back) still
    runs. It never had to wait in the eighteenth session's runs, which is how the slow
    commands after rclone's long S3 runs were found not to be that (see warm)."""
    start = time.monotonic()
    try:
        before = _busy_and_total()
        while time.monotonic() - start < QUIET_TIMEOUT:
            time.sleep(1.0)
            now = _busy_and_total()
            busy, total = now[0] - before[0], now[1] - before[1]
            if total and busy < QUIET_SHARE * total:
                break
            before = now
    except (OSError, ValueError, IndexError):
        return None
    return time.monotonic() - start


def warm(metadata: Iterable[Path], content: Iterable[Path]) -> None:
    """Bring into the page cache the entries of every tree in metadata (a stat of each)
    and all of every file or tree in content (read whole). On this VM, DAMON pages out
    what was not touched for 60 s: a tool timed after another's long run found the Claude
    folder's inodes and its own state read back from the disk (claude-sync's no-op push
    of 50,000 files 1.35-1.45 s instead of 0.56-0.62 s after rclone's 90 s on S3, and the
    tool timed next found them warm)."""
    for tree in metadata:
        for _root, _dirs, names in os.walk(tree):
            for name in names:
                with contextlib.suppress(OSError):
                    os.lstat(os.path.join(_root, name))
    for place in content:
        files = [place] if place.is_file() else [
            Path(r, n) for r, _d, names in os.walk(place) for n in names
        ]  # fmt: skip
        for path in files:
            with contextlib.suppress(OSError), path.open("rb") as fh:
                while fh.read(1 << 20):
                    pass


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
