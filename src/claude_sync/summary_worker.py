"""Transcript summaries in a worker process, for a push that reads many transcript bytes.

A summary's two regex passes hold the interpreter lock (~1 s per GiB of one core), which the
scan's hashing, chunking and sealing threads need: on the `large` bench set they made a
first push ~30 % slower. The worker is a plain child process that speaks JSON lines (no
pickle), started with only what an interpreter needs in its environment. It reads each
transcript itself, from the page cache, no further than the size the scan synced. Any
failure falls back to the caller's thread: a summary is metadata, never a reason for a push
to fail."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import IO, Any

from claude_sync import worker_process
from claude_sync.errors import CorruptionError
from claude_sync.session_policy import SessionPolicy
from claude_sync.session_summary import SessionSummary, SummaryMark

Summary = tuple[SessionSummary | None, SummaryMark | None]


class SummaryWorker:
    """One worker process, fed SessionPolicy.summary's arguments from any thread."""

    command = worker_process.module_command("claude_sync.summary_worker")

    def __init__(self) -> None:
        self._proc = worker_process.start(self.command)
        self._lock = threading.Lock()
        self._waiting: dict[int, Future[Summary]] = {}
        self._sent = 0
        self._collector = threading.Thread(target=self._collect, daemon=True)
        self._collector.start()

    def submit(
        self,
        path: str,
        abspath: str,
        chunks: Sequence[tuple[str, int, int]],
        device: str,
        mark: SummaryMark | None,
    ) -> Future[Summary]:
        future: Future[Summary] = Future()
        request = {
            "path": path,
            "abspath": abspath,
            "chunks": [list(c) for c in chunks],
            "device": device,
            "mark": None if mark is None else mark.to_json(),
        }
        with self._lock:
            number = request["id"] = self._sent
            self._sent += 1
            self._waiting[number] = future
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write(json.dumps(request).encode() + b"\n")
                self._proc.stdin.flush()
            except (OSError, ValueError) as exc:
                del self._waiting[number]
                future.set_exception(OSError(f"the summary worker stopped ({exc})"))
        return future

    def _collect(self) -> None:
        assert self._proc.stdout is not None
        try:
            for line in self._proc.stdout:
                answer = json.loads(line)
                summary, mark = answer["summary"], answer["mark"]
                result = (
                    None if summary is None else SessionSummary.from_json(summary, "a summary"),
                    None if mark is None else SummaryMark.from_json(mark),
                )
                with self._lock:
                    future = self._waiting.pop(answer["id"])
                future.set_result(result)
        except (OSError, ValueError, KeyError, TypeError, CorruptionError):
            pass  # an answer that makes no sense: the worker is taken for stopped
        finally:
            with self._lock:
                for future in self._waiting.values():
                    future.set_exception(OSError("the summary worker stopped"))
                self._waiting.clear()

    def stop(self) -> None:
        """Kill the worker: every summary still waiting fails, to be made by the caller."""
        with contextlib.suppress(OSError):
            self._proc.kill()

    def close(self) -> None:
        worker_process.finish(self._proc, self._collector)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker: one summary per request line, answered in order."""
    for line in requests:
        request: dict[str, Any] = json.loads(line)
        mark = None if request["mark"] is None else SummaryMark.from_json(request["mark"])
        summary, new_mark = SessionPolicy.summary(
            request["path"],
            request["abspath"],
            [(str(b), int(o), int(n)) for b, o, n in request["chunks"]],
            request["device"],
            mark,
        )
        answer = {
            "id": request["id"],
            "summary": None if summary is None else summary.to_json(),
            "mark": None if new_mark is None else new_mark.to_json(),
        }
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
