"""settings.json of two machines that first meet (no common base) merges key by key: keys on
one side only are kept, only keys changed differently on both sides conflict, and `resolve`
settles just those keys. Two machines are two HOMEs running the real CLI."""

from __future__ import annotations

import json
from typing import Any

import pexpect
from conftest import Machine
from hypothesis import example, given, settings
from hypothesis import strategies as st

from claude_sync.merge import merge_json, merge_json_keys

HOOKS = {"PostToolUse": [{"hooks": [{"type": "command", "command": "make lint"}]}]}


def settings_of(m: Machine) -> dict[str, Any]:
    return json.loads((m.claude / "settings.json").read_text())


def first_meeting(a: Machine, b: Machine, repo_dir: object) -> Any:
    """a is set up first; b's first `init --sync` meets a's settings.json (no base)."""
    a.write(
        "settings.json",
        json.dumps({"model": "opus", "hooks": HOOKS, "permissions": {"allow": ["Bash(ls)"]}}),
    )
    a.run("init", str(repo_dir), "--sync")
    b.write(
        "settings.json",
        json.dumps(
            {"model": "sonnet", "cleanupPeriodDays": 60, "permissions": {"allow": ["Read"]}}
        ),
    )
    return b.run("init", str(repo_dir), "--sync", check=False)


def test_first_sync_conflicts_on_the_differing_keys_only(machines, repo_dir):
    a, b = machines
    first = first_meeting(a, b, repo_dir)
    assert first.returncode == 3, first.stderr
    # The conflict names the key both machines set differently, and only that one.
    assert "settings.json: model changed here and on" in first.stderr
    assert "cleanupPeriodDays" not in first.stderr
    # The hooks from a still wait for consent.
    assert "hooks" in first.stderr and "held back" in first.stderr
    mine = settings_of(b)
    assert mine["model"] == "sonnet"  # undecided: this machine's value stays meanwhile
    assert mine["cleanupPeriodDays"] == 60
    assert mine["permissions"]["allow"] == ["Read"]  # guarded: a's entries wait
    assert "hooks" not in mine
    listed = b.run("conflicts").stdout
    assert "model changed here" in listed and "hooks" in listed

    # A second sync before resolving changes nothing and loses nothing.
    again = b.run("sync", check=False)
    assert again.returncode == 3, again.stderr
    assert settings_of(b) == mine

    resolved = b.run("resolve", "settings.json", "--take", "remote")
    assert "conflict" not in resolved.stderr
    taken = settings_of(b)
    assert taken["model"] == "opus"
    assert taken["cleanupPeriodDays"] == 60  # only here: kept
    assert taken["hooks"] == HOOKS  # taking the remote is consent to its hooks
    assert taken["permissions"]["allow"] == ["Read", "Bash(ls)"]  # both only added: union
    assert b.run("conflicts").stdout.strip() == "No unresolved conflicts."

    # The resolve pushed the merge: a gets b's own key; b's added permission is a guarded
    # change for a, held back there in turn.
    back = a.run("sync", check=False)
    assert back.returncode == 3 and "(permissions)" in back.stderr, back.stderr
    theirs = settings_of(a)
    assert theirs["model"] == "opus"
    assert theirs["cleanupPeriodDays"] == 60
    assert theirs["hooks"] == HOOKS
    assert theirs["permissions"]["allow"] == ["Bash(ls)"]


