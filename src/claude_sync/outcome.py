"""What one push, pull or sync did, path by path, and what the engine tells the user as it
works: the engine fills them in, the CLI shows them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from claude_sync.planner import Conflict


@dataclass
class Result:
    """What one push, pull or sync did (or, in a dry run, would do), path by path: what the
    CLI prints and `--json` emits."""

    #: every path the push changed remotely; removed: those of them it deleted there
    pushed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    #: changed on both sides and merged automatically (a dry run: would be)
    merged: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: paths left as they were this time (unreadable, changed meanwhile, not writable)
    skipped: list[str] = field(default_factory=list)
    #: paths not written because their data in the repository is damaged or missing
    unavailable: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    downloaded_bytes: int = 0
    snapshot: int | None = None

    def merge(self, other: Result) -> None:
        """Fold a later operation's result into this one (a sync's pull, then push)."""
        self.pushed += other.pushed
        self.removed += other.removed
        self.pulled += other.pulled
        self.deleted += other.deleted
        self.merged += other.merged
        self.conflicts = other.conflicts  # the later operation saw the newer state
        # A sync scans more than once: each problem is still worth one line.
        self.warnings += [w for w in other.warnings if w not in self.warnings]
        self.skipped = sorted(set(self.skipped) | set(other.skipped))
        self.unavailable = sorted(set(self.unavailable) | set(other.unavailable))
        self.uploaded_bytes += other.uploaded_bytes
        self.downloaded_bytes += other.downloaded_bytes
        self.snapshot = other.snapshot if other.snapshot is not None else self.snapshot

    def to_json(self) -> dict[str, Any]:
        """The `--json` form: lists sorted, keys as documented in docs/CLI.md."""
        return {
            "pushed": sorted(self.pushed),
            "removed": sorted(self.removed),
            "pulled": sorted(self.pulled),
            "deleted": sorted(self.deleted),
            "merged": sorted(self.merged),
            "conflicts": sorted(c.path for c in self.conflicts),
            "conflict_details": [c.to_json() for c in self.conflicts],
            "warnings": self.warnings,
            "skipped": sorted(self.skipped),
            "unavailable": sorted(self.unavailable),
            "uploaded_bytes": self.uploaded_bytes,
            "downloaded_bytes": self.downloaded_bytes,
            "snapshot": self.snapshot,
        }


class Status(NamedTuple):
    """What `status` reports: what pull and push would do, the head's number (None: an
    empty repository), and how many sessions are only in the repository."""

    result: Result
    head: int | None
    remote_only: int


class Reporter:
    """What the engine tells the user as it works; the CLI decides how it looks."""

    def resolve(
        self, conflict: Conflict, local: bytes, remote: bytes, base: bytes | None
    ) -> str | bytes | None:
        """Settle one conflict interactively: "local", "remote", "both", the merged bytes,
        or None to leave it unresolved (the default: nobody to ask)."""
        return None

    def trust(self, changes: dict[str, dict[str, tuple[Any, Any]]], device: str, seq: int) -> bool:
        """Whether to apply changes to what runs code (path -> part -> here, incoming) that
        snapshot seq brings; by default (nobody to ask) they wait for `resolve`."""
        return False

    def action(self, verb: str, path: str) -> None:
        """One planned or applied action on one path."""

    def progress(self, description: str, total: int) -> Callable[[int], None]:
        """Start a progress display of total units; the returned function advances it."""
        return lambda advance: None
