"""A push that finds the tree as the last push with nothing to send left it (same files,
same stats, same stat cache and bases) says so without looking at each file; anything that
could give a full look another answer makes it look again."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import DAY0, Machine, transcript
from engine_pair import EngineMachines
from hypothesis import given
from hypothesis import strategies as st
from test_trust import push_malicious, set_up, settings_of

from claude_sync.clean_tree import UNCLEAN, TreeWalk, unit_of
from claude_sync.engine import Engine
from claude_sync.model import FileEntry
from claude_sync.pathmap import PathMapper
from claude_sync.planner import LocalView
from claude_sync.reading import FileReader
from claude_sync.resources import FileStat, FoundFile, select
from claude_sync.state import WHOLE_TREE, CachedFile, State, StatKey

SESSION = "projects/-srv-app/s1.jsonl"
AGENT = "agents/reviewer.md"


class Machine1:
    """Machine 0 of EngineMachines (the engine in-process, an in-memory repository), with
    what these tests look at."""

    def __init__(self, tmp: Path) -> None:
        self.machines = EngineMachines(tmp)
        self.root = self.machines.root(0)
        self.root.mkdir(parents=True)
        self.state_path = self.machines.state_path(0)

    def engine(self) -> Engine:
        return self.machines.engine(0)

    def push(self) -> list[str]:
        return self.machines.run(0, "push").pushed

    def clean_tree(self) -> str | None:
        state = State(self.state_path)
        try:
            return state.clean_tree()
        finally:
            state.close()


@pytest.fixture
def machine(tmp_path: Path) -> Machine1:
    m = Machine1(tmp_path)
    (m.root / "agents").mkdir()
    (m.root / AGENT).write_text("v1\n")
    (m.root / "projects" / "-srv-app").mkdir(parents=True)
    (m.root / SESSION).write_text(transcript("s1", 3))
    return m


def test_an_unchanged_tree_is_pushed_without_reading_the_stat_cache(machine, monkeypatch):
    assert sorted(machine.push()) == [AGENT, SESSION]
    assert machine.clean_tree() is not None  # all sent: nothing left to push

    def refused(self: State) -> None:
        raise AssertionError("the stat cache was read")

    with monkeypatch.context() as m:
        m.setattr(State, "cached_files", refused)
        assert machine.push() == []
    with (machine.root / SESSION).open("a") as fh:
        fh.write(transcript("s1", 1, start=10))
    assert machine.push() == [SESSION]


@pytest.mark.parametrize(
    "change",
    ["append", "touch", "new file", "delete", "rename", "chmod", "same size rewrite"],
)
def test_any_change_to_the_tree_is_looked_at(machine, change):
    machine.push()
    machine.push()
    recorded = machine.clean_tree()
    agent = machine.root / AGENT
    if change == "append":
        with agent.open("a") as fh:
            fh.write("more\n")
    elif change == "touch":
        st = agent.stat()
        os.utime(agent, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    elif change == "new file":
        (machine.root / "agents" / "new.md").write_text("new\n")
    elif change == "delete":
        agent.unlink()
    elif change == "rename":
        agent.rename(machine.root / "agents" / "renamed.md")
    elif change == "chmod":
        agent.chmod(0o600)
    else:
        agent.write_text("v2\n")
    pushed = machine.push()
    expected = {
        "append": [AGENT],
        "touch": [],
        "new file": ["agents/new.md"],
        "delete": [AGENT],
        "rename": [AGENT, "agents/renamed.md"],
        "chmod": [],
        "same size rewrite": [AGENT],
    }[change]
    assert sorted(pushed) == sorted(expected)
    assert machine.clean_tree() != recorded


def _entry() -> FileEntry:
    return FileEntry("a" * 64, 3, 1, 0o644, (("b" * 64, 3),))


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.remember_files([("x", CachedFile(StatKey(1, 2, 3, 4), 0o644, "a" * 64, ()))]),
        lambda s: s.forget_files(["agents/reviewer.md"]),
        lambda s: s.set_bases([("x", _entry())], 1),
        lambda s: s.set_base(AGENT, None, 1),
        lambda s: s.forget_bases_after(0),
        # an older claude-sync, which knows nothing of the clean tree
        lambda s: s.db.execute("UPDATE base SET seq = 7"),
        lambda s: s.db.execute("DELETE FROM local"),
    ],
)
def test_any_write_to_the_stat_cache_or_the_bases_forgets_the_clean_tree(machine, write):
    machine.push()
    machine.push()
    assert machine.clean_tree() is not None
    state = State(machine.state_path)
    try:
        write(state)
        assert state.clean_tree() is None
    finally:
        state.close()


def test_a_state_written_before_the_clean_tree_gets_its_triggers(tmp_path):
    path = tmp_path / "state.db"
    State(path).close()
    db = sqlite3.connect(path)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute("INSERT INTO clean_units VALUES (?, 'stale')", (WHOLE_TREE,))
    db.commit()
    db.close()
    state = State(path)
    try:
        state.set_bases([(AGENT, _entry())], 1)
        assert state.clean_tree() is None
    finally:
        state.close()


def test_a_state_with_the_first_triggers_gets_those_that_run_only_when_needed(tmp_path):
    """claude-sync up to 0.2 made triggers that ran a DELETE at every row written (a fifth
    of a pull's rows' time): they are made again with their condition, and still forget."""
    path = tmp_path / "state.db"
    State(path).close()
    db = sqlite3.connect(path)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        table, op = name.split("_")[:2]
        db.execute(f"DROP TRIGGER {name}")
        db.execute(
            f"CREATE TRIGGER {name} AFTER {op.upper()} ON {table} "
            "BEGIN DELETE FROM clean_units; END;"
        )
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO clean_units VALUES (?, 'stale')", (WHOLE_TREE,))
    db.commit()
    db.close()
    state = State(path)
    try:
        made = state.db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        assert len(made) == 6 and all("WHEN EXISTS" in sql for (sql,) in made)
        state.set_bases([(AGENT, _entry())], 1)
        assert state.clean_tree() is None
    finally:
        state.close()


def test_many_rows_at_once_leave_the_triggers_as_they_were(tmp_path):
    """A first push's or a pull's thousands of rows are written with the triggers out of
    the way while there is no clean unit to forget: they are there again afterwards, also
    when the transaction fails, and with a clean unit recorded they still forget it."""
    from claude_sync.state import BULK_ROWS

    def triggers(state: State) -> list[str]:
        return sorted(
            sql
            for (sql,) in state.db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'")
        )

    cached = CachedFile(StatKey(1, 2, 3, 4), 0o644, "a" * 64, (("b" * 64, 0, 3),))
    rows = [(f"agents/{i:05d}.md", cached) for i in range(BULK_ROWS)]
    state = State(tmp_path / "state.db")
    try:
        made = triggers(state)
        with state.transaction():
            state.remember_files(rows)
            state.set_bases([(p, _entry()) for p, _ in rows], 1)
        assert triggers(state) == made and len(made) == 6
        with pytest.raises(OSError), state.transaction():
            state.set_bases([(p, None) for p, _ in rows], 2)
            raise OSError("disk gone")
        assert triggers(state) == made
        assert len(state.bases()) == BULK_ROWS
        state.set_clean_units({WHOLE_TREE: "t", "agents": "a"})
        with state.transaction():
            state.remember_files(rows)
        assert state.clean_tree() is None and state.clean_units() == {}
    finally:
        state.close()


def test_a_file_that_could_not_be_read_is_never_recorded_clean(machine, monkeypatch):
    machine.push()
    with (machine.root / AGENT).open("a") as fh:
        fh.write("more\n")

    def unreadable(self, found, path, cached, keep):  # type: ignore[no-untyped-def]
        return PermissionError(13, "Permission denied"), None

    with monkeypatch.context() as m:
        m.setattr(FileReader, "read_checked", unreadable)
        assert machine.push() == []  # nothing readable changed
    assert machine.clean_tree() is None
    assert machine.push() == [AGENT]


# -- as users run it -------------------------------------------------------------------------


def test_keeping_local_settings_after_no_op_pushes_still_sends_them(machines, repo_dir):
    """Pushes that find nothing to send (conflicts wait) record the tree; the resolve after
    them syncs one path, with a selection of its own, and must still send it."""
    a, b = machines
    set_up(a, b, repo_dir)
    push_malicious(a)
    assert b.run("pull", check=False).returncode == 3
    for _ in range(2):  # conflicts wait: exit code 3, nothing sent
        assert json.loads(b.run("push", "--json", check=False).stdout)["pushed"] == []
    b.run("resolve", "settings.json", "--take", "local")
    assert a.run("pull", check=False).returncode == 3
    a.run("resolve", "settings.json", "--take", "remote")
    assert settings_of(a) == {"model": "opus", "env": {"MINE": "1"}}


def test_a_skipped_file_is_reported_by_every_push(machines, repo_dir):
    a, _ = machines
    a.write(AGENT, "v1\n")
    (a.claude / "agents" / "gone.md").symlink_to(a.claude / "agents" / "nowhere.md")
    a.run("init", str(repo_dir))
    a.run("push", check=False)
    for _ in range(3):
        push = a.run("push", check=False)
        assert "agents/gone.md is a broken link" in push.stderr, push.stderr
        assert json.loads(a.run("push", "--json", check=False).stdout)["skipped"] == [
            "agents/gone.md"
        ]


def _status(m: Machine) -> dict[str, object]:
    return m.json("status")


def test_status_of_an_unchanged_tree_says_what_a_full_look_says(machines, repo_dir):
    a, b = machines
    a.write(AGENT, "v1\n")
    for i in range(3):  # sessions from 2020: older than any pull's window
        old = transcript(f"s{i}", 2).replace(DAY0, "2020-01-01")
        a.write(f"projects/-srv-app/s{i}.jsonl", old, mtime=1_600_000_000 + i)
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    b.run("pull")  # recent sessions only: these three stay in the repository
    first = _status(b)
    assert first["remote_only_sessions"] == 3, first
    for _ in range(2):
        assert _status(b) == first
    b.run("pull", "--all")
    after = _status(b)
    assert after["remote_only_sessions"] == 0, after
    assert _status(b) == after
    b.append(AGENT, "more\n")
    changed = _status(b)
    assert changed["pushed"] == [AGENT], changed


# -- a push after a session: only the projects that changed ----------------------------------


def _projects(machine: Machine1, n: int) -> list[str]:
    sessions = []
    for i in range(n):
        rel = f"projects/-srv-p{i}/s{i}.jsonl"
        (machine.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (machine.root / rel).write_text(transcript(f"s{i}", 2))
        sessions.append(rel)
    return sessions


def test_a_push_after_an_append_reads_only_the_changed_projects_rows(machine, monkeypatch):
    sessions = _projects(machine, 3)
    machine.push()
    machine.push()
    with (machine.root / sessions[1]).open("a") as fh:
        fh.write(transcript("s1", 1, start=5))
    asked: list[object] = []
    cached_files = State.cached_files

    def spy(self: State, under: tuple[str, ...] | None = None) -> object:
        asked.append(under)
        return cached_files(self, under)

    with monkeypatch.context() as m:
        m.setattr(State, "cached_files", spy)
        assert machine.push() == [sessions[1]]
    assert asked == [("projects/-srv-p1",)]
    # Sent whole: the tree is clean again, and the next push reads nothing.
    assert set(machine_units(machine)) == {
        WHOLE_TREE,
        "agents",
        "projects/-srv-app",
        "projects/-srv-p0",
        "projects/-srv-p1",
        "projects/-srv-p2",
    }
    with monkeypatch.context() as m:
        m.setattr(State, "cached_files", None)
        assert machine.push() == []


def test_a_push_that_leaves_a_conflict_keeps_only_the_units_it_did_not_look_at(machines, repo_dir):
    a, b = machines
    for m in (a, b):
        m.write(AGENT, "v1\n")
        m.write("commands/c.md", "c\n")
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    b.run("pull")
    for _ in range(2):
        b.run("push")
    a.write(AGENT, "from a\n")
    a.run("push")
    b.write(AGENT, "from b\n")
    assert b.run("push", check=False).returncode == 3  # a conflict: pull first
    state = State(next(b.config_dir.glob("state-*.db")))
    try:
        kept = state.clean_units()
    finally:
        state.close()
    assert kept["agents"] == UNCLEAN and WHOLE_TREE not in kept
    assert kept["commands"] != UNCLEAN
    pushed = b.json("sync", "--strategy", "local")["pushed"]
    assert pushed == [AGENT]
    assert a.json("pull")["pulled"] == [AGENT]
    assert (a.claude / AGENT).read_text() == "from b\n"


def machine_units(machine: Machine1) -> dict[str, str]:
    state = State(machine.state_path)
    try:
        return state.clean_units()
    finally:
        state.close()


def test_a_session_moved_to_another_project_is_pushed_there(machine):
    sessions = _projects(machine, 2)
    machine.push()
    machine.push()
    moved = "projects/-srv-p1/s0.jsonl"
    (machine.root / sessions[0]).rename(machine.root / moved)
    # A vanished session is Claude Code's clean-up, not a deletion to push.
    assert machine.push() == [moved]


def test_a_unit_whose_rows_a_push_touched_is_not_kept_clean(machine):
    """(A push that finishes one killed before it records bases for any path.)"""
    engine = machine.engine()
    sel = select([], {})
    walked = engine.scanner.walk(sel, [])
    clean = {"agents": "a", "projects/-srv-app": "b"}
    try:
        engine.state.touched = {AGENT}
        engine.clean_record.record(sel, LocalView(tree=walked.digest), walked, clean, set())
        assert engine.state.clean_units() == {"agents": UNCLEAN, "projects/-srv-app": "b"}
        engine.clean_record.record(sel, LocalView(), walked, clean, {"projects/-srv-app"})
        assert engine.state.clean_units() == {"agents": UNCLEAN, "projects/-srv-app": UNCLEAN}
        engine.clean_record.record(sel, LocalView(), walked, {}, set(walked.units))
        assert engine.state.clean_units() == {}  # it relied on nothing: nothing is kept
    finally:
        engine.state.close()


def test_a_unit_looked_at_then_removed_is_pushed_as_removed(machine):
    """Found by review: a push that does not end clean must not forget the units it looked
    at, or one removed afterwards is in neither the walk nor the record."""
    (machine.root / "agents" / "cfg.json").write_text('{"x": 1}\n')
    machine.push()
    machine.push()
    (machine.root / "agents" / "cfg.json").write_text('{"x": ')  # caught half-written
    assert machine.push() == []
    assert machine_units(machine)["agents"] == UNCLEAN
    shutil.rmtree(machine.root / "agents")
    with (machine.root / SESSION).open("a") as fh:
        fh.write(transcript("s1", 1, start=10))
    assert sorted(machine.push()) == sorted([AGENT, "agents/cfg.json", SESSION])
    assert machine.push() == []


def test_a_push_narrowed_to_a_project_covers_its_aliases(machine):
    """Two folders here with the same logical paths (the home's folder under another drive
    letter case, or a WSL user's Windows home) are looked at together."""
    engine = machine.engine()
    try:
        engine.mapper = PathMapper("/home/ann", home_aliases=["/mnt/c/Users/ann"])
        home, alias = "projects/-home-ann-app", "projects/-mnt-c-Users-ann-app"
        units = {home, alias, "projects/-srv-app", "agents"}
        assert engine.clean_record.with_aliases({home}, units) == {home, alias}
        assert engine.clean_record.with_aliases({"agents"}, units) == {"agents"}
    finally:
        engine.state.close()


def test_a_changed_setting_makes_a_full_look(machine):
    """Every unit's digest holds the setting: when none matches, nothing recorded is relied
    on (a type enabled since could cover paths no unit holds)."""
    machine.push()
    machine.push()
    engine = machine.engine()
    try:
        sel = select(["agents"], {})  # another selection: no digest matches
        walked = engine.scanner.walk(sel, [])
        assert not walked.units.items() & engine.state.clean_units().items()
    finally:
        engine.state.close()


# -- the digests -----------------------------------------------------------------------------

NAMES = st.sampled_from(
    [
        *("projects/-a/s.jsonl", "projects/-a-b/s.jsonl", "projects/-a/x/y.jsonl"),
        *("projects/f.txt", "agents/r.md", "agents/sub/r.md", "settings.json"),
        *("settings.json.bak", "CLAUDE.md"),
    ]
)


@given(st.lists(st.tuples(NAMES, st.integers(0, 3)), max_size=30))
def test_each_unit_digests_its_files_wherever_the_walk_lists_them(files):
    """The digest of a unit is that of its files in walk order, even when a walk lists a
    unit's files apart (the walk does not, but the digest must not rely on it)."""
    found = [FoundFile(p, "/x", FileStat(n, n, n, n, 0o644)) for p, n in files]
    walk = TreeWalk.of("s", found, [])
    for unit in {unit_of(p) for p, _ in files}:
        mine = [f for f in found if unit_of(f.local_path) == unit]
        assert walk.units[unit] == TreeWalk.of("s", mine, []).units[unit]
    assert set(walk.units) == {unit_of(p) for p, _ in files}
    assert TreeWalk.of("t", found, []).digest != walk.digest  # the setting counts


@given(st.lists(st.tuples(NAMES, st.integers(0, 3)), max_size=30), st.data())
def test_a_walk_narrowed_to_some_units_keeps_their_files_in_walk_order(files, data):
    found = [FoundFile(p, "/x", FileStat(n, n, n, n, 0o644)) for p, n in files]
    units = sorted({unit_of(p) for p, _ in files})
    keep = data.draw(st.sets(st.sampled_from(units)) if units else st.just(set()))
    narrowed = TreeWalk.of("s", list(found), []).narrowed(keep)
    assert narrowed.found == [f for f in found if unit_of(f.local_path) in keep]
