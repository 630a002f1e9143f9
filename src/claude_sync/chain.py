"""Snapshot history as a hash chain: does the head continue what this machine has seen?

Every snapshot root names its parent by sequence number and by identity (the SHA-256 of the
parent's sealed bytes). A storage that drops, withholds or swaps snapshots can make a head
whose chain does not reach the snapshot a machine last saw; the machine then refuses it.
Snapshots deleted by prune are recorded in `forgotten/` objects, so the chain can be
followed across them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from claude_sync.repository import CHAINED_FORMAT, Repository, SnapshotRoot, snapshot_name


@dataclass(frozen=True)
class Link:
    """One snapshot in the hash chain: its number and id, and its parent's (None before
    the chain began, or for the first snapshot)."""

    seq: int
    id: str
    parent: int | None
    parent_id: str | None

    @property
    def unchained(self) -> bool:
        """Written by a claude-sync that did not name parents by id."""
        return self.parent is not None and self.parent_id is None


def _link(root: SnapshotRoot) -> Link:
    return Link(root.seq, root.id, root.parent, root.parent_id)


def ancestry(repo: Repository, head: SnapshotRoot, down_to: int) -> Iterator[Link]:
    """The head, then its ancestors down to sequence number `down_to`, as long as the chain
    can be followed: it ends at the first snapshot, at an unchained one, and at a parent
    neither stored nor recorded as forgotten."""
    stored: dict[int, SnapshotRoot] | None = None
    forgotten: dict[str, tuple[int, int | None, str | None]] | None = None
    link = _link(head)
    while True:
        yield link
        if link.parent is None or link.parent_id is None or link.seq <= down_to:
            return
        if stored is None:
            # Roots are small: fetch all that may be needed at once, not one by one.
            after = snapshot_name(down_to - 1) if down_to > 1 else ""
            stored = repo.load_roots(s for s in repo.snapshot_seqs(after) if s < head.seq)
        root = stored.get(link.parent)
        if root is not None and root.id == link.parent_id:
            link = _link(root)
            continue
        if forgotten is None:
            forgotten = repo.forgotten()
        found = forgotten.get(link.parent_id)
        if found is None or found[0] != link.parent:
            return
        link = Link(found[0], link.parent_id, found[1], found[2])


def descends(repo: Repository, head: SnapshotRoot, seq: int, ident: str) -> bool:
    """Whether snapshot (seq, ident) is the head or one of its ancestors. The usual cases
    (the same head, or one snapshot more) cost no request."""
    for link in ancestry(repo, head, seq):
        if link.seq == seq:
            return link.id == ident
        if link.parent == seq and link.parent_id is not None:
            return link.parent_id == ident
        if link.unchained and link.seq > seq:
            # Older claude-sync wrote this one: only its number can be checked, and it is
            # newer than the one seen. A format 3 repository has no such snapshots.
            return repo.config.version < CHAINED_FORMAT
    return False


def fork_point(repo: Repository, head: SnapshotRoot, known: set[tuple[int, str]]) -> int:
    """The newest snapshot of the head's history that this machine knows (saw or wrote):
    whatever this machine took from snapshots after it is not in the head's history.
    0 when there is none."""
    for link in ancestry(repo, head, 0):
        if (link.seq, link.id) in known:
            return link.seq
    return 0


def breaks(repo: Repository, roots: dict[int, SnapshotRoot]) -> list[str]:
    """Where the stored history is not one chain (for verify)."""
    problems = []
    oldest = min(roots, default=0)
    forgotten: dict[str, tuple[int, int | None, str | None]] | None = None
    for seq, root in sorted(roots.items()):
        if root.parent is None or root.parent_id is None:
            continue
        parent = roots.get(root.parent)
        if parent is not None:
            if parent.id != root.parent_id:
                problems.append(
                    f"snapshot {seq} does not continue snapshot {root.parent} (forked history)"
                )
            continue
        if root.parent < oldest:
            continue  # pruned with everything before it
        if forgotten is None:
            forgotten = repo.forgotten()
        if root.parent_id not in forgotten:
            problems.append(f"snapshot {root.parent}, the parent of snapshot {seq}, is missing")
    return problems
