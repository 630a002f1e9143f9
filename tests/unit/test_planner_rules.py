"""The planner's decisions that guard against data loss, one rule a test."""

from __future__ import annotations

import pytest

from claude_sync.planner import LocalFile, LocalView, plan_pull, plan_push
from claude_sync.repository import FileEntry, Snapshot
from claude_sync.state import CachedFile, StatKey

AGENT = "agents/x.md"


def entry(sha: str) -> FileEntry:
    return FileEntry(sha, 1, 0, 0o644, ())


def head(files: dict[str, str]) -> Snapshot:
    return Snapshot(2, 1, "other", 0.0, {p: entry(s) for p, s in files.items()})


def local(sha: str) -> LocalFile:
    return LocalFile(AGENT, "/x", AGENT, CachedFile(StatKey(1, 0, 0, 0), 0o644, sha, ()))


def test_a_deletion_here_does_not_win_over_an_edit_there() -> None:
    """Deleted here, edited on another machine since the last sync: the push must not
    remove the edited file from the repository; the pull reports the conflict instead."""
    bases, remote = {AGENT: entry("base")}, head({AGENT: "edited"})
    push = plan_push(LocalView(), bases, remote, lambda p: True)
    assert push.remove == [] and push.upload == {}
    pull = plan_pull(LocalView(), bases, remote, lambda p: True, "ask", lambda p, s: False)
    assert [c.path for c in pull.conflicts] == [AGENT] and pull.delete == []


def test_a_deletion_of_an_unchanged_file_is_pushed() -> None:
    push = plan_push(LocalView(), {AGENT: entry("a")}, head({AGENT: "a"}), lambda p: True)
    assert push.remove == [AGENT]


def test_an_edit_here_against_a_deletion_there_keeps_the_edit() -> None:
    view = LocalView({AGENT: local("edited")})
    pull = plan_pull(view, {AGENT: entry("a")}, head({}), lambda p: True, "ask", lambda p, s: 0)
    assert pull.delete == [] and [c.path for c in pull.conflicts] == [AGENT]


# -- whole plans: several paths at once, each strategy, what a conflict records -------------

SESSION = "projects/-p/s.jsonl"
EARLY = "agents/a.md"  # sorts before AGENT: a decision on it must not end the loop


def view(files: dict[str, str], unknown: set[str] | None = None) -> LocalView:
    found = {
        p: LocalFile(p, "/x", p, CachedFile(StatKey(1, 5, 0, 0), 0o644, s, ()))
        for p, s in files.items()
    }
    return LocalView(found, unknown or set())


def bases(files: dict[str, str]) -> dict[str, FileEntry]:
    return {p: entry(s) for p, s in files.items()}


def everything(path: str) -> bool:
    return True


def pull(local: LocalView, base: dict[str, str], remote: dict[str, str], strategy: str = "ask"):  # type: ignore[no-untyped-def]
    return plan_pull(local, bases(base), head(remote), everything, strategy, lambda p, s: False)


def test_push_decides_every_path_whatever_comes_before() -> None:
    local = view({EARLY: "same", AGENT: "new", "commands/c.md": "mine"})
    base = {EARLY: "same", AGENT: "old", "commands/c.md": "old", "rules/r.md": "old"}
    remote = {EARLY: "same", AGENT: "old", "commands/c.md": "mine", "rules/r.md": "old"}
    plan = plan_push(local, bases(base), head(remote), everything)
    assert plan.upload == {AGENT: local.files[AGENT]}
    assert plan.adopt == {"commands/c.md": entry("mine")}
    assert plan.remove == ["rules/r.md"]


def test_push_leaves_out_what_the_selection_does_not_cover() -> None:
    local = view({AGENT: "new", "commands/c.md": "new"})
    plan = plan_push(local, {}, head({}), lambda p: p == AGENT)
    assert list(plan.upload) == [AGENT]
    assert plan_push(view({"junk/x": "new", AGENT: "n"}), {}, None, everything).upload.keys() == {
        AGENT
    }


def test_a_push_conflict_records_both_sides() -> None:
    plan = plan_push(
        view({AGENT: "mine"}), bases({AGENT: "old"}), head({AGENT: "theirs"}), everything
    )
    [found] = plan.conflicts
    assert found.to_json() == {
        "path": AGENT,
        "local_sha256": "mine",
        "remote_sha256": "theirs",
        "base_sha256": "old",
        "remote_device": "other",
        "remote_seq": 2,
        "remote_time": 0.0,
        "local_mtime_ns": 5,
        "copy": None,
        "held": None,
        "keys": None,
    }


