"""Small files read, hashed, summarized, compressed and sealed in worker processes, for a push
that reads thousands of them (a first push).

Reading a small file is mostly the interpreter's work, under its lock: with the scan's own
thread doing it, a first push of 50,000 small files kept one core busy and the other idle
while the scan also walked, planned and wrote the state (~100 µs a file). Each worker is a
plain child process, started with only what an interpreter needs in its environment, that
answers a batch of files at a time over its pipes: what each file's stat was once read, its
content hash, its chunks, its summary, and each chunk sealed as a push stores it. The caller
keeps deciding everything else: it compares the stat with the walk's (a file that changed is
read again on the caller's thread), and only chunks the repository lacks go into packs.

The repository's keys reach a worker on its standard input, never through its environment or
arguments; it holds them in memory as the caller does, and exits when its input closes.

Its frames (worker_process): JSON, or sealed blobs back to back.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

from claude_sync import identity, portable, worker_process

#: how long a batch may take before its worker is taken for hung and killed (the caller
#: then reads the files itself: a push run by a hook must not wait on it for ever)
READ_WAIT = 30.0
#: how much of a worker's answers its pipe holds (Linux: worker_process.widen_pipe)
ANSWERS_PIPE = 1 << 20


def read_whole(path: str | Path, size: int, block: int) -> tuple[bytes, os.stat_result]:
    """A small file's bytes, and its stat once they were read (of the file read, even if
    its name now leads to another: what was read is then consistent, and the next scan
    sees the new one). A bare descriptor: a file object costs more syscalls than reading
    a small file, and a first scan can meet tens of thousands. block: the least to ask for
    after the first read, when it grew since its stat."""
    fd = os.open(path, os.O_RDONLY | portable.O_BINARY | portable.O_CLOEXEC)
    try:
        parts = []
        got = 0
        want = size + 1  # end of file seen in one read; more if it grew since its stat
        while chunk := os.read(fd, want):
            parts.append(chunk)
            got += len(chunk)
            if got >= size and len(chunk) < want:
                break  # a local file reads short only at its end: no read just to see it
            want = max(want, block)
        return b"".join(parts), os.fstat(fd)
    finally:
        os.close(fd)


class FileToRead(NamedTuple):
    """What a worker needs to read one file as the scan would."""

    abspath: str
    #: its logical path (whether it is a transcript, JSON, a main transcript to summarize)
    path: str
    size: int
    #: where its last summary can resume (SummaryMark.to_json), if summarized
    mark: str | None
    summarize: bool
    #: its identity when last read: kept if it is still its content (identity.py)
    before: str | None = None


class WorkerRead(NamedTuple):
    """One file as a worker read it: the error, or its content's description."""

    #: (errno, strerror) when it could not be read
    error: tuple[int, str] | None
    #: size, mtime_ns, ino, ctime_ns once read
    stat: tuple[int, int, int, int]
    sha256: str
    chunks: tuple[tuple[str, int, int], ...]
    #: each chunk as a pack stores it, in order (empty for an error)
    sealed: list[bytes]
    #: SessionSummary.to_json and SummaryMark.to_json, or None
    summary: dict[str, Any] | None
    mark: str | None
    #: False for a `.json` file that does not parse (caught mid-write)
    parses: bool


class ReadWorkers:
    """A few worker processes. Callers on several threads hand each worker batches one
    after the other, so that it always has the next one waiting; a thread per worker
    collects its answers, in order."""

    command = worker_process.module_command("claude_sync.read_worker")

    def __init__(self, setup: dict[str, Any], count: int) -> None:
        """setup: the keys, chunker and device the workers read with (see serve)."""
        self.count = count
        self._workers: list[worker_process.Worker[list[WorkerRead]]] = []
        self._turn = itertools.count()
        try:
            for _ in range(count):
                self._workers.append(
                    worker_process.Worker(
                        self.command, "read worker", 2, _answers, json.dumps(setup).encode()
                    )
                )
                # Answers wait in the pipe while the collector, a thread of the push, waits
                # for the interpreter: the worker goes on reading (a first push of 50,000
                # small files: 6.2 s -> 6.0 s here).
                answers = self._workers[-1].proc.stdout
                assert answers is not None
                worker_process.widen_pipe(answers, ANSWERS_PIPE)
        except (OSError, ValueError):
            self.close()
            raise

    def read(self, files: Sequence[FileToRead]) -> list[WorkerRead]:
        """The files, read by the next worker; OSError when it failed or hung (it is then
        stopped, and the caller reads them itself)."""
        worker = self._workers[next(self._turn) % len(self._workers)]
        return worker.ask([json.dumps([list(f) for f in files]).encode()], len(files), READ_WAIT)

    def stop(self) -> None:
        """Kill every worker (the push stops): what waits on them fails at once."""
        for worker in self._workers:
            worker.stop()

    def close(self) -> None:
        for worker in self._workers:
            worker.close()


