"""The conflicts a push or pull reports: who made the remote side, and what the state
records of them for `conflicts` and `resolve`."""

from __future__ import annotations

import contextlib
import glob
from typing import TYPE_CHECKING

from claude_sync.errors import CorruptionError, ObjectNotFoundError
from claude_sync.planner import Conflict
from claude_sync.planner import sha as _sha
from claude_sync.repository import Snapshot
from claude_sync.resources import CONFLICT_MARKER

if TYPE_CHECKING:
    from claude_sync.engine import Engine

#: how many snapshots back a conflict's author (and an old version of a file) is looked for
HISTORY_LOOKBACK = 100


class ConflictLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def name_authors(self, conflicts: list[Conflict], head: Snapshot | None) -> None:
        """Each new conflict names the snapshot (device, time) that last changed its path:
        the head's ancestors are followed while they hold the same version. The newest
        snapshot's device may never have touched the file, nor the oldest one a prune kept:
        where the history ends before the change is found, the author is not named."""
        loaded: dict[int, Snapshot | None] = {}

        def load(seq: int) -> Snapshot | None:
            if seq not in loaded:
                try:
                    loaded[seq] = self.engine.repo.load_snapshot(seq)
                except (ObjectNotFoundError, CorruptionError):
                    loaded[seq] = None
            return loaded[seq]

        for c in conflicts:
            if head is None or c.remote_seq != head.seq:
                continue  # one kept from an earlier pull: already named
            author, known = head, False
            for _ in range(HISTORY_LOOKBACK):
                parent = None if author.parent is None else load(author.parent)
                if parent is None or _sha(parent.files.get(c.path)) != c.remote_sha256:
                    known = parent is not None or author.parent is None
                    break
                author = parent
            c.remote_seq = author.seq
            c.remote_device, c.remote_time = (author.device, author.time) if known else ("", 0.0)

    def as_recorded(self, conflicts: list[Conflict]) -> list[Conflict]:
        """The pull's record of a conflict over the same remote version says more (the
        keys that conflict, settings held back, the copy beside): a push reports that."""
        recorded = self.engine.state.conflicts()
        return [
            # (A remote deletion has no hash: compared with a missing record's, it matched.)
            Conflict.from_json(recorded[c.path])
            if c.path in recorded and recorded[c.path].get("remote_sha256") == c.remote_sha256
            else c
            for c in conflicts
        ]

    def record_new(self, conflicts: list[Conflict]) -> None:
        """A push's conflicts that no pull recorded yet, for `conflicts` and `resolve`. Only
        added: a pull, which looks at the remote side too, decides when one is settled."""
        if not conflicts:
            return
        state = self.engine.state
        recorded = state.conflicts()
        new = [c for c in conflicts if c.path not in recorded]
        if new:
            with state.transaction():
                for c in new:
                    state.set_conflict(c.path, c.to_json())

    def remove_copies(self, path: str) -> None:
        """The remote versions a conflict over path left beside it: gone once the user chose a
        side (`resolve --take local|remote`, or a pull or sync with that --strategy)."""
        local = self.engine.local_path(path)
        for copy in local.parent.glob(f"{glob.escape(local.name)}{CONFLICT_MARKER}-*"):
            with contextlib.suppress(OSError):
                copy.unlink()
