"""`claude-sync watch`: push shortly after Claude Code writes; pull, and push what no event
told of, on an interval."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from claude_sync import resources
from claude_sync.pathmap import PathMapper

#: where the kernel gives no more file watches: a push this often at least (seconds)
WALK_EVERY = 60.0
#: where watchdog says which folders made since the start it could not watch (and watches
#: the others)
_REFUSALS = logging.getLogger("watchdog.observers.inotify")
#: the kernel's limits on watches and on watching processes, by the error of each
_LIMITS = {errno.ENOSPC: "max_user_watches=524288", errno.EMFILE: "max_user_instances=1024"}


def _raise_it(error: int) -> str:
    return f"on Linux, `sudo sysctl fs.inotify.{_LIMITS[error]}` raises the limit"


class _Changes(FileSystemEventHandler):
    """Remembers when a synced file last changed; our own temporary files do not count."""

    def __init__(self, root: Path, mapper: PathMapper) -> None:
        self.root = root.resolve()
        self.mapper = mapper
        self.changed_at: float | None = None
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = raw.decode() if isinstance(raw, bytes) else raw
            if path and self._synced(Path(path)):
                with self.lock:
                    self.changed_at = time.monotonic()

    def _synced(self, path: Path) -> bool:
        try:
            rel = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return False
        return resources.type_of(self.mapper.to_logical(rel)) is not None

    def take_if_quiet(self, debounce: float) -> bool:
        """True (once) when something changed and nothing else changed for `debounce` s."""
        with self.lock:
            if self.changed_at is None or time.monotonic() - self.changed_at < debounce:
                return False
            self.changed_at = None
            return True


def watch(
    root: Path,
    mapper: PathMapper,
    push: Callable[[], None],
    pull: Callable[[], None],
    debounce: float,
    interval: float,
    ready: Callable[[], None],
    warn: Callable[[str], None],
) -> None:
    """Run until Ctrl-C or SIGTERM; push and pull report their own errors and never stop us.
    ready() is called once changes are observed and both signals stop us cleanly: a banner
    printed earlier would promise more than is true (and tests would have to guess when)."""
    stopping: list[int] = []  # a plain flag: Event.set() takes a lock the main thread may hold

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # A KeyboardInterrupt raised wherever the main thread is (a lazy import, a pack being
        # written) can turn into another error or stop work halfway: stop between two pulls
        # or pushes instead. A second Ctrl-C interrupts at once.
        stopping.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.signal(signal.SIGINT, on_signal)
    root.mkdir(parents=True, exist_ok=True)
    changes = _Changes(root, mapper)
    refused = _Refused()
    _REFUSALS.addHandler(refused)
    observer = _observing(root, changes, warn)
    next_pull = time.monotonic()
    next_walk = next_pull + WALK_EVERY
    try:
        ready()
        while not stopping:
            if refused.folder and not refused.told:
                refused.told = True
                warn(
                    f"cannot watch {refused.folder} and other folders made since ({refused.why}; "
                    f"{_raise_it(errno.ENOSPC)}): pushing every {WALK_EVERY:g} s as well"
                )
                next_walk = time.monotonic()
            if time.monotonic() >= next_pull:
                pull()
                # And what no event told of: changes made before the watch began, and those
                # the kernel dropped (its queue overflows on a burst of writes: watchdog
                # then rebuilds its watches, and says nothing to us). A walk when nothing
                # changed.
                push()
                next_pull = time.monotonic() + interval
                next_walk = time.monotonic() + WALK_EVERY
            elif (observer is None or refused.told) and time.monotonic() >= next_walk:
                push()
                next_walk = time.monotonic() + WALK_EVERY
            if changes.take_if_quiet(debounce):
                push()
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass  # a second Ctrl-C
    finally:
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        _REFUSALS.removeHandler(refused)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _observing(root: Path, changes: _Changes, warn: Callable[[str], None]) -> BaseObserver | None:
    """The observer of changes under root, started; None when the kernel gives no more
    file watches (one per folder: a big projects folder meets a low limit)."""
    observer = Observer()
    try:
        # (schedule takes the kernel's watching instance, start the watches)
        observer.schedule(changes, str(root), recursive=True)
        observer.start()
    except OSError as exc:
        if exc.errno not in _LIMITS:
            raise
        with contextlib.suppress(Exception):
            observer.stop()  # the instance given back: it counts against the limit too
        warn(
            f"cannot watch {root} for changes ({exc.strerror}; {_raise_it(exc.errno)}): "
            f"pushing every {WALK_EVERY:g} s instead"
        )
        return None
    return observer


class _Refused(logging.Handler):
    """The first folder watchdog could not watch (the kernel gave no more watches), as
    watchdog logs it from its thread, a line per folder; its other warnings are printed
    as they were (where no handler is set up, by logging's last resort)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.folder = ""
        self.why = ""
        self.told = False

    def emit(self, record: logging.LogRecord) -> None:
        # watchdog's `logger.warning("Unable to watch %r: %s", path, error)`
        args = record.args if isinstance(record.args, tuple) else ()
        if not str(record.msg).startswith("Unable to watch") or len(args) < 2:
            if logging.lastResort is not None and not logging.getLogger().handlers:
                logging.lastResort.handle(record)
            return
        if self.folder:
            return
        path, error = args[:2]
        self.why = getattr(error, "strerror", None) or str(error)
        self.folder = os.fsdecode(path) if isinstance(path, bytes | str) else str(path)
