"""A transcript's summary is read a block at a time; where the blocks fall must not change it."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claude_sync import session_summary
from claude_sync.session_summary import summarize_file, summarize_from

RECORDS = st.one_of(
    st.builds(
        lambda text, t, meta: {
            "type": "user",
            "isMeta": meta,
            "timestamp": f"2026-11-{t:02d}T10:00:00Z",
            "cwd": f"/home/ann/p{t}",
            "message": {"content": text},
        },
        st.text(min_size=0, max_size=12),
        st.integers(1, 28),
        st.booleans(),
    ),
    st.builds(
        lambda t, b: {
            "type": "assistant",
            "timestamp": f"2026-11-{t:02d}T11:00:00Z",
            "gitBranch": b,
        },
        st.integers(1, 28),
        st.sampled_from(["", "main", "fix"]),
    ),
    st.builds(lambda s: {"type": "summary", "summary": s}, st.text(max_size=10)),
    st.builds(lambda s: {"type": "custom-title", "customTitle": s}, st.text(max_size=10)),
)
LINES = st.lists(
    st.one_of(RECORDS.map(json.dumps), st.sampled_from(["", "   ", "not json", "[1]"])),
    max_size=30,
)


@given(
    lines=LINES,
    unfinished=st.sampled_from(["", '{"type": "user", "timest', "\n"]),
    block=st.integers(1, 64),
    limit=st.integers(1, 12),
)
def test_the_summary_does_not_depend_on_where_the_blocks_fall(
    lines: list[str], unfinished: str, block: int, limit: int
) -> None:
    data = ("".join(line + "\n" for line in lines) + unfinished).encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session_summary, "SCAN_LIMIT", limit)
        whole = summarize_file(io.BytesIO(data), len(data), "d", block=len(data) + 1)
        assert summarize_file(io.BytesIO(data), len(data), "d", block=block) == whole


def test_only_the_first_size_bytes_count() -> None:
    first = b'{"type": "user", "message": {"content": "hello"}, "gitBranch": "a"}\n'
    later = b'{"type": "summary", "summary": "later"}\n'
    summary = summarize_file(io.BytesIO(first + later), len(first), "d", block=5)
    assert (summary.title, summary.records, summary.branch) == ("hello", 1, "a")


def _model(data: bytes, limit: int) -> tuple[str, str, float | None, float | None, int, str]:
    """The summary as a whole-file reader of lines would make it: the reference the block
    reader must agree with."""
    lines = data.split(b"\n")
    whole = lines[:-1] if data.endswith(b"\n") else lines

    def records(some: list[bytes]) -> list[dict]:
        out = []
        for line in some:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def first(found: list) -> object:
        return next((x for x in found if x), None)

    every = records(whole)
    head = records(lines[:limit])
    tail = records(lines[::-1][:limit])
    title = (
        first([r.get("customTitle") for r in every[::-1] if r.get("type") == "custom-title"])
        or first([r.get("summary") for r in every[::-1] if r.get("type") == "summary"])
        or first([session_summary._prompt(r) for r in head])
        or ""
    )
    return (
        session_summary.one_line(title),
        first([r.get("cwd") for r in head]) or "",
        first([session_summary._time(r.get("timestamp")) for r in head]),
        first([session_summary._time(r.get("timestamp")) for r in tail]),
        sum(1 for line in whole if line.strip()),
        first([r.get("gitBranch") for r in tail]) or "",
    )


@given(
    lines=LINES,
    unfinished=st.sampled_from(["", '{"type": "user", "timest', "\n", "  "]),
    block=st.integers(1, 64),
    limit=st.integers(1, 12),
)
def test_the_block_reader_says_what_a_reader_of_whole_lines_says(
    lines: list[str], unfinished: str, block: int, limit: int
) -> None:
    data = ("".join(line + "\n" for line in lines) + unfinished).encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session_summary, "SCAN_LIMIT", limit)
        got = summarize_file(io.BytesIO(data), len(data), "d", block=block)
    assert (got.title, got.cwd, got.first, got.last, got.records, got.branch) == _model(data, limit)


@given(
    first=LINES,
    appended=st.lists(LINES, max_size=3),
    marks=st.lists(st.integers(0, 4000), min_size=4, max_size=4),
    block=st.integers(1, 64),
    limit=st.integers(1, 12),
)
def test_a_summary_resumed_at_its_checkpoint_equals_one_read_from_the_start(
    first: list[str], appended: list[list[str]], marks: list[int], block: int, limit: int
) -> None:
    """A transcript grows by whole records; each push resumes from the checkpoint the last
    one left, wherever its mark fell, and says what a pass over the whole file says."""
    data = "".join(line + "\n" for line in first).encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session_summary, "SCAN_LIMIT", limit)
        checkpoint = None
        for more, mark in zip([[], *appended], marks, strict=False):
            data += "".join(line + "\n" for line in more).encode()
            mark = min(mark, len(data))
            got, checkpoint_next = summarize_from(
                io.BytesIO(data), len(data), "d", checkpoint, mark, block=block
            )
            assert got == summarize_file(io.BytesIO(data), len(data), "d", block=block + 7)
            if mark < len(data):
                assert checkpoint_next is not None
                offset = checkpoint_next.offset
                assert offset <= mark and (offset == 0 or data[offset - 1 : offset] == b"\n")
            checkpoint = checkpoint_next or checkpoint


@given(LINES)
def test_a_summary_is_stored_with_every_field_and_read_back_as_it_was(lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    summary = summarize_file(io.BytesIO(data), len(data), "laptop")
    stored = summary.to_json()
    assert stored == dataclasses.asdict(summary)
    assert session_summary.SessionSummary.from_json(json.loads(json.dumps(stored)), "x") == summary


@given(st.text(alphabet=st.sampled_from("ab \n\t\u2003\u2028é"), max_size=4000))
def test_a_title_is_the_prompt_on_one_line_however_long(text: str) -> None:
    """Only the start of a long prompt is looked at: the title is still its whitespace
    collapsed, cut to TITLE_MAX."""
    flat = " ".join(text.split())
    cut = session_summary.TITLE_MAX
    expected = flat if len(flat) <= cut else flat[: cut - 1] + "…"
    assert session_summary.one_line(text) == expected
