"""A few facts about one conversation, read from its transcript at push time and stored
(encrypted) with the transcript's file entry, so `sessions` can list every conversation the
repository knows without downloading any transcript (docs/FORMAT.md §6, "session").

Transcripts are JSON Lines written by Claude Code; most records have a `timestamp`, `cwd` and
`gitBranch`, but `summary`, `file-history-snapshot` and similar records have no `uuid` and
some no `timestamp`, and the last line may be half-written. Only the records a fact needs are
decoded: the first few (title, cwd, start), the last few (end, branch) and the summaries.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from claude_sync.errors import CorruptionError

TITLE_MAX = 80
#: records decoded from each end before giving up on a fact
SCAN_LIMIT = 2000
#: bytes read at a time
BLOCK = 1 << 20
#: bytes read first from the end of a transcript
TAIL_FIRST_READ = 64 * 1024
NEWLINE = ord("\n")
# The start of a line after the first that holds more than whitespace: a record. Counted in
# one pass, without a count of the lines and one of the blank ones.
_RECORD = re.compile(rb"\n(?=[ \t\r\x0b\x0c]*[^ \t\r\x0b\x0c\n])")
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


@dataclass(frozen=True, slots=True)
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
        """The form stored in a snapshot (built by hand: `asdict` copies each field
        deeply, and a first push writes one per transcript)."""
        return {
            "title": self.title,
            "cwd": self.cwd,
            "first": self.first,
            "last": self.last,
            "records": self.records,
            "branch": self.branch,
            "device": self.device,
        }

    @classmethod
    def from_json(cls, obj: Any, what: str) -> SessionSummary:
        """Decode the stored form; CorruptionError (naming `what`) when it is malformed."""
        try:
            # A snapshot of 50,000 sessions repeats a few directories, branches and devices:
            # each kept once (8 MiB).
            summary = cls(
                title=str(obj["title"]),
                cwd=sys.intern(str(obj["cwd"])),
                first=None if obj["first"] is None else float(obj["first"]),
                last=None if obj["last"] is None else float(obj["last"]),
                records=int(obj["records"]),
                branch=sys.intern(str(obj["branch"])),
                device=sys.intern(str(obj["device"])),
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
    """The summary of a transcript's first `size` bytes, read a block at a time."""
    return summarize_from(fh, size, device, block=block)[0]


@dataclass(frozen=True)
class Checkpoint:
    """Where a summary's pass from the start can pick up again: the facts of the first
    `offset` bytes of a transcript (a line boundary). A transcript only grows, so the next
    push reads from here, not the whole file again (the caller makes sure those bytes did
    not change)."""

    offset: int
    facts: dict[str, Any]


@dataclass(frozen=True)
class SummaryMark:
    """A checkpoint kept between pushes (in the local state), with what proves its bytes
    unchanged: the keyed hashes of the file's first chunks, which cover it."""

    #: how many of the file's first chunks cover the checkpoint
    chunks: int
    #: a hash of those chunks' ids, offsets and lengths
    key: str
    checkpoint: Checkpoint

    @staticmethod
    def key_of(chunks: Sequence[tuple[str, int, int]], count: int) -> str | None:
        """The key of a file's first count chunks; None when it has fewer."""
        if len(chunks) < count:
            return None
        return hashlib.sha256(json.dumps(list(chunks[:count])).encode()).hexdigest()

    def resume_point(self, chunks: Sequence[tuple[str, int, int]]) -> Checkpoint | None:
        """The checkpoint, when the file whose chunks these are still begins with the bytes
        it summarizes; else None."""
        return self.checkpoint if self.key_of(chunks, self.chunks) == self.key else None

    @classmethod
    def taken(
        cls, chunks: Sequence[tuple[str, int, int]], checkpoint: Checkpoint | None
    ) -> SummaryMark | None:
        """The mark of a checkpoint taken before the file's last chunk (see summarize_from's
        mark); None without one."""
        if checkpoint is None:
            return None  # (a one-chunk transcript, most: its key is not worth making)
        key = cls.key_of(chunks, len(chunks) - 1)
        return None if key is None else cls(len(chunks) - 1, key, checkpoint)

    def to_json(self) -> str:
        return json.dumps([self.chunks, self.key, self.checkpoint.offset, self.checkpoint.facts])

    @classmethod
    def from_json(cls, text: str) -> SummaryMark | None:
        """The stored mark; None when it is not one (it is then read from the start)."""
        try:
            chunks, key, offset, facts = json.loads(text)
            if set(facts) != set(_Scan().facts()):
                return None
            return cls(int(chunks), str(key), Checkpoint(int(offset), dict(facts)))
        except (ValueError, TypeError):
            return None


