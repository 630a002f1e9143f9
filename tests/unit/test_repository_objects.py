"""Looking objects up in the store: a push checks every pack it leans on before its snapshot
is written, one request each, several at once."""

from __future__ import annotations

import hashlib

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
