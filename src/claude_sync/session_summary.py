"""A few facts about one conversation, read from its transcript at push time and stored
(encrypted) with the transcript's file entry, so `sessions` can list every conversation the
repository knows without downloading any transcript (docs/FORMAT.md §6, "session").

Transcripts are JSON Lines written by Claude Code; most records have a `timestamp`, `cwd` and
`gitBranch`, but `summary`, `file-history-snapshot` and similar records have no `uuid` and
some no `timestamp`, and the last line may be half-written. Only the records a fact needs are
decoded: the first few (title, cwd, start), the last few (end, branch) and the summaries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from claude_sync.errors import CorruptionError

T = TypeVar("T")
TITLE_MAX = 80
#: records decoded from each end before giving up on a fact
SCAN_LIMIT = 2000
_SUMMARY = re.compile(rb'"type"\s*:\s*"(?:summary|custom-title)"')
# Text Claude Code puts in user records that the user did not type.
_NOT_TYPED = (
    "<command-name>",
    "<command-message>",
    "<command-args>",
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<system-reminder>",
    "<bash-input>",
    "<bash-stdout>",
    "Caveat:",
    "[Request interrupted",
)


@dataclass(frozen=True)
class SessionSummary:
    title: str
    cwd: str
    #: unix seconds of the first and last record that has a time (None: no record has one)
    first: float | None
    last: float | None
    records: int
    branch: str
    #: the machine that pushed this version
    device: str

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: Any, what: str) -> SessionSummary:
        try:
            summary = cls(
                title=str(obj["title"]),
                cwd=str(obj["cwd"]),
                first=None if obj["first"] is None else float(obj["first"]),
                last=None if obj["last"] is None else float(obj["last"]),
                records=int(obj["records"]),
                branch=str(obj["branch"]),
                device=str(obj["device"]),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise CorruptionError(f"{what} has a malformed session summary") from None
        if summary.records < 0 or len(summary.title) > TITLE_MAX:
            raise CorruptionError(f"{what} has an inconsistent session summary")
        return summary


def summarize(data: bytes, device: str) -> SessionSummary:
    """The summary of a transcript's bytes."""
    lines = data.split(b"\n")
    return SessionSummary(
        title=_title(data, lines),
        cwd=_first(_records(lines), lambda r: _text(r.get("cwd"))) or "",
        first=_first(_records(lines), lambda r: _time(r.get("timestamp"))),
        last=_first(_records(reversed(lines)), lambda r: _time(r.get("timestamp"))),
        records=sum(1 for line in lines if line.strip()),
        branch=_first(_records(reversed(lines)), lambda r: _text(r.get("gitBranch"))) or "",
        device=device,
    )


def _records(lines: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Decoded records, at most SCAN_LIMIT; lines that are not JSON objects are skipped."""
    for n, line in enumerate(lines):
        if n >= SCAN_LIMIT:
            return
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


def _first(
    records: Iterator[dict[str, Any]], fact: Callable[[dict[str, Any]], T | None]
) -> T | None:
    for record in records:
        value = fact(record)
        if value:
            return value
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _title(data: bytes, lines: list[bytes]) -> str:
    """The user's own title (`/rename`), else Claude Code's newest summary, else the first
    prompt the user typed in the main conversation."""
    custom = summary = None
    for match in _SUMMARY.finditer(data):
        start = data.rfind(b"\n", 0, match.start()) + 1
        end = data.find(b"\n", match.end())
        try:
            record = json.loads(data[start : end if end >= 0 else len(data)])
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("type") == "custom-title":
            custom = _text(record.get("customTitle")) or custom
        elif record.get("type") == "summary":
            summary = _text(record.get("summary")) or summary
    title = custom or summary or _first(_records(lines), _prompt) or ""
    return one_line(title)


def _prompt(record: dict[str, Any]) -> str | None:
    if record.get("type") != "user" or record.get("isSidechain") or record.get("isMeta"):
        return None
    if record.get("isCompactSummary"):
        return None
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):  # text parts; tool results are not typed by the user
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        content = " ".join(t for t in texts if isinstance(t, str))
    if not isinstance(content, str):
        return None
    text = content.strip()
    if not text or text.startswith(_NOT_TYPED):
        return None
    return text


def one_line(text: str) -> str:
    """Whitespace collapsed, cut to TITLE_MAX characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= TITLE_MAX else flat[: TITLE_MAX - 1] + "…"
