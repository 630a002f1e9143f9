"""Starting and stopping the plain child processes a sync hands work to (summary_worker,
read_worker, write_worker, open_worker): started with only what an interpreter needs in
their environment, talked to over their standard input and output; the read, write and open
workers in frames (a 4-byte little-endian length and its bytes), a batch at a time."""

from __future__ import annotations

import collections
import contextlib
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import IO, Generic, TypeVar

R = TypeVar("R")
_LENGTH = struct.Struct("<I")
#: the most a frame may claim (a batch of small files, with their bytes)
MAX_FRAME = 1 << 28

#: all a worker keeps of this process's environment: what an interpreter needs to start
_KEEP = ("PATH", "SYSTEMROOT", "LANG", "LC_ALL", "TZ", "TMPDIR", "TEMP", "TMP")


def module_command(module: str) -> tuple[str, ...]:
    """How a child runs one of our modules: this interpreter, told (-P) not to put the working
    directory first on its import path. Hooks run in a project's folder, where a folder named
    `claude_sync` would otherwise be imported instead of ours, and run as code."""
    return (sys.executable, "-P", "-m", module)


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


class Worker(Generic[R]):
    """A worker answering batches in frames: callers hand it batches one after the other, so
    that it always has the next one waiting; a thread collects its answers, in order, each
    made of `frames` frames that `answer` turns into the batch's result (ValueError when
    they do not fit the batch)."""

    def __init__(
        self,
        command: Sequence[str],
        name: str,
        frames: int,
        answer: Callable[[list[bytes], int], R],
        setup: bytes | None = None,
    ) -> None:
        self.name = name
        self.proc = start(command)
        self._frames = frames
        self._answer = answer
        # Two locks: a sender may block writing while the worker blocks writing an answer,
        # which the collector must be free to read (it takes only `_lock`, never held
        # across a write).
        self._lock = threading.Lock()  # the batches waiting, and whether it is stopped
        self._sending = threading.Lock()  # one request written at a time, in their order
        self._waiting: collections.deque[tuple[Future[R], int]] = collections.deque()
        self._stopped = False
        try:
            if setup is not None:
                self._send([setup])
        except (OSError, ValueError):
            self.stop()
            finish(self.proc, None)
            raise
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()

    def send(self, request: Iterable[bytes], count: int) -> Future[R]:
        """Hand the worker a batch of count items (its frames); its answer comes in the
        future, which fails with OSError when the worker stopped first."""
        future: Future[R] = Future()
        with self._sending:
            with self._lock:
                if self._stopped:
                    raise OSError(f"the {self.name} stopped")
                self._waiting.append((future, count))
            try:
                self._send(request)
            except (OSError, ValueError) as exc:
                self.stop()
                raise OSError(f"the {self.name} stopped ({exc})") from None
        return future

    def ask(self, request: Iterable[bytes], count: int, wait: float) -> R:
        """A batch's answer; OSError when the worker failed, or took longer than wait (it is
        then stopped: a sync run by a hook must not wait on it for ever)."""
        return self.result(self.send(request, count), wait)

    def result(self, future: Future[R], wait: float) -> R:
        try:
            return future.result(timeout=wait)
        except TimeoutError:
            self.stop()  # hung: what waits on it fails at once
            raise OSError(f"the {self.name} did not answer") from None

    def _send(self, frames: Iterable[bytes]) -> None:
        assert self.proc.stdin is not None
        for body in frames:
            write_frame(self.proc.stdin, body)
        self.proc.stdin.flush()

    def stop(self) -> None:
        """Kill the worker: a write to it fails, and the collector fails what waits."""
        with self._lock:
            self._stopped = True
        with contextlib.suppress(OSError):
            self.proc.kill()

    def stopped(self, wait: float) -> None:
        """Kill the worker and wait until it is gone, so that nothing it was writing lands
        after the caller writes the same files itself; OSError when it does not go."""
        self.stop()
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            raise OSError(f"the {self.name} (pid {self.proc.pid}) could not be stopped") from None

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                frames = [read_frame(self.proc.stdout) for _ in range(self._frames)]
                with self._lock:
                    future, count = self._waiting.popleft()
                future.set_result(self._answer(frames, count))
        except (OSError, ValueError, EOFError, IndexError, TypeError, KeyError):
            pass  # stopped, or an answer that makes no sense: the worker is of no more use
        finally:
            self.stop()
            with self._lock:
                waiting, self._waiting = self._waiting, collections.deque()
            for future, _ in waiting:
                if not future.done():
                    future.set_exception(OSError(f"the {self.name} stopped"))

    def close(self) -> None:
        finish(self.proc, self._collector)


def start_workers(
    command: Sequence[str],
    name: str,
    count: int,
    answer: Callable[[list[bytes], int], R],
    setup: bytes | None = None,
    input_pipe: int = 0,
) -> list[Worker[R]]:
    """count workers answering in one frame (see Worker), each input pipe widened to
    input_pipe bytes (see widen_pipe); none left running when one cannot start."""
    workers: list[Worker[R]] = []
    try:
        for _ in range(count):
            workers.append(Worker(command, name, 1, answer, setup))
            if input_pipe:
                assert workers[-1].proc.stdin is not None
                widen_pipe(workers[-1].proc.stdin, input_pipe)
    except (OSError, ValueError):
        for worker in workers:
            worker.close()
        raise
    return workers


def widen_pipe(pipe: IO[bytes], size: int) -> None:
    """Let a pipe hold up to size bytes before a write to it waits, where the system allows
    (Linux; elsewhere, and past /proc/sys/fs/pipe-max-size, it keeps its size)."""
    try:
        import fcntl
    except ImportError:
        return
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, size)


def write_frame(out: IO[bytes], body: bytes) -> None:
    out.write(_LENGTH.pack(len(body)))
    out.write(body)


def read_frame(source: IO[bytes]) -> bytes:
    """The next frame; EOFError when the other side stopped."""
    head = source.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the other side stopped")
    (length,) = _LENGTH.unpack(head)
    if length > MAX_FRAME:
        raise ValueError("an implausible frame")
    body = source.read(length)
    if len(body) < length:
        raise EOFError("the other side stopped")
    return body
