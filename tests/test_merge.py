"""Tests of the automatic merges (claude_sync.merge): properties with hypothesis, then examples."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync.merge import (
    conflict_markers,
    merge_file,
    merge_history,
    merge_json,
    merge_text,
    merge_transcript,
    restore_records,
)

Merge = Callable[[bytes, bytes], bytes]
PROPERTY = settings(max_examples=200, deadline=None)


# -- helpers --------------------------------------------------------------------------------------


def stamp(ms: int) -> str:
    """An ISO-8601 timestamp as Claude Code writes it, `ms` milliseconds after a fixed instant."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"2025-06-01T10:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def message(uuid: str, ms: int | None, text: str = "hi") -> bytes:
    record: dict[str, object] = {"type": "user", "uuid": uuid, "message": text}
    if ms is not None:
        record["timestamp"] = stamp(ms)
    return json.dumps(record).encode()


def summary(text: str) -> bytes:
    return json.dumps({"type": "summary", "summary": text, "leafUuid": "x"}).encode()


def jsonl(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def identities(data: bytes) -> Counter[bytes]:
    """Multiset of identities as the module defines them: uuid, else the exact line."""
    found: Counter[bytes] = Counter()
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        uuid = record.get("uuid") if isinstance(record, dict) else None
        found[
            b"uuid:" + uuid.encode("utf-8", "surrogatepass") if isinstance(uuid, str) else line
        ] += 1
    return found


def fold(merge: Merge, files: list[bytes]) -> bytes:
    result = files[0]
    for data in files[1:]:
        result = merge(result, data)
    return result


def all_orders(merge: Merge, files: list[bytes]) -> set[bytes]:
    """Results of every permutation and every bracketing of the three files."""
    results = set()
    for a, b, c in itertools.permutations(files):
        results.add(merge(merge(a, b), c))
        results.add(merge(a, merge(b, c)))
    return results


# -- strategies -----------------------------------------------------------------------------------

# Anything a transcript line might be, from a small alphabet so that collisions are frequent:
# uuid records (with and without timestamps, rewritten bytes), summaries, broken JSON, non-objects.
any_line = st.one_of(
    st.builds(
        message,
        st.sampled_from("abcdef"),
        st.none() | st.integers(0, 5),
        st.sampled_from(["hi", "ho"]),
    ),
    st.builds(summary, st.sampled_from(["s1", "s2"])),
    st.sampled_from([b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"uuid": 7}']),
)
any_file = st.builds(
    lambda lines, end: b"\n".join(lines) + end,
    st.lists(any_line, max_size=8),
    st.sampled_from([b"\n", b""]),
)


@st.composite
def machines(draw: st.DrawFn, count: int = 3) -> list[bytes]:
    """A shared base, then on each machine its own records (unique uuids, own timestamps, some
    without timestamp, some opaque lines), appended in non-decreasing timestamp order; ties in
    timestamps within and across machines are frequent on purpose."""
    fresh = itertools.count()

    def new_line(machine: int, ms: int, kind: str) -> bytes:
        n = next(fresh)
        if kind == "message":
            return message(f"m{machine}-{n}", ms)
        if kind == "untimed":
            return message(f"m{machine}-{n}", None)
        if kind == "summary":
            return summary(f"m{machine}-{n}")
        return f"garbage {machine} {n}".encode()

    kinds = st.sampled_from(["message", "message", "message", "untimed", "summary", "opaque"])

    def history(machine: int, start: int) -> list[bytes]:
        steps = draw(st.lists(st.tuples(st.integers(0, 2), kinds), max_size=6))
        lines, ms = [], start
        for step, kind in steps:
            ms += step
            lines.append(new_line(machine, ms, kind))
        return lines

    base = history(-1, 0)
    return [jsonl(base + history(machine, 10)) for machine in range(count)]


@st.composite
def sorted_subsets(draw: st.DrawFn) -> list[bytes]:
    """Three files each holding a subset of one pool of timestamped records, in key order: what
    machines hold when they append after syncing, including truncated files."""
    pool = draw(st.lists(st.tuples(st.integers(0, 4), st.uuids()), min_size=1, max_size=10))
    records = sorted({(ms, str(uuid)) for ms, uuid in pool})
    files = []
    for _ in range(3):
        keep = draw(st.lists(st.booleans(), min_size=len(records), max_size=len(records)))
        files.append(jsonl([message(u, ms) for (ms, u), k in zip(records, keep, strict=True) if k]))
    return files


history_line = st.one_of(
    st.builds(
        lambda ms, text: json.dumps({"display": text, "timestamp": ms}).encode(),
        st.integers(0, 3) | st.floats(0, 3, allow_nan=False),
        st.sampled_from(["a", "b"]),
    ),
    st.sampled_from([b"{broken", b'{"display": "x"}', b'{"timestamp": true}', b"[]"]),
)
history_file = st.builds(
    lambda lines, end: b"\n".join(lines) + end,
    st.lists(history_line, max_size=8),
    st.sampled_from([b"\n", b""]),
)


# -- transcripts: properties ----------------------------------------------------------------------


def unfinished(data: bytes) -> tuple[bytes, bytes]:
    """(complete lines, a last line that starts a JSON object but is not whole: a write in
    progress)."""
    cut = data.rfind(b"\n") + 1
    if not data.startswith(b"{", cut):
        return data, b""
    try:
        json.loads(data[cut:])
    except ValueError:
        return data[:cut], data[cut:]
    return data, b""


# Both sides finished writing: a transcript whose last line is a complete record.
finished_file = any_file.map(lambda data: unfinished(data)[0])


@PROPERTY
@given(any_file, any_file)
def test_transcript_loses_no_record(local: bytes, remote: bytes) -> None:
    merged = merge_transcript(local, remote)
    if local.startswith(remote) or remote.startswith(local):
        assert identities(merged) == identities(local) | identities(remote)
        return
    # The other side's unfinished write is its own, and comes with its next sync.
    (local_done, tail), (remote_done, _) = unfinished(local), unfinished(remote)
    assert merged.endswith(tail)
    expected = (identities(local_done) | identities(remote_done)) + identities(tail)
    assert identities(merged) == expected


@PROPERTY
@given(finished_file, any_file)
def test_restoring_records_loses_none_and_keeps_the_lines_here(stored: bytes, local: bytes) -> None:
    """A push of a transcript rewritten here: every record of the repository's version is
    kept, and a record both hold keeps this machine's line (an edit here is not undone)."""
    restored = restore_records(local, stored)
    local_done, tail = unfinished(local)
    assert restored.endswith(tail)
    kept = identities(restored[: len(restored) - len(tail)] if tail else restored)
    assert kept == identities(local_done) | identities(stored)
    if not identities(stored) - identities(local_done):
        assert restored == local  # it lacks nothing: pushed as it is
    ours = {line for line in local_done.split(b"\n") if line}
    theirs = {line for line in stored.split(b"\n") if line}
    lines = {line for line in restored.split(b"\n") if line}
    assert lines <= ours | theirs | {tail}  # nothing made up
    assert ours <= lines  # every line here stays: an edit here is not undone


@PROPERTY
@given(any_file, any_file)
def test_transcript_merges_complete_lines_and_keeps_the_local_write_in_progress(
    local: bytes, remote: bytes
) -> None:
    if local.startswith(remote) or remote.startswith(local):
        return
    (local_done, tail), (remote_done, _) = unfinished(local), unfinished(remote)
    merged = merge_transcript(local_done, remote_done)
    if tail and merged and not merged.endswith(b"\n"):
        merged += b"\n"  # a last record without its newline: the write in progress starts a line
    assert merge_transcript(local, remote) == merged + tail


@PROPERTY
@given(finished_file, finished_file)
def test_transcript_commutative(local: bytes, remote: bytes) -> None:
    assert merge_transcript(local, remote) == merge_transcript(remote, local)


@PROPERTY
@given(any_file, any_file)
def test_transcript_idempotent(local: bytes, remote: bytes) -> None:
    assert merge_transcript(local, local) == local
    merged = merge_transcript(local, remote)
    assert merge_transcript(merged, merged) == merged
    tail = unfinished(local)[1]
    assert not merged or merged.endswith(b"\n") or merged in (local, remote) or tail


def test_transcript_half_written_last_line_stays_one_record() -> None:
    base = jsonl([message("a", 1)])
    half = message("c", 3)[:40]  # past the uuid: not a prefix of the other side's record
    merged = merge_transcript(base + half, base + jsonl([message("b", 2)]))
    assert merged == base + jsonl([message("b", 2)]) + half
    # The writer finishes its line: one whole record, no fragments.
    finished = merged + message("c", 3)[40:] + b"\n"
    assert [json.loads(line) for line in finished.splitlines()][-1] == json.loads(message("c", 3))


@PROPERTY
@given(any_file, st.lists(any_line, max_size=4), st.integers(0, 20))
def test_transcript_prefix_is_fast_forward(base: bytes, more: list[bytes], cut: int) -> None:
    longer = base + b"\n" + b"\n".join(more)
    shorter = longer[: max(0, len(longer) - cut)]  # may cut inside a line: a write in progress
    assert merge_transcript(shorter, longer) == longer
    assert merge_transcript(longer, shorter) == longer


@PROPERTY
@given(machines())
def test_transcript_three_machines_converge(files: list[bytes]) -> None:
    results = all_orders(merge_transcript, files)
    assert len(results) == 1
    merged = results.pop()
    assert identities(merged) == identities(files[0]) | identities(files[1]) | identities(files[2])


@PROPERTY
@given(machines(count=2))
def test_transcript_keeps_each_machine_order(files: list[bytes]) -> None:
    merged = merge_transcript(*files).splitlines()
    for data in files:
        lines = data.splitlines()
        assert [line for line in merged if line in lines] == lines


@PROPERTY
@given(sorted_subsets())
def test_transcript_sorted_files_give_sorted_union(files: list[bytes]) -> None:
    results = all_orders(merge_transcript, files)
    assert len(results) == 1
    union = sorted(set().union(*(data.splitlines() for data in files)), key=_ts_uuid)
    assert results.pop() == jsonl(union)


def _ts_uuid(line: bytes) -> tuple[str, str]:
    record = json.loads(line)
    return record["timestamp"], record["uuid"]


@PROPERTY
@given(machines(), st.data())
def test_transcript_syncing_rounds_converge(files: list[bytes], data: st.DataObject) -> None:
    """Machines sync pairwise in random rounds and append between rounds (timestamp ties,
    records without timestamp); once all have exchanged everything, in any order, all hold the
    same bytes."""
    files = list(files)
    fresh = itertools.count()
    for round_ in range(data.draw(st.integers(0, 6))):
        a, b = data.draw(st.permutations(range(3)))[:2]
        files[a] = files[b] = merge_transcript(files[a], files[b])
        appender = data.draw(st.integers(0, 2))
        ms = 100 + round_ // 2  # the same millisecond across rounds and machines
        kinds = data.draw(st.lists(st.sampled_from(["timed", "untimed", "summary"]), max_size=3))
        files[appender] += jsonl([_appended(kind, next(fresh), ms) for kind in kinds])
    final = {fold(merge_transcript, list(order)) for order in itertools.permutations(files)}
    final |= all_orders(merge_transcript, files)
    assert len(final) == 1


def _appended(kind: str, n: int, ms: int) -> bytes:
    if kind == "summary":
        return summary(f"s{n}")
    return message(f"r{n}", ms if kind == "timed" else None)


# -- transcripts: examples ------------------------------------------------------------------------


def test_transcript_interleaves_by_timestamp_after_shared_prefix() -> None:
    shared = [message("a", 1), message("b", 2)]
    local = jsonl([*shared, message("l1", 3), message("l2", 6)])
    remote = jsonl([*shared, message("r1", 4), message("r2", 5)])
    expected = jsonl(
        [*shared, message("l1", 3), message("r1", 4), message("r2", 5), message("l2", 6)]
    )
    assert merge_transcript(local, remote) == expected


def test_transcript_truncated_side_gets_records_back() -> None:
    full = [message("a", 1), message("b", 2), message("c", 3)]
    rewritten = jsonl([full[0], full[2], message("d", 4)])  # Claude Code removed "b", then grew
    assert merge_transcript(jsonl(full), rewritten) == jsonl([*full, message("d", 4)])


def test_transcript_records_without_uuid_or_timestamp_stay_in_place() -> None:
    local = jsonl([message("a", 1), summary("local summary"), message("b", 3)])
    remote = jsonl([message("a", 1), message("c", 2), b"not json at all"])
    expected = [message("a", 1), summary("local summary"), message("c", 2), b"not json at all"]
    assert merge_transcript(local, remote) == jsonl([*expected, message("b", 3)])


def test_transcript_same_uuid_different_bytes_picks_one_deterministically() -> None:
    local = jsonl([message("a", 1, "short"), message("l", 2)])
    remote = jsonl([message("a", 1, "longer text"), message("r", 3)])
    merged = merge_transcript(local, remote)
    assert merged == merge_transcript(remote, local)
    assert merged.count(b'"uuid": "a"') == 1
    assert max(message("a", 1, "short"), message("a", 1, "longer text")) in merged


def test_transcript_repeated_line_is_not_collapsed() -> None:
    snapshot = b'{"type": "file-history-snapshot", "messageId": "m"}'
    local = jsonl([snapshot, message("a", 1), snapshot])
    remote = jsonl([snapshot, message("b", 2)])
    assert merge_transcript(local, remote).count(snapshot) == 2


def test_transcript_unterminated_last_line_and_empty_sides() -> None:
    assert merge_transcript(b"", b"") == b""
    assert merge_transcript(b"", b"x\n") == b"x\n"
    complete = message("a", 1) + b"\n" + message("b", 2)  # no final newline, valid JSON
    merged = merge_transcript(complete, jsonl([message("c", 3)]))
    assert merged == jsonl([message("a", 1), message("b", 2), message("c", 3)])


# -- history --------------------------------------------------------------------------------------


@PROPERTY
@given(*[history_file.map(lambda data: unfinished(data)[0])] * 3)
def test_history_properties(a: bytes, b: bytes, c: bytes) -> None:
    ab = merge_history(a, b)
    assert set(ab.splitlines()) == set(a.splitlines() + b.splitlines()) - {b""}
    assert ab == merge_history(b, a)
    assert merge_history(ab, ab) == ab
    assert len(all_orders(merge_history, [a, b, c])) == 1


@PROPERTY
@given(history_file, history_file)
def test_history_keeps_the_local_write_in_progress_at_the_end(local: bytes, remote: bytes) -> None:
    """A prompt line Claude Code is still writing here stays last, whole once finished;
    the other side's is its own, and comes with its next sync."""
    (local_done, tail), (remote_done, _) = unfinished(local), unfinished(remote)
    assert merge_history(local, remote) == merge_history(local_done, remote_done) + tail


def test_history_orders_by_numeric_timestamp() -> None:
    def entry(ms: int, text: str) -> bytes:
        return json.dumps({"display": text, "timestamp": ms, "project": "/p"}).encode()

    local = jsonl([entry(9, "a"), entry(100, "c")])  # 9 < 100 although "9" > "100" as text
    remote = jsonl([entry(9, "a"), entry(50, "b"), entry(100, "c")])
    assert merge_history(local, remote) == remote
    assert merge_history(local, jsonl([entry(100, "b")])) == jsonl(
        [entry(9, "a"), entry(100, "b"), entry(100, "c")]
    )


# -- JSON -----------------------------------------------------------------------------------------


def js(value: object) -> bytes:
    return json.dumps(value).encode()


def test_json_clean_merge_nested_and_formatted() -> None:
    base = js({"model": "a", "env": {"X": "1", "Y": "2"}, "theme": "dark"})
    local = js({"model": "b", "env": {"X": "1", "Y": "2"}, "theme": "dark"})
    remote = js({"model": "a", "env": {"X": "1", "Y": "3", "Z": "4"}, "theme": "dark"})
    merged = merge_json(base, local, remote)
    expected = {"model": "b", "env": {"X": "1", "Y": "3", "Z": "4"}, "theme": "dark"}
    assert merged == json.dumps(expected).encode()  # laid out as local is


def test_json_deletions_three_way() -> None:
    base = js({"a": 1, "b": 2, "c": 3})
    assert json.loads(
        merge_json(base, js({"a": 1, "c": 3}), js({"a": 1, "b": 2, "c": 4})) or ""
    ) == {
        "a": 1,
        "c": 4,
    }
    assert merge_json(base, js({"a": 1, "c": 3}), js({"a": 1, "b": 5, "c": 3})) is None
    assert json.loads(merge_json(base, js({"a": 1}), js({"a": 1})) or "") == {"a": 1}


def test_json_conflicts() -> None:
    base = js({"env": {"X": "1"}, "n": 1})
    assert (
        merge_json(base, js({"env": {"X": "2"}, "n": 1}), js({"env": {"X": "3"}, "n": 1})) is None
    )
    assert (
        merge_json(base, js({"env": {"X": "1"}, "n": 1.0}), js({"env": {"X": "1"}, "n": 2})) is None
    )
    assert merge_json(None, js({"a": 1}), js({"a": 2})) is None
    assert merge_json(base, b"{broken", base) is None
    assert (
        merge_json(base, base, js({"env": "flat", "n": 1}))
        == json.dumps({"env": "flat", "n": 1}).encode()
    )


def test_json_same_change_and_no_base() -> None:
    local = js({"a": 1, "b": [1, 2]})
    assert (
        merge_json(None, local, js({"b": [1, 2], "c": True}))
        == json.dumps({"a": 1, "b": [1, 2], "c": True}).encode()
    )
    assert merge_json(js({"b": []}), js({"b": [1]}), js({"b": [1]})) == b'{"b": [1]}'
    assert merge_json(js({"t": "é"}), js({"t": "ü"}), js({"t": "é"})) == '{"t": "ü"}'.encode()


# -- text -----------------------------------------------------------------------------------------

BASE = b"# Agent\n\nintro\n\nstep one\nstep two\n\noutro\n"


def test_text_clean_merge() -> None:
    local = BASE.replace(b"intro", b"new intro")
    remote = BASE.replace(b"outro", b"new outro") + b"appendix\n"
    assert merge_text(BASE, local, remote) == (
        b"# Agent\n\nnew intro\n\nstep one\nstep two\n\nnew outro\nappendix\n"
    )


def test_text_conflict_and_identical_change() -> None:
    local = BASE.replace(b"step one", b"first step")
    assert merge_text(BASE, local, BASE.replace(b"step one", b"step 1")) is None
    assert merge_text(BASE, local, local) == local
    both = local.replace(b"outro", b"end")
    assert merge_text(BASE, local, both) == both


def test_text_missing_base_and_binary() -> None:
    assert merge_text(None, b"a\n", b"b\n") is None
    assert merge_text(None, b"a\n", b"a\n") == b"a\n"
    binary_base, binary_new = b"\x89PNG\xff\x00", b"\x89PNG\xfe\x00"
    assert merge_text(binary_base, binary_base, binary_new) == binary_new
    assert merge_text(binary_base, b"\xff\x01", binary_new) is None


def test_conflict_markers_format() -> None:
    local = BASE.replace(b"step one", b"first step")
    remote = BASE.replace(b"step one", b"step 1").replace(b"outro", b"end")
    assert conflict_markers(local, remote, BASE) == (
        b"# Agent\n\nintro\n\n"
        b"<<<<<<< local\nfirst step\n||||||| base\nstep one\n=======\nstep 1\n>>>>>>> remote\n"
        b"step two\n\nend\n"
    )
    assert conflict_markers(b"a", b"b\n", None) == (
        b"<<<<<<< local\na\n=======\nb\n>>>>>>> remote\n"
    )


# -- dispatch -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("projects/-home-ann-app/0b6c.jsonl", "transcript"),
        ("projects/-home-ann-app/0b6c/subagents/agent-1.jsonl", "transcript"),
        ("history.jsonl", "history"),
        ("settings.json", "json"),
        ("agents/reviewer.md", "text"),
    ],
)
def test_merge_file_dispatch(path: str, expected: str) -> None:
    local, remote = jsonl([message("a", 1)]), jsonl([message("b", 2)])
    merged = merge_file(path, None, local, remote)
    if expected == "transcript":
        assert merged == merge_transcript(local, remote)
    elif expected == "history":
        assert merged == merge_history(local, remote)
    else:
        assert merged is None  # no base: different JSON values / texts are a conflict