def test_prompt_answer_settles_the_differing_keys_only(machines, repo_dir):
    """On a terminal, answering [r]emote to the conflict takes the remote value of the keys
    it names, not the remote file."""
    a, b = machines
    a.write("settings.json", json.dumps({"model": "opus", "theme": "dark"}))
    a.run("init", str(repo_dir), "--sync")
    b.write("settings.json", json.dumps({"model": "sonnet", "cleanupPeriodDays": 60}))
    b.run("init", str(repo_dir))
    child = b.on_terminal("sync")
    child.expect(r"settings\.json: model changed here")
    child.expect(r"\[s\]kip")
    child.sendline("r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert settings_of(b) == {"model": "opus", "cleanupPeriodDays": 60, "theme": "dark"}


def test_take_local_keeps_the_remote_only_keys(machines, repo_dir):
    a, b = machines
    a.write("settings.json", json.dumps({"model": "opus", "theme": "dark"}))
    a.run("init", str(repo_dir), "--sync")
    b.write("settings.json", json.dumps({"model": "sonnet", "cleanupPeriodDays": 60}))
    first = b.run("init", str(repo_dir), "--sync", check=False)
    assert first.returncode == 3, first.stderr
    assert "settings.json: model changed here" in first.stderr
    assert settings_of(b) == {"model": "sonnet", "cleanupPeriodDays": 60, "theme": "dark"}

    b.run("resolve", "settings.json", "--take", "local")
    assert settings_of(b) == {"model": "sonnet", "cleanupPeriodDays": 60, "theme": "dark"}
    a.run("sync")
    assert settings_of(a) == {"model": "sonnet", "theme": "dark", "cleanupPeriodDays": 60}


def test_first_sync_unites_lists_both_sides_added_to(machines, repo_dir):
    a, b = machines
    a.write("settings.json", json.dumps({"model": "opus", "companyAnnouncements": ["a"]}))
    a.run("init", str(repo_dir), "--sync")
    b.write("settings.json", json.dumps({"companyAnnouncements": ["b"], "cleanupPeriodDays": 9}))
    b.run("init", str(repo_dir), "--sync")
    united = {"companyAnnouncements": ["b", "a"], "cleanupPeriodDays": 9, "model": "opus"}
    assert settings_of(b) == united
    a.run("sync")
    assert settings_of(a) == united


# -- the pure merge ---------------------------------------------------------------------------

_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b", "c"])
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3)
    ),
    max_leaves=8,
)
_documents = st.dictionaries(st.sampled_from(["model", "env", "hooks", "p", "q"]), _values)


def _paths(value: Any, at: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every key path of a JSON object, recursively into nested objects."""
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, inner in value.items():
        found.add((*at, key))
        found |= _paths(inner, (*at, key))
    return found


def _get(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@settings(max_examples=300, print_blob=True)
@given(local=_documents, remote=_documents, prefer=st.sampled_from(["local", "remote"]))
@example(
    local={"model": "sonnet", "p": 60, "env": {"x": ["a"]}},
    remote={"model": "opus", "hooks": {}, "env": {"x": ["b"]}},
    prefer="remote",
)
def test_first_merge_keeps_every_key_of_both_sides(local, remote, prefer):
    """No base: every key path of either side is in the result; a key on one side only (or
    the same on both) keeps its value; only keys differing on both sides are named."""
    merged = merge_json_keys(None, json.dumps(local).encode(), json.dumps(remote).encode(), prefer)
    assert merged is not None
    data, conflicts = merged
    result = json.loads(data)
    named = {tuple(name.split(".")) for name in conflicts}
    # Below a key both sides set differently (an object here, a number there) only the
    # preferred side's keys can be: every other key of either side is kept.
    below = {p for p in _paths(local) | _paths(remote) if any(p[: len(c)] == c for c in named)}
    assert {(k,) for k in [*local, *remote]} <= _paths(result)
    assert (_paths(local) | _paths(remote)) - below | named <= _paths(result)
    for side, other in ((local, remote), (remote, local)):
        for path in _paths(side) - below:
            here = _get(side, path)
            try:
                there = _get(other, path)
            except (KeyError, TypeError):
                assert _get(result, path) == here, path
                continue
            if json.dumps(here, sort_keys=True) == json.dumps(there, sort_keys=True):
                assert _get(result, path) == here, path
    for name in conflicts:
        path = tuple(name.split("."))
        expected = _get(remote if prefer == "remote" else local, path)
        assert _get(result, path) == expected, name
    plain = merge_json(None, json.dumps(local).encode(), json.dumps(remote).encode())
    assert (plain is None) == bool(conflicts)
    if plain is not None:
        assert plain == data
