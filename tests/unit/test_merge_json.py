"""Three-way merges of JSON files: settings key by key, MCP servers entry by entry, lists to
which both machines only added rules, and the keys named when both sides changed one."""

from __future__ import annotations

import json

import pytest

from claude_sync.merge import (
    MCP_SERVERS,
    merge_entries,
    merge_file,
    merge_json,
    merge_json_keys,
    merge_keys,
)


def js(value: object) -> bytes:
    return json.dumps(value).encode()


def dumped(value: object) -> bytes:
    """A merge as written: laid out as the local side (js: one line)."""
    return json.dumps(value, ensure_ascii=False).encode()


def test_rules_added_on_both_sides_are_all_kept() -> None:
    base = js({"permissions": {"allow": ["Bash(ls)"]}})
    local = js({"permissions": {"allow": ["Bash(ls)", "Read"]}})
    remote = js({"permissions": {"allow": ["Bash(ls)", "Write", "Write", "Read"]}})
    # local's list, then remote's new entries once each, in remote's order
    expected = {"permissions": {"allow": ["Bash(ls)", "Read", "Write"]}}
    assert merge_json(base, local, remote) == dumped(expected)


def test_a_list_new_on_both_sides_is_a_union() -> None:
    base = js({"model": "a"})
    local = js({"model": "a", "allow": ["Read"]})
    remote = js({"model": "a", "allow": ["Write"]})
    assert merge_json(base, local, remote) == dumped({"model": "a", "allow": ["Read", "Write"]})
    assert merge_json(None, js({"allow": ["Read"]}), js({"allow": ["Write"]})) == dumped(
        {"allow": ["Read", "Write"]}
    )


@pytest.mark.parametrize(
    ("local", "remote"),
    [(["a"], ["a", "b", "c"]), (["a", "b", "c"], ["a"])],
    ids=["removed-here", "removed-there"],
)
def test_a_rule_removed_on_one_side_while_the_other_adds_is_a_conflict(
    local: list[str], remote: list[str]
) -> None:
    base = js({"allow": ["a", "b"]})
    assert merge_json(base, js({"allow": local}), js({"allow": remote})) is None


@pytest.mark.parametrize(
    ("local", "remote", "merged"),
    [
        (["b", "a"], ["a", "b", "c"], ["b", "a", "c"]),
        (["a", "b", "c"], ["b", "a"], ["a", "b", "c"]),
    ],
    ids=["reordered-here", "reordered-there"],
)
def test_a_list_reordered_on_one_side_and_added_to_on_the_other_keeps_both(
    local: list[str], remote: list[str], merged: list[str]
) -> None:
    base = js({"allow": ["a", "b"]})
    assert merge_json(base, js({"allow": local}), js({"allow": remote})) == dumped(
        {"allow": merged}
    )


def test_an_object_new_on_both_sides_merges_key_by_key() -> None:
    local = js({"env": {"X": "1"}})
    remote = js({"env": {"Y": "2"}})
    assert merge_json(js({}), local, remote) == dumped({"env": {"X": "1", "Y": "2"}})


def test_keys_only_reordered_are_unchanged() -> None:
    base = js({"env": {"X": "1", "Y": "2"}})
    local = js({"env": {"Y": "2", "X": "1"}})  # an editor rewrote the file in another order
    remote = js({"env": {"X": "1", "Y": "3"}})
    assert merge_json(base, local, remote) == dumped({"env": {"X": "1", "Y": "3"}})


CONFLICTING = (
    js({"env": {"X": "1", "Z": "0"}, "model": "a", "gone": 1}),
    js({"env": {"X": "2", "Z": "0"}, "model": "b", "gone": 2}),
    js({"env": {"X": "3", "Z": "0"}, "model": "c"}),
)


@pytest.mark.parametrize(
    ("prefer", "expected"),
    [
        ("local", {"env": {"X": "2", "Z": "0"}, "model": "b", "gone": 2}),
        ("remote", {"env": {"X": "3", "Z": "0"}, "model": "c"}),
    ],
)
def test_conflicting_keys_take_the_preferred_side_and_are_named(
    prefer: str, expected: dict[str, object]
) -> None:
    base, local, remote = CONFLICTING
    assert merge_json(base, local, remote) is None
    result = merge_json_keys(base, local, remote, prefer)
    # "gone" changed here and deleted there: one conflict, named once
    assert result == (dumped(expected), ["env.X", "gone", "model"])
    assert merge_keys("settings.json", base, local, remote, prefer) == result


