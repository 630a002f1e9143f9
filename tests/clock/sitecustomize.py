"""Loaded by test subprocesses whose PYTHONPATH names this folder (tests/test_prune_safety.py).

CLAUDE_SYNC_TEST_SKEW: seconds added to this process's clock (a machine whose clock is off).
CLAUDE_SYNC_TEST_PAUSE: a path; the first folder-store write of a name starting with
CLAUDE_SYNC_TEST_PAUSE_AT creates `<path>.paused` and waits until <path> exists (a push
stopped half-way, as by a laptop going to sleep).
CLAUDE_SYNC_TEST_KILL_AFTER: a name prefix; right after the folder store wrote such a name,
the process is SIGKILLed (killed between writing a snapshot and recording it).
"""

import os
import signal
import time
from pathlib import Path

_skew = float(os.environ.get("CLAUDE_SYNC_TEST_SKEW", "0"))
if _skew:
    _real = time.time
    time.time = lambda: _real() + _skew  # type: ignore[assignment]

_pause = os.environ.get("CLAUDE_SYNC_TEST_PAUSE")
if _pause:
    from claude_sync.store.folder import FolderStore

    _put = FolderStore.put_if_absent
    _at = os.environ.get("CLAUDE_SYNC_TEST_PAUSE_AT", "snapshots/")

    def _paused_put(self: FolderStore, name: str, data: bytes) -> bool:
        release = Path(_pause)
        if name.startswith(_at) and not release.exists():
            Path(_pause + ".paused").touch()
            deadline = time.monotonic() + 120
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return _put(self, name, data)

    FolderStore.put_if_absent = _paused_put  # type: ignore[method-assign]

_kill_after = os.environ.get("CLAUDE_SYNC_TEST_KILL_AFTER")
if _kill_after:
    from claude_sync.store.folder import FolderStore

    _put_then_die = FolderStore.put_if_absent

    def _killed_put(self: FolderStore, name: str, data: bytes) -> bool:
        written = _put_then_die(self, name, data)
        if written and name.startswith(_kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
        return written

    FolderStore.put_if_absent = _killed_put  # type: ignore[method-assign]
