"""The sessions of the repository as this machine sees them: those a plain pull leaves
there (counted by `status`), and a project directory's sessions here and there (`where`)."""

from __future__ import annotations

import os
from collections.abc import Container, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from claude_sync import resources
from claude_sync.clean_tree import TreeWalk
from claude_sync.pathmap import BESIDE_HOME, CUT_BEFORE, TOO_LONG, claude_folder
from claude_sync.repository import SnapshotRoot
from claude_sync.resources import Selection

if TYPE_CHECKING:
    from claude_sync.engine import Engine

#: in the state: how many sessions a clean status found only in the repository, and for
#: which head and walk
REMOTE_ONLY = "remote_only"


def is_here(transcript: Path) -> bool:
    """Whether a session's transcript is on this disk. One in a folder that cannot be read
    (left another user's by a `sudo claude`) counts as here: no pull can bring it there,
    and the scan already says so."""
    try:
        return transcript.is_file()
    except OSError:
        return True


class ProjectSessions(NamedTuple):
    """A project directory as `where` sees it."""

    folder: str  # Claude Code's folder name for it under projects/ here
    logical: str  # that folder's logical name
    local: list[str]  # session ids found here
    remote: list[str]  # session ids in the remote head
    older: list[str]  # of those, the ones a pull leaves there (updated before the window)


class RemoteSessions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def where(self, directory: Path) -> ProjectSessions:
        """For a project directory: Claude Code's folder here, its logical name, and the
        sessions (ids) found there locally and those a pull places there (a session moved
        here or away by `resume --cwd` counts where it is placed)."""
        engine = self.engine
        folder = claude_folder(os.path.realpath(directory))
        logical = engine.mapper.folder_to_logical(folder)
        prefix = f"projects/{folder}/"

        def sessions(paths: Iterable[str]) -> list[str]:
            names = (p[len(prefix) :] for p in paths if p.startswith(prefix))
            return sorted(
                n[: -len(".jsonl")] for n in names if "/" not in n and n.endswith(".jsonl")
            )

        local_dir = engine.root / "projects" / folder
        here = (
            [f"{prefix}{p.name}" for p in local_dir.glob("*.jsonl")] if local_dir.is_dir() else []
        )
        head = engine.head()
        files = head.files if head else {}
        to_local = engine.mapper.to_local
        placed = {local: e for p, e in files.items() if (local := to_local(p)).startswith(prefix)}
        old = (p for p, e in placed.items() if engine.sessions.is_old(e))
        return ProjectSessions(folder, logical, sessions(here), sessions(placed), sessions(old))

    def count_in_step(self, sel: Selection, root: SnapshotRoot, walked: TreeWalk) -> int:
        """count for a walk that found the tree clean, kept for that head and walk: mapping
        the paths of tens of thousands of files cost a status ~30 ms every time. Only while
        the walk saw every transcript here: not when sessions are not synced, or a folder
        of them was not looked into (a link not followed)."""
        state = self.engine.state
        key = f"{root.id} {walked.digest}"
        if resources.TYPES_BY_NAME["sessions"] not in sel.types or any(
            s.folder and f"{s.local_path}/".startswith("projects/") for s in walked.skipped
        ):
            key = ""
        kept, _, count = (state.get_meta(REMOTE_ONLY) or "").rpartition(" ")
        if key and kept == key:
            return int(count)
        # Only main transcripts are counted, all at this depth: not a sub-agent's file of
        # each session mapped for nothing.
        to_logical = self.engine.mapper.to_logical
        here = {to_logical(p) for f in walked.found if (p := f.local_path).count("/") == 2}
        found = self.count(root, here, set())
        state.set_meta(REMOTE_ONLY, f"{key} {found}" if key else None)
        return found

    def count(self, root: SnapshotRoot | None, here: Container[str], arriving: set[str]) -> int:
        """Sessions a plain pull leaves in the repository that `pull --all` would bring:
        their transcript is not here (here: the logical paths a scan saw, else the disk
        says), nor among the paths the next pull brings, nor an old copy of a project
        that is here under a label now (see PathMapper.unmapped_label)."""
        engine = self.engine
        return sum(
            1
            for path in self._transcripts(root)
            if path not in here
            and path not in arriving
            and engine.mapper.unmapped_label(path) not in ("~", TOO_LONG, BESIDE_HOME, CUT_BEFORE)
            and not is_here(engine.local_path(path))
        )

    def _transcripts(self, root: SnapshotRoot | None) -> list[str]:
        """The main transcripts of the head, recorded in the state by its id: counting the
        sessions only in the repository must not decode a file list of tens of thousands of
        entries at every `status`."""
        if root is None:
            return []
        engine = self.engine
        paths = engine.state.snapshot_transcripts(root.id)
        if paths is None:
            with engine.state.transaction():
                head = engine.remote_head
                paths = head.record_transcripts(head.snapshot_of(root))
        return paths
