"""Work started in the background (claude_sync.meanwhile)."""

from __future__ import annotations

import threading

import pytest

from claude_sync.errors import BackendError
from claude_sync.meanwhile import meanwhile


def test_the_result_or_the_error_reaches_the_caller() -> None:
    started = threading.Event()

    def work() -> int:
        started.set()
        return 42

    result = meanwhile(work)
    assert started.wait(5)
    assert result() == 42

    def fail() -> int:
        raise BackendError("cannot list: no answer")

    with pytest.raises(BackendError, match="no answer"):
        meanwhile(fail)()


def test_the_caller_does_not_wait_for_it_to_give_up() -> None:
    """A daemon thread: the caller stops (an error, a Ctrl-C) without waiting for it."""
    release, running = threading.Event(), threading.Event()
    workers: list[threading.Thread] = []

    def wait() -> None:
        workers.append(threading.current_thread())
        running.set()
        release.wait()

    meanwhile(wait)
    assert running.wait(5)
    assert workers[0].daemon and workers[0].is_alive()
    release.set()


def test_where_requests_must_not_overlap_it_runs_when_asked() -> None:
    ran: list[str] = []
    result = meanwhile(lambda: ran.append(threading.current_thread().name) or 7, at_once=False)
    assert ran == []
    assert result() == 7 and ran == [threading.current_thread().name]