def test_pull_decides_every_path_whatever_comes_before() -> None:
    local = view({EARLY: "same", AGENT: "old", "commands/c.md": "theirs", SESSION: "mine"})
    base = {EARLY: "same", AGENT: "old", "commands/c.md": "old", SESSION: "old", "rules/r.md": "x"}
    remote = {EARLY: "same", AGENT: "new", "commands/c.md": "theirs", SESSION: "new"}
    plan = pull(local, base, remote)
    assert plan.write == {AGENT: entry("new")}
    assert plan.adopt == {"commands/c.md": entry("theirs"), "rules/r.md": None}
    assert plan.merges == {SESSION: (local.files[SESSION], entry("old"), entry("new"))}
    assert plan.strategy == "ask" and plan.head is not None


def test_pull_skips_unknown_paths_and_adopts_a_vanished_session_deleted_there() -> None:
    plan = pull(view({}, unknown={EARLY}), {EARLY: "a", SESSION: "a"}, {EARLY: "b"})
    assert plan.skipped == [EARLY] and plan.adopt == {SESSION: None}
    assert LocalView(set(), {"b"}, {"a"}).skipped() == ["a", "b"]  # type: ignore[arg-type]


def test_a_session_cleaned_up_here_and_continued_elsewhere_comes_back_whole() -> None:
    """Claude Code deleted the session here; another machine continued it: its sub-agents
    and tool results, unchanged there, come back with the transcript. Another session
    cleaned up here, and the project's memory, stay as they are."""
    sub, result = "projects/-p/s/subagents/agent-1.jsonl", "projects/-p/s/tool-results/r.txt"
    other, memory = "projects/-p/t.jsonl", "projects/-p/memory/MEMORY.md"
    base = {SESSION: "a", sub: "a", result: "a", other: "a", memory: "a"}
    plan = pull(view({}), base, {**base, SESSION: "grown"})
    assert sorted(plan.write) == sorted([SESSION, sub, result])
    # The same when only a sub-agent grew there.
    plan = pull(view({}), base, {**base, sub: "grown"})
    assert sorted(plan.write) == sorted([SESSION, sub, result])
    # A file of it that cannot be read here is not written over.
    plan = pull(view({}, unknown={result}), base, {**base, SESSION: "grown"})
    assert sorted(plan.write) == sorted([SESSION, sub])


def test_pull_merges_a_new_file_on_both_sides_unless_this_one_was_synced_before() -> None:
    plan = pull(view({AGENT: "mine"}), {}, {AGENT: "theirs"})
    assert plan.merges == {AGENT: (view({AGENT: "mine"}).files[AGENT], None, entry("theirs"))}
    synced = plan_pull(
        view({AGENT: "mine"}),
        bases({AGENT: "b"}),
        head({AGENT: "theirs"}),
        everything,
        "ask",
        lambda p, s: True,
    )
    assert AGENT in synced.merges  # with a base, an edit here is an edit, not a lost state


@pytest.mark.parametrize(
    ("strategy", "ours", "theirs", "expected"),
    [
        # deleted here, edited there
        ("ask", None, "t", {"conflicts": [AGENT]}),
        ("local", None, "t", {"adopt": {AGENT: "t"}}),
        ("remote", None, "t", {"write": {AGENT: "t"}}),
        ("both", None, "t", {"write": {AGENT: "t"}}),
        # edited here, deleted there
        ("ask", "m", None, {"conflicts": [AGENT]}),
        ("local", "m", None, {"adopt": {AGENT: None}}),
        ("remote", "m", None, {"delete": [AGENT]}),
        ("both", "m", None, {"adopt": {AGENT: None}}),
    ],
)
def test_a_deletion_conflict_is_settled_as_the_strategy_says(
    strategy: str, ours: str | None, theirs: str | None, expected: dict[str, object]
) -> None:
    plan = pull(
        view({AGENT: ours} if ours else {}),
        {AGENT: "b"},
        {AGENT: theirs} if theirs else {},
        strategy,
    )
    found = {
        "conflicts": [c.path for c in plan.conflicts],
        "adopt": {p: e and e.sha256 for p, e in plan.adopt.items()},
        "write": {p: e.sha256 for p, e in plan.write.items()},
        "delete": plan.delete,
    }
    assert {k: v for k, v in found.items() if v} == expected
    assert not plan.copies
    if plan.conflicts:
        assert plan.conflicts[0].local_sha256 == ours and plan.conflicts[0].remote_sha256 == theirs


def test_a_settled_edit_conflict_keeps_both_versions() -> None:
    from claude_sync.planner import Plan, settle_conflict

    ours = view({AGENT: "m"}).files[AGENT]
    for strategy, adopt, conflicts in (("ask", {}, [AGENT]), ("both", {AGENT: entry("t")}, [])):
        plan = Plan(head({AGENT: "t"}), strategy=strategy)
        settle_conflict(plan, AGENT, ours, entry("b"), entry("t"))
        assert plan.copies == {AGENT: entry("t")} and plan.adopt == adopt
        assert [c.path for c in plan.conflicts] == conflicts