def test_a_key_deleted_here_and_changed_there_is_named_once() -> None:
    base = js({"a": 1, "b": 1})
    result = merge_json_keys(base, js({"b": 1}), js({"a": 2, "b": 1}), "remote")
    # (the merge is the remote version: its own text, key order and all)
    assert result == (js({"a": 2, "b": 1}), ["a"])
    assert merge_json_keys(None, js({"a": 1}), js({"b": 2})) == (dumped({"a": 1, "b": 2}), [])


def test_only_json_objects_merge_by_keys() -> None:
    base, local, remote = CONFLICTING
    for path in ("history.jsonl", "agents/x.md", "projects/-p/s.jsonl", MCP_SERVERS):
        assert merge_keys(path, base, local, remote, "local") is None
    assert merge_json_keys(base, js([1]), remote) is None
    assert merge_json_keys(base, b"{broken", remote) is None


def test_mcp_servers_new_on_both_first_syncs_are_kept() -> None:
    merged = merge_file(MCP_SERVERS, None, js({"a": {"cmd": "x"}}), js({"b": {"cmd": "y"}}))
    assert merged == dumped({"a": {"cmd": "x"}, "b": {"cmd": "y"}})
    assert merge_file(MCP_SERVERS, None, js({"a": 1}), b"[]") is None
    assert merge_file(MCP_SERVERS, None, js({"a": 1}), b"{broken") is None


SERVER = {"cmd": "x", "args": ["-v"]}


@pytest.mark.parametrize(
    ("base", "local", "remote", "merged", "conflicts"),
    [
        # removed on one side, untouched on the other: stays removed
        ({"s": SERVER}, {}, {"s": SERVER}, {}, []),
        ({"s": SERVER}, {"s": SERVER}, {}, {}, []),
        # removed here, changed there (and the other way round): a conflict, named once
        ({"s": SERVER}, {}, {"s": {"cmd": "y"}}, {}, ["s"]),
        ({"s": SERVER}, {"s": {"cmd": "y"}}, {}, {"s": {"cmd": "y"}}, ["s"]),
        # null is a value like any other, not a missing entry
        ({"s": SERVER}, {"s": SERVER}, {"s": None}, {"s": None}, []),
        ({"s": None}, {"s": None}, {"s": SERVER}, {"s": SERVER}, []),
        ({"s": SERVER}, {"s": {"cmd": "y"}}, {"s": None}, {"s": {"cmd": "y"}}, ["s"]),
        ({"s": SERVER}, {"s": None}, {"s": {"cmd": "y"}}, {"s": None}, ["s"]),
        # the same server with its settings listed in another order is unchanged
        (
            {"s": SERVER},
            {"s": {"args": ["-v"], "cmd": "x"}},
            {"s": {"cmd": "y"}},
            {"s": {"cmd": "y"}},
            [],
        ),
    ],
)
def test_mcp_servers_merge_entry_by_entry_whole(
    base: dict[str, object],
    local: dict[str, object],
    remote: dict[str, object],
    merged: dict[str, object],
    conflicts: list[str],
) -> None:
    assert merge_entries(base, local, remote) == (merged, conflicts)


@pytest.mark.parametrize(
    ("local", "merged"),
    [
        (b'{"model":"a"}', b'{"model":"a","effort":"high"}'),
        (b'{"model": "a"}\n', b'{"model": "a", "effort": "high"}\n'),
        (b'{\n    "model": "a"\n}\n', b'{\n    "model": "a",\n    "effort": "high"\n}\n'),
        (b'{\n\t"model": "a"\n}', b'{\n\t"model": "a",\n\t"effort": "high"\n}'),
    ],
)
def test_a_merge_keeps_the_local_layout(local: bytes, merged: bytes) -> None:
    """A compact or four-space settings.json came back two-space indented from a merge."""
    assert merge_json(b"{}", local, js({"effort": "high"})) == merged


def test_a_merge_that_is_the_remote_version_is_its_text():
    """A held settings.json taken with `resolve --take remote` was merged into the local
    key order and pushed back: a change to every machine that changed nothing."""
    remote = b'{\n    "model": "opus",\n    "env": {"X": "1"}\n}\n'
    assert merge_json(b"{}", b'{"env": {"X": "1"}}', remote) == remote
