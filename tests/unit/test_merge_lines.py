"""Line-based merges of transcripts and history: which lines count as the same record, and
where lines without a timestamp go."""

from __future__ import annotations

import json

from claude_sync.merge import merge_file, merge_history, merge_transcript


def test_a_line_that_is_not_json_is_not_taken_for_a_record_with_that_uuid() -> None:
    record = b'{"uuid": "x", "timestamp": "2026-01-01T00:00:00Z"}\n'
    merged = merge_transcript(record, b"x\n")
    assert merged.splitlines() == [b"x", record.rstrip()]
    assert merged == merge_transcript(b"x\n", record)


def test_a_uuid_with_a_lone_surrogate_is_a_uuid() -> None:
    # JSON may escape a lone surrogate, which Python's strict UTF-8 cannot encode.
    local = b'{"uuid": "\\ud800", "timestamp": "2026-01-01T00:00:01Z"}\n'
    remote = b'{"uuid": "b", "timestamp": "2026-01-01T00:00:00Z"}\n'
    assert merge_transcript(local, remote) == remote + local


def test_history_lines_without_timestamp_come_first() -> None:
    stamped = json.dumps({"display": "a", "timestamp": 0}).encode()
    unstamped = json.dumps({"display": "z"}).encode()
    assert merge_history(stamped + b"\n", unstamped + b"\n") == unstamped + b"\n" + stamped + b"\n"


def test_history_keeps_the_same_copy_of_a_crlf_line_whichever_side_has_it() -> None:
    crlf, lf = b'{"display": "x", "timestamp": 1}\r\n', b'{"display": "x", "timestamp": 1}\n'
    assert merge_history(crlf, lf) == merge_history(lf, crlf) == crlf


def test_transcript_timestamps_are_instants_whatever_their_offset() -> None:
    def record(uuid: str, stamp: str) -> bytes:
        return json.dumps({"uuid": uuid, "timestamp": stamp}).encode() + b"\n"

    # 01:00+02:00 is 23:00 UTC the day before; a timestamp without offset is UTC.
    local = record("a", "2026-01-01T00:00:00") + record("c", "2026-01-01T00:30:00Z")
    remote = record("b", "2026-01-01T01:00:00+02:00")
    merged = merge_transcript(local, remote)
    assert merged == remote + local
    assert merged == merge_transcript(remote, local)


def test_a_transcript_line_without_timestamp_goes_before_any_timestamp() -> None:
    summary = b'{"type": "summary", "summary": "s"}\n'
    old = b'{"uuid": "a", "timestamp": "1969-12-31T23:59:59Z"}\n'
    assert merge_transcript(summary, old) == summary + old
    assert merge_transcript(old, summary) == summary + old


def test_history_keeps_a_prompt_still_being_written_at_the_end():
    """Claude Code appends a prompt line in pieces: half of it is no line to sort in, and
    another machine's half line is left to that machine."""
    done = b'{"display":"one","timestamp":1000}\n'
    theirs = b'{"display":"from B","timestamp":2000}\n'
    half = b'{"display":"A prompt being wri'
    merged = merge_history(done + half, done + theirs + b'{"display":"B half')
    assert merged == done + theirs + half
    finished = merged + b'tten","timestamp":3000}\n'
    assert all(line.startswith(b"{") and line.endswith(b"}") for line in finished.splitlines())


def test_a_history_unchanged_here_becomes_the_other_machines_as_it_is() -> None:
    """A line appended elsewhere with an older time (prompts of two sessions, written as
    they finished) is not sorted in here when nothing was added here: the copy would differ
    from the pushed one, go back as a change, and reorder the other machine's too. A
    prompt being written here stays at the end."""
    base = b'{"display":"one","timestamp":1000}\n{"display":"two","timestamp":3000}\n'
    remote = base + b'{"display":"older","timestamp":2000}\n'
    half = b'{"display":"being wri'
    assert merge_file("history.jsonl", base, base, remote) == remote
    assert merge_file("history.jsonl", base, base + half, remote) == remote + half
    # The last line there without its line break: the prompt being written here still
    # starts a line of its own.
    unbroken = base + b'{"display":"older","timestamp":2000}'
    assert merge_file("history.jsonl", base, base + half, unbroken) == unbroken + b"\n" + half
    # A line gone there: the union, as always (no prompt is lost by a merge).
    assert merge_file("history.jsonl", base, base, b'{"display":"one","timestamp":1000}\n') == (
        base
    )
    # Added here too: the union, by time.
    mine = base + b'{"display":"mine","timestamp":4000}\n'
    assert merge_file("history.jsonl", base, mine, remote) == (
        b'{"display":"one","timestamp":1000}\n{"display":"older","timestamp":2000}\n'
        b'{"display":"two","timestamp":3000}\n{"display":"mine","timestamp":4000}\n'
    )
