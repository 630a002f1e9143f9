"""Looking objects up in the store: a push checks every pack it leans on before its snapshot
is written, one request each, several at once."""

from __future__ import annotations

import hashlib
import time

import pytest
from memory_store import MemoryStore

from claude_sync.repository import Repository


def pack(n: int) -> str:
    digest = hashlib.sha256(str(n).encode()).hexdigest()
    return f"data/{digest[:2]}/{digest}"


def test_missing_objects_are_exactly_those_the_store_lacks() -> None:
    store = MemoryStore()
    repo = Repository.create(store, None)
    repo.transfers = 4
    held = [pack(n) for n in range(12)]
    for name in held:
        store.put_if_absent(name, b"x")
    lacking = {pack(n) for n in range(100, 109)}
    assert repo.parallel > 1  # looked up several at a time
    assert repo.missing_objects(held[:7] + sorted(lacking)) == lacking
    assert repo.missing_objects([]) == set()


def test_objects_not_started_when_one_failed_are_not_started() -> None:
    """A pack that fails stops the reading: the items still waiting are dropped (the
    executor's map cancels them), not read one after the other before the error is told:
    an open worker or a thread that fails must not leave the rest of a pull of 10 GiB to
    go on."""
    repo = Repository.create(MemoryStore(), None)
    repo.transfers = 2
    started: list[int] = []

    def fails_first(n: int) -> int:
        started.append(n)
        if n == 0:
            raise RuntimeError("the first one failed")
        time.sleep(0.01)
        return n

    with pytest.raises(RuntimeError):
        repo._each(fails_first, list(range(200)))
    assert len(started) < 20