def summarize_from(
    fh: BinaryIO,
    size: int,
    device: str,
    resume: Checkpoint | None = None,
    mark: int | None = None,
    block: int = BLOCK,
) -> tuple[SessionSummary, Checkpoint | None]:
    """The summary of a transcript's first `size` bytes, read from resume on (else from
    the start) a block at a time into one buffer: a transcript can be far bigger than the
    memory a hook should take, and a fresh buffer per block costs more than searching it.
    With mark, also the checkpoint at the last line boundary at or before it (a resume
    point past mark is not used: checkpoints only move forward)."""
    limit = size if mark is None else min(size, mark)
    start = 0 if resume is None or resume.offset > limit else resume.offset
    scan = _Scan.resumed(resume.facts) if start else _Scan()
    checkpoint = None
    pos = start  # the file offset of buf[0], always a line boundary
    fh.seek(start)
    left = size - start
    # No bigger than what is to be read: most transcripts are far smaller than a block.
    buf = bytearray(max(1, min(block, left)))
    filled = 0  # bytes in buf: a carried partial line, then what was read

    def feed(end: int) -> None:
        """Add buf[:end], whole lines; take the checkpoint when mark falls in them."""
        nonlocal checkpoint
        split = 0
        if mark is not None and checkpoint is None and mark < pos + end:
            split = buf.rfind(b"\n", 0, max(0, mark - pos)) + 1
            if split:
                scan.add(buf, 0, split)
            checkpoint = Checkpoint(pos + split, scan.facts())
        if split < end:
            scan.add(buf, split, end)

    while left > 0:
        if filled == len(buf):  # a line longer than the buffer
            buf.extend(bytes(len(buf)))
        view = memoryview(buf)
        got = fh.readinto(view[filled : filled + min(len(buf) - filled, left)])
        del view  # a bytearray with an export cannot be resized
        if not got:
            break
        left -= got
        filled += got
        cut = buf.rfind(b"\n", 0, filled) + 1
        if cut:
            feed(cut)
            buf[: filled - cut] = buf[cut:filled]
            filled -= cut
            pos += cut
    if filled:
        feed(filled)
    last = branch = None
    for record in _records(_lines_from_end(fh, size - left, block)):
        last = last or _time(record.get("timestamp"))
        branch = branch or _text(record.get("gitBranch"))
        if last and branch:
            break
    summary = SessionSummary(
        title=one_line(scan.custom or scan.summary or scan.prompt or ""),
        cwd=scan.cwd or "",
        first=scan.first,
        last=last,
        records=scan.records,
        branch=branch or "",
        device=device,
    )
    return summary, checkpoint


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

    def facts(self) -> dict[str, Any]:
        """What the pass knows so far, in a form a checkpoint keeps."""
        return dict(self.__dict__)

    @classmethod
    def resumed(cls, facts: dict[str, Any]) -> _Scan:
        """The pass as it was when facts were taken."""
        scan = cls()
        scan.__dict__.update(facts)
        return scan

    def add(self, data: bytearray, start: int, end: int) -> None:
        """Whole lines, data[start:end] (the last one may lack its newline only at the end
        of the file). Counted and searched in place, without splitting or copying them: a
        transcript can hold millions."""
        body = end - 1 if data[end - 1] == NEWLINE else end
        first_end = data.find(b"\n", start, body)
        first_blank = not data[start : body if first_end < 0 else first_end].strip()
        self.records += len(_RECORD.findall(data, start, body)) + (not first_blank)
        if self.lines < SCAN_LIMIT and not (self.prompt and self.cwd and self.first):
            self._head(self._lines(data, start, body))
        for match in _SUMMARY.finditer(data, start, end):
            line = data.rfind(b"\n", start, match.start()) + 1 or start
            stop = data.find(b"\n", match.end(), end)
            try:
                record = json.loads(data[line : stop if stop >= 0 else end])
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if record.get("type") == "custom-title":
                self.custom = _text(record.get("customTitle")) or self.custom
            elif record.get("type") == "summary":
                self.summary = _text(record.get("summary")) or self.summary

    def _lines(self, data: bytearray, start: int, body: int) -> Iterator[bytearray]:
        """The lines of data[start:body], one at a time, counted, up to the SCAN_LIMIT-th of
        the file: the facts wanted are nearly always in the first line or two."""
        while self.lines < SCAN_LIMIT:
            end = data.find(b"\n", start, body)
            self.lines += 1
            yield data[start : body if end < 0 else end]
            if end < 0:
                return
            start = end + 1

    def _head(self, lines: Iterable[bytes | bytearray]) -> None:
        """The title, folder and start time, from the first records that have them."""
        for record in _records(lines):
            self.prompt = self.prompt or _prompt(record)
            self.cwd = self.cwd or _text(record.get("cwd"))
            self.first = self.first or _time(record.get("timestamp"))
            if self.prompt and self.cwd and self.first:
                return


def _lines_from_end(fh: BinaryIO, size: int, block: int) -> Iterator[bytes]:
    """The last SCAN_LIMIT lines of the first `size` bytes, the last one first. The first
    read is small: the facts wanted are nearly always in the last record or two."""
    end, carry, count = size, b"", 0
    step = min(block, TAIL_FIRST_READ)
    while end > 0 and count < SCAN_LIMIT:
        start = max(0, end - step)
        step = min(block, step * 4)
        fh.seek(start)
        data = fh.read(end - start) + carry
        end = start
        lines = data.split(b"\n")
        carry = lines.pop(0) if end > 0 else b""
        for line in reversed(lines):
            yield line
            count += 1


def _records(lines: Iterable[bytes | bytearray]) -> Iterator[dict[str, Any]]:
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
    # Of the start only, as much as the title needs: a first prompt can be pages of code,
    # and a first push summarizes thousands of transcripts.
    take = 4 * TITLE_MAX
    while True:
        flat = " ".join(text[:take].split())
        if len(flat) > TITLE_MAX or take >= len(text):
            break
        take *= 4
    return flat if len(flat) <= TITLE_MAX else flat[: TITLE_MAX - 1] + "…"