def _answers(frames: list[bytes], count: int) -> list[WorkerRead]:
    """A batch's answers from its header and sealed blobs; ValueError when they do not fit."""
    header, sealed = json.loads(frames[0]), memoryview(frames[1])
    if not isinstance(header, list) or len(header) != count:
        raise ValueError("the read worker answered another batch")
    reads, at = [], 0
    for error, stat, sha, chunks, lengths, summary, mark, parses in header:
        blobs = []
        for length in lengths:
            blobs.append(bytes(sealed[at : at + length]))
            at += length
        reads.append(
            WorkerRead(
                None if error is None else (int(error[0]), str(error[1])),
                (int(stat[0]), int(stat[1]), int(stat[2]), int(stat[3])),
                str(sha),
                tuple((str(b), int(o), int(n)) for b, o, n in chunks),
                blobs,
                summary,
                mark,
                bool(parses),
            )
        )
    if at != len(sealed):
        raise ValueError("the read worker's sealed blobs do not add up")
    return reads


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker: a setup frame, then one answer (a header and the sealed blobs) per batch,
    until its input closes."""
    try:
        reader = _Reader(json.loads(worker_process.read_frame(requests)))
        while True:
            header, sealed = [], []
            files = [
                FileToRead(*request) for request in json.loads(worker_process.read_frame(requests))
            ]
            portable.prefetch((f.abspath, f.size) for f in files)
            for f in files:
                answer, blobs = reader.read(f)
                header.append(answer)
                sealed += blobs
            worker_process.write_frame(answers, json.dumps(header).encode())
            worker_process.write_frame(answers, b"".join(sealed))
            answers.flush()
    except EOFError:
        return  # the caller is done


class _Reader:
    """A worker's reading of one file, as FileReader.read and read_checked do it."""

    def __init__(self, setup: dict[str, Any]) -> None:
        # Imported here, as the worker starts: the module is imported by every push too.
        # (Not in read: looked up again for each of thousands of files, ~4 µs each.)
        from claude_sync import compression
        from claude_sync.chunking import Chunker, ChunkerParams
        from claude_sync.crypto import KeyRing
        from claude_sync.merge import is_transcript, split_unfinished
        from claude_sync.repository.packs import blob_aad
        from claude_sync.session_policy import SessionPolicy
        from claude_sync.session_summary import SummaryMark

        self.keys = KeyRing.from_handover(setup["keys"])
        self.chunker = Chunker(ChunkerParams(**setup["chunker"]))
        self.device = str(setup["device"])
        self.block = int(setup["block"])
        self._pack, self._aad = compression.pack, blob_aad
        self._is_transcript, self._split_unfinished = is_transcript, split_unfinished
        self._summary, self._mark = SessionPolicy.summary, SummaryMark.from_json

    def read(self, f: FileToRead) -> tuple[list[Any], list[bytes]]:
        """The file's answer (see ReadWorkers.read) and its chunks, sealed."""
        try:
            data, after = read_whole(f.abspath, f.size, self.block)
        except OSError as exc:
            error = [exc.errno or 0, exc.strerror or str(exc)]
            return [error, [0, 0, 0, 0], "", [], [], None, None, False], []
        if self._is_transcript(f.path):
            data = self._split_unfinished(data)[0]
        sealed: list[bytes] = []
        seal, pack, aad = self.keys.seal, self._pack, self._aad

        def keep(blob_id: str, piece: memoryview) -> None:
            sealed.append(seal(aad(blob_id), pack(piece, padded=True)))

        sha, chunks = self.chunker.digest_bytes(
            data, self.keys.blob_id, keep, file_hash=self.keys.file_hash
        )
        if (
            f.before
            and identity.kind_of(f.before) != identity.kind_of(sha)
            and identity.of(self.keys.file_hash, data, f.before) == f.before
        ):
            sha = f.before  # read again unchanged: it keeps the id it had (identity.py)
        summary = mark = None
        if f.summarize:
            last = self._mark(f.mark) if f.mark else None
            made, next_mark = self._summary(f.path, f.abspath, chunks, self.device, last, data)
            summary = None if made is None else made.to_json()
            mark = None if next_mark is None else next_mark.to_json()
        parses = True
        if f.path.endswith(".json"):
            try:
                json.loads(data)
            except ValueError:
                parses = False
        stat = [after.st_size, after.st_mtime_ns, after.st_ino, after.st_ctime_ns]
        lengths = [len(blob) for blob in sealed]
        return [None, stat, sha, chunks, lengths, summary, mark, parses], sealed


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
