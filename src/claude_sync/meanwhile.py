"""Work started in the background while the caller makes a request of its own: two requests
at once where neither needs the other's answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def meanwhile(fn: Callable[[], T], at_once: bool = True) -> Callable[[], T]:
    """Start fn now; the function returned waits for it and gives its result, or raises its
    error in the caller. A daemon thread, not a pool: a Ctrl-C in the caller does not wait
    for fn's request (up to its timeouts and retries). at_once: whether the store allows
    requests to overlap (Git's does not); if not, fn runs when its result is asked for."""
    if not at_once:
        return fn
    done: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            done.append((True, fn()))
        except BaseException as exc:  # raised in the caller, by the function returned
            done.append((False, exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()

    def result() -> T:
        worker.join()
        ok, value = done[0]
        if not ok:
            raise value  # type: ignore[misc]
        return value  # type: ignore[return-value]

    return result
