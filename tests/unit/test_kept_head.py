"""The head's root kept between looks (claude_sync.kept_head): when it stands in for reading
the root again, and when it does not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from memory_store import MemoryStore, TaggedMemoryStore

from claude_sync import kept_head
from claude_sync.errors import BackendError
from claude_sync.kept_head import KeptHead
from claude_sync.model import Snapshot
from claude_sync.repository import Repository
from claude_sync.state import State


def written(repo: Repository, seq: int) -> Snapshot:
    snapshot = Snapshot(seq, seq - 1 or None, "desk", time.time(), {})
    assert repo.write_snapshot(snapshot)
    return snapshot


def test_the_kept_root_stands_in_only_for_the_same_object_and_epochs() -> None:
    store = TaggedMemoryStore()
    repo = Repository.create(store, None)
    first = written(repo, 1)
    tag = repo.content_tag(first.sealed)
    assert tag is not None
    kept = KeptHead(1, tag, first.sealed)
    glance = repo.glance(1)
    assert glance == ((1, tag), True)
    root = kept_head.still_head(repo, kept, (1, first.id), glance)
    assert root is not None and (root.seq, root.id, root.device) == (1, first.id, "desk")

    assert kept_head.still_head(repo, kept, (1, "another id"), glance) is None
    assert kept_head.still_head(repo, kept, (1, first.id), ((1, "other"), True)) is None
    assert kept_head.still_head(repo, kept, (1, first.id), ((1, tag), False)) is None
    assert kept_head.still_head(repo, kept, (2, first.id), glance) is None
    damaged = KeptHead(1, tag, first.sealed[:-1] + bytes([first.sealed[-1] ^ 1]))
    assert kept_head.still_head(repo, damaged, (1, first.id), glance) is None

    second = written(repo, 2)
    assert repo.glance(1) == ((2, repo.content_tag(second.sealed)), True)


def test_a_listing_that_fails_in_a_glance_fails_it() -> None:
    """The epochs are listed in a thread of their own: its error is the caller's."""

    class Failing(TaggedMemoryStore):
        def _list(self, prefix: str, start_after: str) -> list[str]:
            if prefix.startswith("epochs/"):
                raise BackendError("cannot list: the network is down")
            return super()._list(prefix, start_after)

    repo = Repository.create(Failing(), None)
    written(repo, 1)
    with pytest.raises(BackendError, match="network is down"):
        repo.glance(1)


def test_a_store_without_tags_gives_no_glance() -> None:
    repo = Repository.create(MemoryStore(), None)
    written(repo, 1)
    assert repo.glance(1) is None


def test_a_kept_head_is_saved_and_a_damaged_one_ignored(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    head = KeptHead(3, '"tag"', b"\x00sealed\xff")
    kept_head.save(state, head)
    assert kept_head.load(state) == head
    for junk in ("not json", '{"seq": 3}', '{"seq": "x", "tag": "t", "sealed": ""}', "[]"):
        state.set_meta(kept_head.KEPT_HEAD, junk)
        assert kept_head.load(state) is None
    state.close()
