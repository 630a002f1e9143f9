"""Secrets are never synced, wherever they appear under the Claude folder."""

from __future__ import annotations

import pytest

from claude_sync.resources import NEVER, TYPES, Selection, type_of, valid_logical_path


@pytest.mark.parametrize("name", sorted(NEVER))
@pytest.mark.parametrize("folder", ["", "projects/-home-ann-app/", "agents/", "skills/x/"])
def test_a_secret_is_claimed_by_no_type(folder: str, name: str) -> None:
    assert type_of(folder + name) is None
    assert not Selection(TYPES).covers(folder + name)


def test_credentials_are_on_the_never_list() -> None:
    # The top-level file is claimed by no type anyway; the list is what stops a copy inside a
    # synced folder (projects/…/.credentials.json) in both directions.
    assert ".credentials.json" in NEVER and ".claude.json" in NEVER
    assert not valid_logical_path("projects/-p/.credentials.json")


def test_paths_get_their_type_and_nothing_else() -> None:
    assert type_of("projects/-p/s.jsonl").name == "sessions"  # type: ignore[union-attr]
    assert type_of("history.jsonl").name == "history"  # type: ignore[union-attr]
    assert type_of("agents/x.md").name == "agents"  # type: ignore[union-attr]
    assert type_of("plugins/installed_plugins.json").name == "plugins"  # type: ignore[union-attr]
    for path in ("agentsx/y.md", "plugins/cache/x", "statsig/x", "projects", "settings.json/x"):
        assert type_of(path) is None, path
    for bad in ("", "/agents/x", "agents//x", "agents/./x", "agents/../x", "agents\\x", "a\x00"):
        assert not valid_logical_path(bad), bad
    assert not valid_logical_path("agents/x.claude-sync-conflict-1")
    assert not valid_logical_path("agents/.claude-sync-tmp-1")
    assert valid_logical_path("agents/x.md")


def test_a_selection_covers_its_types_paths_and_globs() -> None:
    from claude_sync.resources import select

    sel = select(["agents", "commands"], {}, include=("agents/*", "commands/*"), exclude=("*.bak",))
    assert [t.name for t in sel.types] == ["agents", "commands"]
    assert sel.covers("agents/a/b.md") and not sel.covers("agents/x.bak")
    assert not sel.covers("rules/x.md")
    narrow = select(["agents", "commands"], {}, include=("agents/*",))
    assert narrow.covers("agents/x.md") and not narrow.covers("commands/c.md")
    only = Selection(sel.types, only=("agents/a",))
    assert only.covers("agents/a") and only.covers("agents/a/x") and not only.covers("agents/ab")
    assert only.covers("commands/c", only=())
    defaults = {t.name for t in select([], {"todos": True, "history": False}).types}
    assert "todos" in defaults and "history" not in defaults and "hooks" not in defaults


def test_modes_from_the_repository_are_capped() -> None:
    from claude_sync.resources import capped_mode

    assert capped_mode("agents/x.md", 0o777) == 0o644
    assert capped_mode("agents/x.md", 0o600) == 0o600
    assert capped_mode("hooks/x.sh", 0o777) == 0o755
    assert capped_mode("hooks/x.sh", 0o4700) == 0o700
    assert capped_mode("agents/x.md", 0o7000) == 0o600  # nothing left: owner read-write
    assert capped_mode("junk/x", 0o777) == 0o644


@pytest.mark.parametrize(
    "path",
    [
        "projects/-p/s.jsonl",
        "projects/-p/s/subagents/a.jsonl",
        "projects/-p/..",
        "projects/-p/.",
        "projects/-p/x\x01y",
        "projects/-p/back\\slash",
        "projects/-p/a.claude-sync-conflict-1",
        "projects/-p/a.claude-sync-tmp-1",
        "projects/-p/settings.local.json",
        "projects//x",
        "projects/./x",
        "projects/../x",
        "projects/a\x7f/x",
        "agents/.claude.json/x",
        "plugins/installed_plugins.json",
        "plugins/other.json",
        "/agents/x",
    ],
)
def test_a_path_s_type_is_the_same_whether_its_folder_was_seen_before(path: str) -> None:
    # type_of remembers what each folder's files are: a name is still judged every time.
    valid = valid_logical_path(path)
    first = type_of(path)
    assert type_of(path) is first
    assert (first is not None) == (
        valid and (path.startswith(("projects/", "agents/")) or path.startswith("plugins/inst"))
    )
    for sibling in ("projects/-p/ok.md", "projects/-p/s/ok.md", "agents/.claude.json/ok"):
        assert type_of(sibling) is not None
        assert type_of(path) is first
