"""Which merge a path gets: transcripts keep their records in conversation order, history
lines are sorted by time; mixing the two up reorders or duplicates a conversation."""

from __future__ import annotations

import json

from claude_sync.merge import is_transcript, merge_file, merge_history, merge_transcript

SESSION = "projects/-home-ann-app/11111111-2222-3333-4444-555555555555.jsonl"


def line(**fields: object) -> bytes:
    return json.dumps(fields).encode() + b"\n"


def test_transcripts_and_history_are_told_apart() -> None:
    assert is_transcript(SESSION)
    assert is_transcript("projects/-p/s/subagents/agent-1.jsonl")
    assert not is_transcript("history.jsonl")
    assert not is_transcript("todos/x.jsonl")


def test_a_transcript_merges_as_a_transcript() -> None:
    # The same record (uuid) rewritten on one side: a transcript keeps one copy, in the
    # order of the conversation; a history merge would keep both lines, sorted by time.
    first = line(uuid="a", timestamp="2026-01-01T00:00:02Z", message="hi")
    second = line(uuid="b", parentUuid="a", timestamp="2026-01-01T00:00:01Z")
    rewritten = line(uuid="a", timestamp="2026-01-01T00:00:02Z", message="hi", extra=1)
    local, remote = first + second, rewritten + second
    merged = merge_file(SESSION, None, local, remote)
    assert merged == merge_transcript(local, remote)
    assert merged != merge_history(local, remote)


def test_history_merges_as_history() -> None:
    older = line(display="a", timestamp=1, project="/p")
    newer = line(display="b", timestamp=2, project="/p")
    assert merge_file("history.jsonl", None, newer, older) == older + newer
