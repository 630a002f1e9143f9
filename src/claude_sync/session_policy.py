"""How this machine treats conversations on pull: which ones it fetches (lazy pull) and what
modification time it gives them (so Claude Code's own clean-up does not delete them).

Claude Code deletes, at start-up, transcripts whose mtime is older than `cleanupPeriodDays`
(settings.json, default 30). A pull that kept a transcript's original, old mtime handed it to
that clean-up; and a new machine that fetched years of sessions downloaded what Claude Code
would throw away anyway. So by default a pull fetches only sessions updated within this
machine's clean-up period, and gives a fetched file older than it the pull's time as mtime
(the transcript's records and the catalog keep the true times).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from claude_sync.config import parse_duration
from claude_sync.errors import ConfigError
from claude_sync.repository import FileEntry
from claude_sync.session_summary import SessionSummary, SummaryMark, summarize_from

if TYPE_CHECKING:
    from claude_sync.planner import LocalFile, Plan

DEFAULT_CLEANUP_DAYS = 30
DAY = 86400.0
ALL = "all"


def session_of(path: str) -> tuple[str, str] | None:
    """(project folder, session id) of a logical path that belongs to one conversation: its
    transcript `projects/P/ID.jsonl`, or anything under `projects/P/ID/` (sub-agents, tool
    results); None for anything else (project memory, other types)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "projects":
        return None
    if len(parts) == 3:
        name = parts[2]
        return (parts[1], name[: -len(".jsonl")]) if name.endswith(".jsonl") else None
    return None if parts[2] == "memory" else (parts[1], parts[2])


def transcript_path(project: str, session: str) -> str:
    """The logical path of a session's transcript in a project folder."""
    return f"projects/{project}/{session}.jsonl"


def is_main_transcript(path: str) -> bool:
    """Whether path is a session's main transcript (not a sub-agent's or a result file)."""
    return path.count("/") == 2 and session_of(path) is not None


def updated(entry: FileEntry) -> float:
    """When a transcript last changed: its last record's time, else the file's mtime."""
    if entry.session is not None and entry.session.last is not None:
        return entry.session.last
    return entry.mtime_ns / 1e9


def cleanup_days(claude_dir: Path) -> float:
    """Claude Code's `cleanupPeriodDays` on this machine (settings.json), else its default."""
    try:
        return cleanup_days_in((claude_dir / "settings.json").read_bytes())
    except OSError:
        return DEFAULT_CLEANUP_DAYS


def cleanup_days_in(settings: bytes) -> float:
    """The `cleanupPeriodDays` a settings.json with these bytes gives, else the default."""
    try:
        value = json.loads(settings).get("cleanupPeriodDays")
    except (ValueError, AttributeError):
        return DEFAULT_CLEANUP_DAYS
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_CLEANUP_DAYS


def parse_window(text: str) -> float | None:
    """`all` (None) or a duration such as `90d`; refuses anything else."""
    if text.strip().lower() == ALL:
        return None
    seconds = parse_duration(text.strip())
    if seconds is None or seconds <= 0:
        raise ConfigError(f"sessions.window is `all` or a duration such as 90d, not {text!r}")
    return seconds


@dataclass
class SessionPolicy:
    """Which sessions a pull fetches (the window) and the mtimes it gives them, so Claude
    Code's own clean-up does not delete what just arrived."""

    #: fetch sessions updated this many seconds ago or later; None: all of them
    window: float | None = None
    #: Claude Code's clean-up period here, in seconds; None: keep stored mtimes
    cleanup: float | None = None
    now: float = field(default_factory=time.time)

    @classmethod
    def for_machine(cls, window: str | None, claude_dir: Path) -> SessionPolicy:
        """The policy of this machine: its `session-window` setting, else Claude Code's
        clean-up period."""
        cleanup = cleanup_days(claude_dir) * DAY
        return cls(cleanup if window is None else parse_window(window), cleanup)

    def key(self) -> str:
        """What a finished pull fetched, for the state database."""
        return ALL if self.window is None else str(int(self.window))

    def covered_by(self, key: str | None) -> bool:
        """Whether a pull that used `key` fetched all this policy would (no key: an older
        claude-sync, which fetched everything)."""
        if key is None or key == ALL:
            return True
        return self.window is not None and self.window <= float(key)

    def is_old(self, entry: FileEntry) -> bool:
        """Whether a transcript was last updated before the window (left in the repository)."""
        return self.window is not None and updated(entry) < self.now - self.window

    def defer(self, plan: Plan, local: dict[str, LocalFile]) -> None:
        """Leave in the repository the files of sessions not here and last updated before
        the window: they are listed by `sessions` and arrive with `resume` or `pull --all`."""
        if self.window is None or plan.head is None:
            return
        files = plan.head.files
        for path in list(plan.write):
            key = session_of(path)
            if key is None or path in local:
                continue
            transcript = files.get(transcript_path(*key))
            if transcript is not None and self.is_old(transcript):
                del plan.write[path]

    def mtime_ns(self, path: str, stored_ns: int) -> int:
        """The mtime to give a pulled file: a session file older than the clean-up period
        gets the pull's time, so Claude Code does not delete it at its next start."""
        if self.cleanup is None or session_of(path) is None:
            return stored_ns
        if stored_ns < (self.now - self.cleanup) * 1e9:
            return int(self.now * 1e9)
        return stored_ns

    def with_summary(
        self,
        path: str,
        abspath: str,
        entry: FileEntry,
        device: str,
        known: SessionSummary | None = None,
    ) -> FileEntry:
        """A transcript's entry with its summary: known (read by the scan), or read now from
        the bytes the entry describes."""
        summary = known or self.summary(path, abspath, entry.located_chunks(), device)[0]
        if summary is None:
            return entry
        return entry.with_session(summary)

    @staticmethod
    def summary(
        path: str,
        abspath: str,
        chunks: Sequence[tuple[str, int, int]],
        device: str,
        mark: SummaryMark | None = None,
        data: bytes | None = None,
    ) -> tuple[SessionSummary | None, SummaryMark | None]:
        """A main transcript's summary, from the bytes its chunks cover (a file that grew
        since the scan is read only as far as the scan saw it), and the mark the next push
        can resume from. mark: the one the last push left: when the file still begins with
        the bytes it covers, only what follows is read (a transcript grows by appends, and
        can be gigabytes). data: those bytes, when the scan has them in memory (a small
        file: opening it again costs more than summarizing it). (None, None) for any other
        file, or when it cannot be read."""
        if not is_main_transcript(path):
            return None, None
        size = sum(length for _, _, length in chunks)
        resume = None if mark is None else mark.resume_point(chunks)
        # A checkpoint where the last chunk starts; none in a one-chunk file (it would be
        # at its start).
        last_start = chunks[-1][1] if chunks else 0
        try:
            with open(abspath, "rb") if data is None else io.BytesIO(data) as fh:
                summary, checkpoint = summarize_from(fh, size, device, resume, last_start or None)
        except OSError:
            return None, None
        return summary, SummaryMark.taken(chunks, checkpoint)
