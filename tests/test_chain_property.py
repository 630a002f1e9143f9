"""A property of the history chain (claude_sync.chain), on an in-memory store."""

from __future__ import annotations

import hashlib

from hypothesis import given, note, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from claude_sync import chain
from claude_sync.repository import Repository, Snapshot, snapshot_name


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, int, bool, set[int], set[int]]:
    n = draw(st.integers(1, 10))
    seen = draw(st.integers(1, n))
    genuine = draw(st.booleans())
    below_head = st.sets(st.integers(1, n - 1)) if n > 1 else st.just(set())
    recorded = draw(below_head)
    unrecorded = draw(below_head) - recorded
    return n, seen, genuine, recorded, unrecorded


@settings(max_examples=60, deadline=None, print_blob=True)
@given(histories())
def test_a_head_descends_from_exactly_the_snapshots_of_its_chain(history):
    """A snapshot this machine saw that is not in the chain (a dropped branch) is never
    taken for an ancestor; one that is, is found through deletions prune recorded."""
    n, seen, genuine, recorded, unrecorded = history
    repo = Repository.create(MemoryStore(), None)
    parent = None
    for seq in range(1, n + 1):
        snap = Snapshot(
            seq, parent.seq if parent else None, "d", 0.0, parent_id=parent and parent.id
        )
        assert repo.write_snapshot(snap)
        parent = snap
    roots = {seq: repo.load_root(seq) for seq in range(1, n + 1)}
    repo.write_forgotten(roots[s] for s in recorded)
    for s in recorded | unrecorded:
        repo.store.delete(snapshot_name(s))
    ident = roots[seen].id if genuine else hashlib.sha256(b"another branch").hexdigest()
    followable = all(s not in unrecorded for s in range(seen + 1, n))
    note(f"expected {genuine and followable}")
    assert chain.descends(repo, roots[n], seen, ident) == (genuine and followable)
