"""The planner is a pure function: table tests of its decisions, and a randomized model check
of three machines syncing through it (the real engine, in-process, on real folders).

The model check runs a short setting here; a long one with
`CLAUDE_SYNC_MODEL_EXAMPLES=300 bash scripts/test.sh tests/test_planner.py`. A failure prints
the seed to reproduce it (`CLAUDE_SYNC_MODEL_SEED`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from memory_store import MemoryStore, TaggedMemoryStore

from claude_sync.downloads import Downloads
from claude_sync.engine import Engine
from claude_sync.planner import (
    LocalFile,
    LocalView,
    has_local_changes,
    plan_pull,
    plan_push,
)
from claude_sync.repository import FileEntry, Repository, Snapshot
from claude_sync.resources import CONFLICT_MARKER, Selection, select
from claude_sync.state import WHOLE_TREE, Bases, CachedFile, State, StatKey

AGENT = "agents/x.md"
COMMAND = "commands/k.md"
SESSION = "projects/-p/s.jsonl"


def entry(sha: str) -> FileEntry:
    return FileEntry(sha, 1, 0, 0o644, ())


def local(sha: str, path: str = AGENT) -> LocalFile:
    return LocalFile(path, "/x", path, CachedFile(StatKey(1, 0, 0, 0), 0o644, sha, ()))


def head(files: dict[str, str | None]) -> Snapshot:
    entries = {path: entry(sha) for path, sha in files.items() if sha is not None}
    return Snapshot(2, 1, "other", 0.0, entries)


def everything(path: str) -> bool:
    return True


def never_synced(path: str, sha: str) -> bool:
    return False


# (ours, base, theirs) for agents/x.md -> what push and pull plan for it
PUSH_TABLE = [
    ("a", "a", "a", set()),
    ("b", "a", "a", {"upload"}),
    (None, "a", "a", {"remove"}),
    ("b", "a", "b", {"adopt"}),
    ("b", "a", "c", {"conflict"}),
    (None, "a", "c", {"conflict"}),  # deleted here, changed there: as the pull says
    ("b", None, None, {"upload"}),
]
PULL_TABLE = [
    ("a", "a", "a", set()),
    ("a", "a", "b", {"write"}),
    ("a", "a", None, {"delete"}),
    ("b", "a", "b", {"adopt"}),
    ("b", "a", "c", {"merge"}),
    (None, "a", "c", {"conflict"}),
    (None, None, "c", {"write"}),
]


def kinds(plan) -> set[str]:  # type: ignore[no-untyped-def]
    found = {
        "upload": bool(plan.upload),
        "remove": bool(plan.remove),
        "adopt": bool(plan.adopt),
        "write": bool(plan.write),
        "delete": bool(plan.delete),
        "merge": bool(plan.merges),
        "conflict": bool(plan.conflicts),
        "skipped": bool(plan.skipped),
    }
    return {k for k, v in found.items() if v}


def view(ours: str | None, path: str = AGENT) -> LocalView:
    return LocalView({path: local(ours, path)} if ours else {})


@pytest.mark.parametrize(("ours", "base", "theirs", "expected"), PUSH_TABLE)
def test_plan_push(ours, base, theirs, expected):
    bases = {AGENT: entry(base)} if base else {}
    remote = head({AGENT: theirs})
    assert kinds(plan_push(view(ours), bases, remote, everything)) == expected


@pytest.mark.parametrize(("ours", "base", "theirs", "expected"), PULL_TABLE)
def test_plan_pull(ours, base, theirs, expected):
    bases = {AGENT: entry(base)} if base else {}
    remote = head({AGENT: theirs})
    plan = plan_pull(view(ours), bases, remote, everything, "ask", never_synced)
    assert kinds(plan) == expected


def state_bases(entries: dict[str, FileEntry]) -> Bases:
    """The bases as the state gives them: decoded only when an entry is needed."""
    return Bases((p, e.sha256, json.dumps(e.to_json())) for p, e in entries.items())


@pytest.mark.parametrize(("ours", "base", "theirs", "expected"), PUSH_TABLE + PULL_TABLE)
def test_the_states_bases_plan_as_decoded_ones(ours, base, theirs, expected):
    """The state's lazily decoded bases give the plans decoded ones give (hashes in the
    form a stored entry has)."""

    def hexed(name: str | None) -> str | None:
        return None if name is None else name * 64

    ours, base, theirs = hexed(ours), hexed(base), hexed(theirs)
    decoded = {AGENT: FileEntry(base, 0, 0, 0o644, ())} if base else {}
    remote = head({AGENT: theirs})
    for plan in (plan_push, lambda *a: plan_pull(*a, "ask", never_synced)):
        assert plan(view(ours), state_bases(decoded), remote, everything) == plan(
            view(ours), decoded, remote, everything
        )


def test_unknown_paths_are_never_pushed_deleted_or_overwritten():
    bases = {AGENT: entry("a"), COMMAND: entry("a")}
    remote = head({AGENT: "b", COMMAND: "a"})
    unknown = LocalView({}, unknown={AGENT}, unknown_dirs={"commands"})
    assert kinds(plan_push(unknown, bases, remote, everything)) == set()
    assert not has_local_changes(unknown, {p: e.sha256 for p, e in bases.items()}, everything)
    pulled = plan_pull(unknown, bases, remote, everything, "remote", never_synced)
    assert kinds(pulled) == {"skipped"} and pulled.skipped == [AGENT]


def test_a_vanished_transcript_is_not_a_deletion_but_is_restored():
    bases = {SESSION: entry("a")}
    remote = head({SESSION: "b"})
    assert kinds(plan_push(LocalView(), bases, remote, everything)) == set()
    plan = plan_pull(LocalView(), bases, remote, everything, "ask", never_synced)
    assert plan.write == {SESSION: entry("b")}


def test_an_old_version_without_a_base_is_overwritten_not_merged():
    remote = head({AGENT: "new"})
    plan = plan_pull(view("old"), {}, remote, everything, "ask", lambda p, s: s == "old")
    assert plan.write == {AGENT: entry("new")} and not plan.merges


# -- the model check ----------------------------------------------------------------------------

EXAMPLES = int(os.environ.get("CLAUDE_SYNC_MODEL_EXAMPLES", "6"))
STEPS = 30 if EXAMPLES <= 10 else 60
# Shrinking a failing run of real syncs takes minutes: CLAUDE_SYNC_MODEL_SHRINK=1 to have it.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] + (
    [Phase.shrink] if os.environ.get("CLAUDE_SYNC_MODEL_SHRINK") else []
)
MACHINES = 3


class Crash(Exception):
    """A kill -9 in the middle of a command."""


@contextlib.contextmanager
def crash_after(owner: object, name: str, calls: int) -> Iterator[None]:
    """Make the calls-th call of owner.name die, as a kill -9 there would."""
    real = getattr(owner, name)
    count = 0

    def dying(*args: object, **kwargs: object) -> object:
        nonlocal count
        count += 1
        if count >= calls:
            raise Crash
        return real(*args, **kwargs)

    with mock.patch.object(owner, name, dying):
        yield


class ThreeMachines(RuleBasedStateMachine):
    """Three machines appending, editing, deleting, swapping links and syncing in any order;
    at the end all sync until quiet, and must hold the same bytes and every record."""

    @initialize(tagged=st.booleans())
    def set_up(self, tagged: bool) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="claude-sync-model-"))
        # A store that lists tags, as S3 and GCS do, has machines keep the head between looks.
        self.store = TaggedMemoryStore() if tagged else MemoryStore()
        self.master = Repository.create(self.store, None).keys.master
        self.roots = []
        for m in range(MACHINES):
            root = self.tmp / f"m{m}" / ".claude"
            root.mkdir(parents=True)
            self.roots.append(root)
        self.counter = 0
        self.records: set[str] = set()  # every complete record any machine wrote
        self.pending: dict[int, str] = {}  # a half-written record: the rest to append
        self.pending_uuid: dict[int, str] = {}
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.last_setting: dict[int, int] = {}
        self.emptied: dict[int, bytes] = {}  # settings.json mid-save: what it will hold
        self.changed_by: dict[str, set[int]] = {}  # who edited or deleted each plain file
        self.conflicts: set[str] = set()

    def teardown(self) -> None:
        shutil.rmtree(getattr(self, "tmp", "/nonexistent"), ignore_errors=True)

    def engine(self, m: int) -> Engine:
        repo = Repository.open(self.store, self.master)
        state = State(self.tmp / f"m{m}-state.db")
        return Engine(self.roots[m], repo, state, f"m{m}", self.tmp / f"m{m}-work")

    def run(self, m: int, action: str, strategy: str = "ask") -> None:
        engine = self.engine(m)
        (self.tmp / f"m{m}-work").mkdir(exist_ok=True)
        try:
            sel = select([], {})
            if action == "push":
                result = engine.push(sel)
            elif action == "pull":
                result = engine.pull(sel, strategy)
            else:
                result = engine.sync(sel, strategy, dry_run=False, complete=True)
            if action != "push":  # a push cannot merge: its "conflicts" mean "pull first"
                self.conflicts |= {c.path for c in result.conflicts}
        finally:
            engine.state.close()

    # -- what users and Claude Code do --------------------------------------------------------

    def record(self, m: int) -> tuple[str, str]:
        self.counter += 1
        uuid = f"m{m}-{self.counter}"
        line = json.dumps({"uuid": uuid, "timestamp": f"2026-01-01T00:00:{self.counter:02d}Z"})
        return uuid, line + "\n"

    def append(self, m: int, text: str) -> None:
        path = self.roots[m] / SESSION
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(text)

    @rule(m=st.integers(0, MACHINES - 1), half=st.booleans())
    def append_record(self, m: int, half: bool) -> None:
        if m in self.pending:
            self.finish_record(m)
        uuid, line = self.record(m)
        if half:
            self.append(m, line[:20])
            self.pending[m] = line[20:]
            self.pending_uuid[m] = uuid
        else:
            self.append(m, line)
            self.records.add(uuid)

    def finish_record(self, m: int) -> None:
        self.append(m, self.pending.pop(m))
        self.records.add(self.pending_uuid.pop(m))

    @rule(m=st.integers(0, MACHINES - 1), which=st.integers(0, 50))
    def rewrite_without_a_record(self, m: int, which: int) -> None:
        """Claude Code rewrites the transcript from what it holds, without a record another
        machine added meanwhile: every machine must keep that record all the same."""
        path = self.roots[m] / SESSION
        if not path.exists():
            return
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        lines = data[:cut].splitlines(keepends=True)
        others = [i for i, line in enumerate(lines) if not line.startswith(b'{"uuid": "m%d-' % m)]
        if others:
            del lines[others[which % len(others)]]
            path.write_bytes(b"".join(lines) + data[cut:])

    @rule(m=st.integers(0, MACHINES - 1))
    def finish_half_record(self, m: int) -> None:
        if m in self.pending:
            self.finish_record(m)

    @rule(m=st.integers(0, MACHINES - 1), path=st.sampled_from([AGENT, COMMAND]))
    def edit(self, m: int, path: str) -> None:
        target = self.roots[m] / path
        target.parent.mkdir(parents=True, exist_ok=True)
        self.counter += 1
        target.write_text(f"version {self.counter} from m{m}\n")
        self.changed_by.setdefault(path, set()).add(m)
        self.created.add(path)

    @rule(m=st.integers(0, MACHINES - 1), path=st.sampled_from([AGENT, COMMAND]))
    def delete(self, m: int, path: str) -> None:
        target = self.roots[m] / path
        if target.exists():
            target.unlink()
            self.changed_by.setdefault(path, set()).add(m)
            self.deleted.add(path)

    @rule(m=st.integers(0, MACHINES - 1))
    def save_settings(self, m: int) -> None:
        """An editor saving settings.json: truncate now, write the rest later."""
        path = self.roots[m] / "settings.json"
        try:
            current = json.loads(path.read_bytes() or self.emptied.get(m, b"{}"))
        except FileNotFoundError:
            current = {}
        self.counter += 1
        current[f"m{m}"] = self.counter  # each machine its own key: always merges
        self.last_setting[m] = self.counter
        path.write_bytes(b"")
        self.emptied[m] = json.dumps(current, sort_keys=True).encode()

    @rule(m=st.integers(0, MACHINES - 1))
    def finish_saving_settings(self, m: int) -> None:
        if m in self.emptied:
            (self.roots[m] / "settings.json").write_bytes(self.emptied.pop(m))

    @rule(m=st.integers(0, MACHINES - 1))
    def swap_agents_into_dotfiles(self, m: int) -> None:
        """Move agents/ into a dotfiles folder and link it back, or undo that."""
        agents = self.roots[m] / "agents"
        stored = self.tmp / f"m{m}" / "dotfiles" / "agents"
        if agents.is_symlink():
            agents.unlink()
            stored.rename(agents)
        elif agents.is_dir():
            stored.parent.mkdir(parents=True, exist_ok=True)
            agents.rename(stored)
            agents.symlink_to(stored)

    @rule(m=st.integers(0, MACHINES - 1), action=st.sampled_from(["push", "pull", "sync"]))
    def sync(self, m: int, action: str) -> None:
        self.run(m, action)

    @rule(
        first=st.integers(0, MACHINES - 1),
        second=st.integers(0, MACHINES - 1),
        path=st.sampled_from([AGENT, COMMAND]),
        deletes_first=st.booleans(),
    )
    def both_change_then_push(self, first: int, second: int, path: str, deletes_first: bool):
        """One machine deletes a file and pushes; another edits it and pushes before any
        pull (or the other way round): rare in random sequences, common in life."""
        if first == second:
            return
        for m, deletes in ((first, deletes_first), (second, not deletes_first)):
            if deletes:
                self.delete(m, path)
            else:
                self.edit(m, path)
            self.run(m, "push")

    @rule(m=st.integers(0, MACHINES - 1))
    def pull_racing_claude_code(self, m: int) -> None:
        """Claude Code appends to the transcript while the pull downloads it."""
        download = Downloads._download_into
        uuid, line = self.record(m)

        def racing(downloads: Downloads, staged, result, *args):  # type: ignore[no-untyped-def]
            failed = download(downloads, staged, result, *args)
            if (self.roots[m] / SESSION).exists() and m not in self.pending:
                self.append(m, line)
                self.records.add(uuid)
            return failed

        with mock.patch.object(Downloads, "_download_into", racing):
            self.run(m, "pull")

    @rule(
        m=st.integers(0, MACHINES - 1),
        point=st.sampled_from(["install", "state"]),
        calls=st.integers(1, 3),
        action=st.sampled_from(["push", "pull", "sync"]),
    )
    def killed(self, m: int, point: str, calls: int, action: str) -> None:
        """Killed while moving pulled files into place, or while recording the new state
        (a pull's, or a push's after it wrote its snapshot)."""
        owner, name = (os, "replace") if point == "install" else (State, "set_base")
        with contextlib.suppress(Crash), crash_after(owner, name, calls):
            self.run(m, action)

    # -- what must hold -----------------------------------------------------------------------

    @invariant()
    def a_push_that_relies_on_clean_units_sends_what_a_full_push_sends(self) -> None:
        """Where a push would look at only some files, or none (clean_tree.py), it plans to
        send exactly what a push looking at every file would."""
        for m in range(MACHINES if hasattr(self, "roots") else 0):
            engine = self.engine(m)
            try:
                sel = select([], {})
                clean = engine.state.clean_units()
                whole = clean.pop(WHOLE_TREE, None)
                scope = engine.clean_record.to_look_at(engine.scanner.walk(sel, []), clean, whole)
                if scope is None:
                    continue
                narrowed = replace(sel, only=tuple(sorted(scope)))
                sends = _sent(engine, narrowed) if scope else set()
                assert sends == _sent(engine, sel), f"machine {m}, looking at {sorted(scope)}"
            finally:
                engine.state.close()

    @invariant()
    def conflicts_only_where_two_machines_changed_a_plain_file(self) -> None:
        for path in getattr(self, "conflicts", set()):
            assert path in (AGENT, COMMAND), path
            assert len(self.changed_by.get(path, set())) >= 2, path

    def teardown_check(self) -> None:
        for m in list(self.pending):
            self.finish_record(m)
        for m in list(self.emptied):
            self.finish_saving_settings(m)
        # Conflicts left by the random phase are settled by taking the remote version.
        for _ in range(3):
            for m in range(MACHINES):
                self.run(m, "sync", strategy="remote")
        views = [synced_files(root) for root in self.roots]
        for m in range(1, MACHINES):
            assert views[m] == views[0], f"machine {m} differs from machine 0"
        session = views[0].get(SESSION, b"")
        lines = session.splitlines()
        uuids = [json.loads(line)["uuid"] for line in lines]  # every line one whole record
        assert sorted(set(uuids)) == sorted(uuids), "a record appears twice"
        assert self.records <= set(uuids), self.records - set(uuids)
        if self.last_setting:
            settings_ = json.loads(views[0]["settings.json"])
            for m, value in self.last_setting.items():
                assert settings_[f"m{m}"] == value, (m, settings_)
        for path in self.created - self.deleted:
            assert path in views[0], f"{path} was deleted, but no machine deleted it"


def _sent(engine: Engine, sel: Selection) -> set[str]:
    """What a push of sel would send or hold as a conflict, as planned now."""
    plan = engine.plan_push(sel, engine.scanner.scan(sel, []), engine.head())
    return set(plan.upload) | set(plan.remove) | {c.path for c in plan.conflicts}


def synced_files(root: Path) -> dict[str, bytes]:
    """Every file as Claude Code sees it: through linked folders too."""
    files = {}
    for folder, _, names in os.walk(root, followlinks=True):
        for name in names:
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if CONFLICT_MARKER not in rel:
                files[rel] = (Path(folder) / name).read_bytes()
    return files


def test_three_machines_converge_whatever_the_interleaving():
    chosen = int(os.environ.get("CLAUDE_SYNC_MODEL_SEED") or random.randrange(2**32))

    class Checked(ThreeMachines):
        def teardown(self) -> None:
            try:
                if hasattr(self, "tmp"):
                    self.teardown_check()
            finally:
                super().teardown()

    try:
        run_state_machine_as_test(
            seed(chosen)(Checked),
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=PHASES,
            ),
        )
    except BaseException as exc:
        exc.add_note(f"reproduce with CLAUDE_SYNC_MODEL_SEED={chosen}")
        print(f"model check failed with seed {chosen}")
        raise
