"""The session catalog: every conversation the repository knows, with where it would resume
on this machine, from the summaries stored in the snapshot (no transcript is downloaded,
except to search their content)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from claude_sync.engine import Engine, Result
from claude_sync.pathmap import claude_folder
from claude_sync.remote_sessions import is_here
from claude_sync.repository import FileEntry, Snapshot
from claude_sync.session_policy import is_main_transcript, session_of, updated


@dataclass
class SessionInfo:
    """One session as `sessions` lists it: where it belongs, what it is about, who
    updated it last, and the files that make it up."""

    id: str
    #: the logical project folder (`~-code-app`) and the transcript's logical path
    folder: str
    path: str
    title: str
    device: str
    updated: float
    records: int
    bytes: int
    local: bool
    #: the project's directory where the session was recorded, and here (when it exists)
    cwd: str
    directory: Path | None
    branch: str
    #: logical path -> entry of every file of the session (transcript, sub-agents, results)
    files: dict[str, FileEntry] = field(default_factory=dict, repr=False)

    @property
    def project(self) -> str:
        """The project directory on this machine, else the logical folder name."""
        return str(self.directory) if self.directory is not None else self.folder

    def to_json(self) -> dict[str, Any]:
        """The `sessions --json` form (field names are a contract)."""
        return {
            "id": self.id,
            "project": self.project,
            "title": self.title,
            "device": self.device,
            "updated": iso(self.updated),
            "records": self.records,
            "bytes": self.bytes,
            "local": self.local,
            "cwd": self.cwd,
            "branch": self.branch,
            "folder": self.folder,
        }


def iso(seconds: float) -> str:
    """A moment as ISO 8601 in UTC (`2026-11-30T14:02:09Z`), the `--json` time format."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build(engine: Engine, head: Snapshot | None) -> list[SessionInfo]:
    """Every session of the head, newest first."""
    if head is None:
        return []
    grouped: dict[tuple[str, str], dict[str, FileEntry]] = {}
    for path, entry in head.files.items():
        key = session_of(path)
        if key is not None:
            grouped.setdefault(key, {})[path] = entry
    found = []
    # Thousands of sessions share a few projects: find each project's directory once.
    directories: dict[tuple[str, str], Path | None] = {}
    for (folder, session), files in grouped.items():
        transcript = f"projects/{folder}/{session}.jsonl"
        entry = files.get(transcript)
        if entry is None or not is_main_transcript(transcript):
            continue  # a sub-agent folder whose transcript is not synced
        summary = entry.session
        cwd = summary.cwd if summary else ""
        if (folder, cwd) not in directories:
            directories[folder, cwd] = local_directory(engine, folder, cwd)
        found.append(
            SessionInfo(
                id=session,
                folder=folder,
                path=transcript,
                title=summary.title if summary else "",
                device=summary.device if summary else "",
                updated=updated(entry),
                records=summary.records if summary else 0,
                bytes=sum(e.size for e in files.values()),
                local=is_here(engine.local_path(transcript)),
                cwd=cwd,
                directory=directories[folder, cwd],
                branch=summary.branch if summary else "",
                files=files,
            )
        )
    found.sort(key=lambda s: (-s.updated, s.id))
    return found


def local_directory(engine: Engine, folder: str, cwd: str) -> Path | None:
    """The directory here whose sessions Claude Code keeps in the folder the logical folder
    maps to, when it exists."""
    found = (c for c in _candidates(engine, folder, cwd) if _is_project_dir(engine, c, folder))
    return next((Path(c) for c in found), None)


def expected_directory(engine: Engine, folder: str, cwd: str) -> str:
    """Where the project directory would be here (for a message when it is not): the
    recorded cwd under the directory its folder maps to, else as recorded."""
    return next(_candidates(engine, folder, cwd), folder)


def _candidates(engine: Engine, folder: str, cwd: str) -> Iterator[str]:
    """The directories here that may be the project's, most likely first. The folder name
    is the directory's path encoded character by character, so the part of the recorded cwd
    past the mapped prefix is the same here."""
    for directory, prefix in engine.mapper.places:
        if folder != prefix and not folder.startswith(prefix + "-"):
            continue
        rest = folder[len(prefix) :]
        if len(cwd) < len(rest):
            continue
        yield directory + (cwd[len(cwd) - len(rest) :] if rest else "")
    if cwd:
        yield cwd


def _is_project_dir(engine: Engine, directory: str, logical: str) -> bool:
    """Claude Code run in directory keeps the logical folder's sessions in its folder for
    the real path (one too long here: where `resume` places them)."""
    if not os.path.isdir(directory):
        return False
    real = os.path.realpath(directory)
    local = engine.mapper.folder_to_local(logical)
    return claude_folder(real) == local or (
        local == logical and engine.mapper.directory_to_logical(real) == logical
    )


def belongs_to(info: SessionInfo, directory: Path, engine: Engine) -> bool:
    """Whether `claude --resume` in directory would find the session once it is here (in
    the folder a pull places it in: `resume --cwd` may have moved it)."""
    placed = engine.mapper.to_local(info.path).split("/")[1]
    return placed == claude_folder(os.path.realpath(directory))


def select(
    sessions: list[SessionInfo],
    directory: Path | None = None,
    device: str | None = None,
    grep: str | None = None,
    content: bool = False,
    limit: int | None = None,
    engine: Engine | None = None,
) -> list[SessionInfo]:
    """The sessions matching every filter given, newest first, at most limit."""
    chosen = []
    for info in sessions:
        if limit is not None and len(chosen) >= limit:
            break
        if directory is not None and engine is not None and not belongs_to(info, directory, engine):
            continue
        if device is not None and info.device != device:
            continue
        if grep is not None and not _matches(info, grep, content, engine):
            continue
        chosen.append(info)
    return chosen


def _matches(info: SessionInfo, text: str, content: bool, engine: Engine | None) -> bool:
    needle = text.casefold()
    if needle in info.title.casefold() or info.id.startswith(text):
        return True
    if not content or engine is None:
        return False
    return needle in transcript_bytes(engine, info).decode(errors="replace").casefold()


def transcript_bytes(engine: Engine, info: SessionInfo) -> bytes:
    """The transcript as this machine has it, else as stored (downloaded, verified)."""
    entry = info.files[info.path]
    if info.local:
        try:
            return engine.local_path(info.path).read_bytes()
        except OSError:
            pass
    return engine.downloads.file_bytes(entry, Result())
