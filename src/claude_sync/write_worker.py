"""The small files a pull brings, written and then moved into place by worker processes.

A file of one chunk takes a pull five system calls to write (create, write, mode, times,
close) and three to move into place (look at what is there, rename, stat): for 50,000 small
files, ~2.5 s of one core, all of it the pull's own thread's while every other step waited.
Workers do them, each for its own folders (two processes creating files in one folder would
wait on its lock), while the pull's thread reads the next packs (and does a batch itself
when its worker is behind). The caller keeps deciding everything: what to write, when to
move, what a file not moved means (see Installer.install, which moves it itself or says why
not).

Each worker is a plain child process (worker_process) that answers a batch at a time: a
JSON list of operations and the bytes of the files written, back to back; and JSON
answers. It is given no keys: what it writes was verified before it was handed over.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from typing import IO, Any

from claude_sync import worker_process

#: a pull hands files to workers when it writes at least this many of one chunk (each
#: process takes ~30 ms to start)
WORKER_FILES = 1000
#: the biggest file a worker writes: the pipe copies a file's bytes twice more, which a small
#: file's system calls outweigh and a big one's need not (the bench's `huge` pull, whose files
#: of one chunk go up to several MiB, took 33.3 s with all of them handed over, 30.3 s in
#: the run before the workers)
WORKER_FILE_MAX = 64 << 10
#: one per core besides the pull's own thread, which also writes a batch when its worker
#: has AHEAD waiting (two workers on two cores only took the pull's thread's core from it);
#: what they do is mostly the file system's, whose locks more wait on (creating 50,000 files
#: here: 1.3-2.0 s by one process, 0.8-1.0 s by two, 1.4 s by four)
WRITE_WORKERS = max(1, min(3, (os.cpu_count() or 2) - 1))
#: a batch is sent once it holds this many files or bytes
BATCH_FILES = 256
BATCH_BYTES = 256 << 10
#: batches a worker may have to do before the next is done here instead (its pipe is made
#: big enough to hold those waiting: handing one over must not wait on the worker, which
#: left the pull's thread idle ~1 s of a pull of 50,000 files; 7.7-8.0 s -> 6.0-6.7 s)
AHEAD = 4
PIPE_BYTES = 1 << 20
#: how long a batch may take before its worker is taken for hung and stopped (the caller
#: then does that batch itself)
WRITE_WAIT = 60.0

#: a temporary file a pull writes: created if missing, never through a symlink
CREATE = (
    os.O_WRONLY
    | os.O_CREAT
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

#: (size, mtime_ns, ino, ctime_ns) as reading.stat_key makes it, and the file's st_mode
Placed = tuple[tuple[int, int, int, int], int]


def for_workers(size: int, chunks: int) -> bool:
    """Whether a file a pull writes is one for the workers: small, of one chunk."""
    return chunks == 1 and size <= WORKER_FILE_MAX


def open_creating(path: str, flags: int) -> int:
    """A private file opened with flags (which create it), its folder made if missing."""
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags, 0o600)


def write_whole(tmp: str, data: bytes | memoryview, mode: int, mtime_ns: int) -> None:
    """A new file (replacing any), never through a symlink, with its content, permission
    bits and modification time, its folder made if it is missing."""
    fd = open_creating(tmp, CREATE | os.O_TRUNC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
    finally:
        os.close(fd)


def move_if_unchanged(
    tmp: str, dest: str, expected: tuple[int, int, int, int] | None
) -> Placed | None:
    """Rename tmp to dest when dest is as the scan saw it (expected: its stat key; None:
    there was nothing); what dest then is. None when not moved: dest is otherwise, or the
    rename failed (the caller looks again itself, and says why)."""
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        if expected is not None:
            return None
    except OSError:
        return None
    else:
        if expected is None or [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns] != list(
            expected
        ):
            return None
    try:
        os.replace(tmp, dest)
    except OSError:
        return None
    st = os.stat(dest)
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns), st.st_mode


def _do(op: list[Any], data: memoryview | bytes) -> Any:
    """One operation of a batch (data: the bytes a write writes): a write's answer is None
    or [errno, strerror]; a move's, the stat key and mode it left, or None."""
    if op[0] == "w":
        _, tmp, mode, mtime_ns, _ = op
        try:
            write_whole(tmp, data, mode, mtime_ns)
            return None
        except (OSError, ValueError) as exc:
            return [getattr(exc, "errno", 0) or 0, getattr(exc, "strerror", None) or str(exc)]
    _, tmp, dest, expected = op
    try:
        placed = move_if_unchanged(tmp, dest, None if expected is None else tuple(expected))
    except (OSError, ValueError):
        placed = None  # moved, but not there any more: the caller finds out
    return None if placed is None else [*placed[0], placed[1]]


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker: for each batch (its operations and their bytes), one answer per
    operation (a write: None or [errno, strerror]; a move: the stat key and mode, or None),
    until its input closes."""
    try:
        while True:
            ops = json.loads(worker_process.read_frame(requests))
            data = memoryview(worker_process.read_frame(requests))
            out, at = [], 0
            for op in ops:
                length = op[4] if op[0] == "w" else 0
                out.append(_do(op, data[at : at + length]))
                at += length
            worker_process.write_frame(answers, json.dumps(out).encode())
            answers.flush()
    except EOFError:
        return  # the caller is done


def _answers(frames: list[bytes], count: int) -> list[Any]:
    answers = json.loads(frames[0])
    if not isinstance(answers, list) or len(answers) != count:
        raise ValueError("the write worker answered another batch")
    return answers


class _Batch:
    """Operations for one worker, with the bytes of the files they write (kept until they
    are answered: a worker that stops has its batch done here)."""

    def __init__(self) -> None:
        self.ops: list[list[Any]] = []
        self.data: list[bytes] = []
        self.size = 0
        self.answer: Future[list[Any]] | None = None


class FileWriters:
    """A few write workers; each folder's files go to one of them. Files are handed over
    from any thread (a pull reads several packs at once). Only the batches not answered
    yet are held: a worker's pipe holds a few, and the caller waits when it is full."""

    command = worker_process.module_command("claude_sync.write_worker")

    def __init__(self, count: int = WRITE_WORKERS) -> None:
        self._workers = worker_process.start_workers(
            self.command, "write worker", count, _answers, input_pipe=PIPE_BYTES
        )
        self._batches = [_Batch() for _ in self._workers]
        self._sent: list[tuple[int, _Batch]] = []
        self._failed: OSError | None = None
        #: one caller at a time: a batch's operations and bytes must stay in step
        self._lock = threading.Lock()
        self._placed: dict[str, Placed] = {}

    def _of(self, path: str) -> int:
        return hash(os.path.dirname(path)) % len(self._workers)

    def write(self, tmp: str, data: bytes, mode: int, mtime_ns: int) -> None:
        """Have tmp written whole (see write_whole); done by the next call to written()."""
        k = self._of(tmp)
        with self._lock:
            batch = self._batches[k]
            batch.ops.append(["w", tmp, mode, mtime_ns, len(data)])
            batch.data.append(data)
            batch.size += len(data)
            if len(batch.ops) >= BATCH_FILES or batch.size >= BATCH_BYTES:
                self._send(k)

    def written(self) -> None:
        """Wait for every write asked for; the first that failed raises its OSError."""
        with self._lock:
            self._finish()
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed

    def send_moves(
        self, moves: Iterable[tuple[str, str, tuple[int, int, int, int] | None]]
    ) -> None:
        """Have each (tmp, dest, expected) moved as move_if_unchanged does; what they became
        comes from the next call to moved(), meanwhile the caller is free."""
        with self._lock:
            for tmp, dest, expected in moves:
                k = self._of(dest)
                self._batches[k].ops.append(["m", tmp, dest, expected])
                if len(self._batches[k].ops) >= BATCH_FILES:
                    self._send(k)
            self._send_all()

    def moved(self) -> dict[str, Placed]:
        """Wait for the moves sent; what each file moved became, by dest (those not moved
        are not in it)."""
        with self._lock:
            self._finish()
        placed, self._placed = self._placed, {}
        return placed

    def _send_all(self) -> None:
        for k in range(len(self._workers)):
            self._send(k)

    def _finish(self) -> None:
        self._send_all()
        while self._sent:
            self._take(*self._sent.pop())

    def _send(self, k: int) -> None:
        batch = self._batches[k]
        if not batch.ops:
            return
        self._batches[k] = _Batch()
        if sum(1 for j, _ in self._sent if j == k) < AHEAD:
            request = [json.dumps(batch.ops).encode(), b"".join(batch.data)]
            with contextlib.suppress(OSError):  # stopped: done here (see _take)
                batch.answer = self._workers[k].send(request, len(batch.ops))
        # else: done here, rather than wait for the worker
        self._sent.append((k, batch))
        answered = [(k, b) for k, b in self._sent if b.answer is None or b.answer.done()]
        if answered:
            self._sent = [
                (k, b) for k, b in self._sent if not (b.answer is None or b.answer.done())
            ]
            for k, b in answered:
                self._take(k, b)

    def _take(self, k: int, batch: _Batch) -> None:
        """A batch's answers, the worker's or, when it stopped or hung, the batch done here
        (a write from the start again)."""
        answers = None
        if batch.answer is not None:
            try:
                answers = self._workers[k].result(batch.answer, WRITE_WAIT)
            except OSError:
                # Gone before the batch is done here: nothing it was writing lands after.
                self._workers[k].stopped(WRITE_WAIT)
        if answers is None:
            # A move the worker made before it stopped is not claimed: what is at dest
            # now is not known to be what it moved, so the caller looks at it itself
            # (and leaves it, saying so: the next sync finds it equal and adopts it).
            data = iter(batch.data)
            answers = [_do(op, next(data) if op[0] == "w" else b"") for op in batch.ops]
        for op, answer in zip(batch.ops, answers, strict=True):
            if op[0] == "w":
                if answer is not None and self._failed is None:
                    self._failed = OSError(int(answer[0]), str(answer[1]), op[1])
            elif answer is not None:
                key = (int(answer[0]), int(answer[1]), int(answer[2]), int(answer[3]))
                self._placed[op[2]] = (key, int(answer[4]))

    def stop(self) -> None:
        """Stop every worker now, and wait until they are gone: whatever they were doing is
        left as it was (the caller cleans up)."""
        for worker in self._workers:
            worker.stop()
        self.close()

    def close(self) -> None:
        for worker in self._workers:
            worker.close()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
