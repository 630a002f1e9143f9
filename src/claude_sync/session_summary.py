"""A few facts about one conversation, read from its transcript at push time and stored
(encrypted) with the transcript's file entry, so `sessions` can list every conversation the
repository knows without downloading any transcript (docs/FORMAT.md §6, "session").

Transcripts are JSON Lines written by Claude Code; most records have a `timestamp`, `cwd` and
`gitBranch`, but `summary`, `file-history-snapshot` and similar records have no `uuid` and
some no `timestamp`, and the last line may be half-written. Only the records a fact needs are
decoded: the first few (title, cwd, start), the last few (end, branch) and the summaries.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from claude_sync.errors import CorruptionError

T = TypeVar("T")
TITLE_MAX = 80
#: records decoded from each end before giving up on a fact
SCAN_LIMIT = 2000
#: bytes read at a time
BLOCK = 1 << 20
# A line after the first that holds nothing but whitespace.
_BLANK = re.compile(rb"\n[ \t\r\x0b\x0c]*(?=\n|\Z)")
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
    """What `sessions` shows of a transcript without downloading it: stored, encrypted,
    in the snapshot beside the transcript's entry."""

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
        """The form stored in a snapshot."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: Any, what: str) -> SessionSummary:
        """Decode the stored form; CorruptionError (naming `what`) when it is malformed."""
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
    return summarize_file(io.BytesIO(data), len(data), device)


def summarize_file(fh: BinaryIO, size: int, device: str, block: int = BLOCK) -> SessionSummary:
    """The summary of a transcript's first `size` bytes, read a block at a time: a
    transcript can be far bigger than the memory a hook should take."""
    scan = _Scan()
    fh.seek(0)
    carry = b""
    left = size
    while left > 0 and (piece := fh.read(min(block, left))):
        left -= len(piece)
        data = carry + piece
        cut = data.rfind(b"\n") + 1
        if cut:
            scan.add(data[:cut])
        carry = data[cut:]
    if carry:
        scan.add(carry)
    read = size - left
    return SessionSummary(
        title=one_line(scan.custom or scan.summary or scan.prompt or ""),
        cwd=scan.cwd or "",
        first=scan.first,
        last=_first(
            _records(_lines_from_end(fh, read, block)), lambda r: _time(r.get("timestamp"))
        ),
        records=scan.records,
        branch=_first(
            _records(_lines_from_end(fh, read, block)), lambda r: _text(r.get("gitBranch"))
        )
        or "",
        device=device,
    )


class _Scan:
    """The facts of one pass from the start: the count, the summaries and titles wherever
    they are, and what the first SCAN_LIMIT lines say."""

    def __init__(self) -> None:
        self.records = 0
        self.lines = 0
        self.custom: str | None = None
        self.summary: str | None = None
        self.prompt: str | None = None
        self.cwd: str | None = None
        self.first: float | None = None

    def add(self, data: bytes) -> None:
        """Whole lines (the last one may lack its newline only at the end of the file).
        Counted and searched without splitting them: a transcript can hold millions."""
        body = data[:-1] if data.endswith(b"\n") else data
        lines = body.count(b"\n") + 1
        first_end = body.find(b"\n")
        first = body if first_end < 0 else body[:first_end]
        blank = len(_BLANK.findall(body)) + (not first.strip())
        self.records += lines - blank
        if self.lines < SCAN_LIMIT and not (self.prompt and self.cwd and self.first):
            head = body.split(b"\n", SCAN_LIMIT - self.lines)[: SCAN_LIMIT - self.lines]
            self.prompt = self.prompt or _first(_records(head), _prompt)
            self.cwd = self.cwd or _first(_records(head), lambda r: _text(r.get("cwd")))
            self.first = self.first or _first(_records(head), lambda r: _time(r.get("timestamp")))
        self.lines += lines
        if b'"summary"' not in data and b'"custom-title"' not in data:
            return
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
                self.custom = _text(record.get("customTitle")) or self.custom
            elif record.get("type") == "summary":
                self.summary = _text(record.get("summary")) or self.summary


def _lines_from_end(fh: BinaryIO, size: int, block: int) -> Iterator[bytes]:
    """The last SCAN_LIMIT lines of the first `size` bytes, the last one first."""
    end, carry, count = size, b"", 0
    while end > 0 and count < SCAN_LIMIT:
        start = max(0, end - block)
        fh.seek(start)
        data = fh.read(end - start) + carry
        end = start
        lines = data.split(b"\n")
        carry = lines.pop(0) if end > 0 else b""
        for line in reversed(lines):
            yield line
            count += 1


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