def test_has_local_changes_sees_edits_and_deletions_but_not_vanished_sessions() -> None:
    from claude_sync.planner import has_local_changes

    assert not has_local_changes(view({AGENT: "a"}), {AGENT: "a"}, everything)
    assert has_local_changes(view({EARLY: "a", AGENT: "b"}), {EARLY: "a", AGENT: "a"}, everything)
    assert not has_local_changes(view({AGENT: "b"}), {AGENT: "a"}, lambda p: False)
    assert has_local_changes(view({}), {EARLY: "a"}, everything)
    assert not has_local_changes(view({}), {SESSION: "a"}, everything)
    assert not has_local_changes(view({}, unknown={EARLY}), {EARLY: "a"}, everything)
    assert has_local_changes(view({}), {SESSION: "a", EARLY: "a"}, everything)


def test_paths_outside_the_selection_or_any_type_do_not_end_the_plan() -> None:
    local = view({"Junk/x": "n", AGENT: "n", "commands/c.md": "n"})
    plan = plan_push(local, {}, None, lambda p: p != AGENT)
    assert list(plan.upload) == ["commands/c.md"]


def test_a_vanished_session_does_not_end_the_push() -> None:
    local = view({"rules/r.md": "new"})
    remote = head({"rules/r.md": "a"})
    plan = plan_push(local, bases({SESSION: "a", "rules/r.md": "a"}), remote, everything)
    assert list(plan.upload) == ["rules/r.md"] and plan.remove == []


def test_no_head_means_nothing_to_pull() -> None:
    plan = plan_pull(view({AGENT: "a"}), {}, None, everything, "ask", lambda p, s: False)
    assert plan.write == {} and plan.merges == {} and plan.head is None


def test_a_session_deleted_there_is_kept_here_and_its_base_forgotten() -> None:
    unchanged = pull(view({SESSION: "a"}), {SESSION: "a"}, {})
    assert unchanged.adopt == {SESSION: None} and unchanged.delete == []
    assert unchanged.adopt[SESSION] is None
    grown = pull(view({SESSION: "more"}), {SESSION: "a"}, {})
    assert grown.adopt[SESSION] is None and grown.delete == [] and not grown.conflicts


def test_whether_an_old_version_was_synced_is_asked_of_its_own_path() -> None:
    asked: list[tuple[str, str]] = []

    def was_synced(path: str, sha: str) -> bool:
        asked.append((path, sha))
        return True

    plan = plan_pull(view({AGENT: "old"}), {}, head({AGENT: "new"}), everything, "ask", was_synced)
    assert asked == [(AGENT, "old")] and plan.write == {AGENT: entry("new")}


def test_a_deletion_conflict_records_its_base_and_the_remote_head() -> None:
    plan = pull(view({}), {AGENT: "b"}, {AGENT: "t"})
    [found] = plan.conflicts
    assert (found.base_sha256, found.remote_device, found.remote_seq) == ("b", "other", 2)


def test_a_conflict_with_no_remote_head_records_an_empty_remote() -> None:
    # This machine has bases but the repository has no snapshot (replaced, or pruned away).
    plan = plan_push(view({AGENT: "mine"}), bases({AGENT: "old"}), None, everything)
    [found] = plan.conflicts
    assert (found.remote_device, found.remote_seq, found.remote_time) == ("", 0, 0.0)
    timed = Snapshot(4, 3, "laptop", 12.5, {AGENT: entry("theirs")})
    [found] = plan_push(view({AGENT: "mine"}), bases({AGENT: "old"}), timed, everything).conflicts
    assert (found.remote_device, found.remote_seq, found.remote_time) == ("laptop", 4, 12.5)


def test_a_new_file_where_the_head_has_a_folder_of_that_name_clashes() -> None:
    """Pushed, the repository would hold skills/foo and skills/foo/SKILL.md, and neither
    machine could write the other's."""
    from claude_sync.planner import shape_clashes

    theirs = {"skills/foo/SKILL.md": "a", "agents/a.md": "a"}  # not pulled here yet
    here = view({"skills/foo": "mine", "agents/a.md/x.md": "mine", "agents/b.md": "new"})
    plan = plan_push(here, {}, head(theirs), everything)
    assert shape_clashes(plan) == {
        "skills/foo": "skills/foo/SKILL.md",
        "agents/a.md/x.md": "agents/a.md",
    }
    # Once the other side's files are removed by the same push, nothing clashes.
    here = view({"skills/foo": "mine"})
    plan = plan_push(
        here, bases({"skills/foo/SKILL.md": "a"}), head({"skills/foo/SKILL.md": "a"}), everything
    )
    assert plan.remove == ["skills/foo/SKILL.md"] and shape_clashes(plan) == {}