def test_merge_file_equal_sides_untouched() -> None:
    unsorted = b'{"timestamp": 2}\n{"timestamp": 1}\n'
    assert merge_file("history.jsonl", None, unsorted, unsorted) == unsorted
    assert merge_file("settings.json", None, b"{ }", b"{ }") == b"{ }"
    assert merge_file("CLAUDE.md", b"x\n", b"x\ny\n", b"x\n") == b"x\ny\n"


def test_crlf_and_lf_copies_of_a_line_are_one_line() -> None:
    summary = b'{"type": "summary", "summary": "s"}'
    crlf = summary + b"\r\n" + message("a", 1) + b"\r\n"
    lf = summary + b"\n" + message("b", 2) + b"\n"
    merged = merge_transcript(crlf, lf)
    assert merged.count(summary) == 1 and merged == merge_transcript(lf, crlf)
    history = merge_history(
        b'{"display": "x", "timestamp": 1}\r\n', b'{"display": "x", "timestamp": 1}\n'
    )
    assert history.count(b'"display"') == 1


def test_an_unfinished_line_never_joins_a_record_without_newline() -> None:
    remote = b'{"type":"summary","summary":"s","leafUuid":"x"}'
    merged = merge_transcript(b"{not json", remote)
    assert merged == remote + b"\n{not json"
