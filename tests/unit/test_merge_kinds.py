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


def test_history_merges_as_history_in_time_order() -> None:
    older = line(display="z", timestamp=1, project="/p")
    newer = line(display="a", timestamp=2, project="/p")
    assert merge_file("history.jsonl", None, newer, older) == older + newer
    assert merge_file("./history.jsonl", None, older, newer) == older + newer


def test_json_merges_key_by_key_against_the_base() -> None:
    base = b'{"a": 1, "b": 1}'
    local, remote = b'{"a": 2, "b": 1}', b'{"a": 1, "b": 3, "\\u00e9": 1}'
    merged = merge_file("settings.json", base, local, remote)
    assert merged == '{"a": 2, "b": 3, "\u00e9": 1}'.encode()  # laid out as local is
    # Without the base, both sides changed "a" and "b": a conflict.
    assert merge_file("settings.json", None, local, remote) is None
    assert merge_file("agents/x.json", base, local, remote) == merged


def test_mcp_servers_merge_entry_by_entry() -> None:
    from claude_sync.merge import MCP_SERVERS

    base = b'{"a": {"cmd": "x", "args": []}}'
    local = b'{"a": {"cmd": "y", "args": []}}'
    remote = b'{"a": {"cmd": "x", "args": ["-v"]}, "b": {"cmd": "z"}}'
    # Key by key this would merge; entry by entry, "a" changed on both sides: a conflict.
    assert merge_file(MCP_SERVERS, base, local, remote) is None
    merged = merge_file(MCP_SERVERS, base, local, b'{"a": {"cmd": "x", "args": []}, "b": {}}')
    assert json.loads(merged or b"") == {"a": {"cmd": "y", "args": []}, "b": {}}


def test_other_files_merge_as_text() -> None:
    base = b"one\ntwo\nthree\n"
    local, remote = b"ONE\ntwo\nthree\n", b"one\ntwo\nTHREE\n"
    assert merge_file("agents/x.md", base, local, remote) == b"ONE\ntwo\nTHREE\n"
    assert merge_file("agents/x.md", None, local, remote) is None
