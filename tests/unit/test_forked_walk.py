"""A walk of the projects folder split between this process and a forked copy sees exactly
what a walk on one process sees, in the same order (the walk's digests depend on it), and a
child that fails or a walk interrupted here costs only time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_sync import forked_walk, resources
from claude_sync.resources import Skipped, scan, select

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
#: the real test, before the fixture below stands in for it
_AVAILABLE = forked_walk.available


@pytest.fixture(autouse=True)
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every split walk forks, whatever threads the test run has (counted)."""
    calls: list[int] = []
    beside = forked_walk.beside

    def counted(theirs, mine):  # type: ignore[no-untyped-def]
        calls.append(1)
        return beside(theirs, mine)

    monkeypatch.setattr(forked_walk, "available", lambda: True)
    monkeypatch.setattr(forked_walk, "beside", counted)
    return calls


def walked(root: Path, split: bool) -> tuple[list[resources.FoundFile], list[Skipped]]:
    skipped: list[Skipped] = []
    found = list(scan(root, select([], {}), skipped, split))
    return found, skipped


def write(root: Path, rel: str | bytes, data: bytes = b"x") -> None:
    path = os.path.join(os.fsencode(root), os.fsencode(rel))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def test_a_split_walk_sees_what_one_process_sees(tmp_path: Path, forks: list[int]) -> None:
    root = tmp_path / ".claude"
    for p in range(7):
        for s in range(3):
            write(root, f"projects/-p{p}/s{s}.jsonl", b"{}\n" * (p + s + 1))
            write(root, f"projects/-p{p}/s{s}/subagents/agent-{s}.jsonl")
    write(root, "projects/-p1/empty.jsonl", b"")
    write(root, b"projects/-p2/bad\xff.jsonl")
    write(root, "projects/-p3/new\nline.jsonl")
    write(root, "projects/top-level-file.jsonl")
    write(root, "agents/a.md")
    write(tmp_path, "outside.jsonl")
    (root / "projects/-p4/out.jsonl").symlink_to(tmp_path / "outside.jsonl")
    (root / "projects/-p5/linked").symlink_to(root / "projects/-p0")
    locked = root / "projects/-p6/s1"
    locked.chmod(0)
    try:
        one = walked(root, False)
        assert not forks
        split = walked(root, True)
    finally:
        locked.chmod(0o700)
    assert forks == [1]
    assert split == one
    assert len(one[0]) > 40 and len(one[1]) >= 4


def test_one_project_folder_is_walked_without_a_fork(tmp_path: Path, forks: list[int]) -> None:
    root = tmp_path / ".claude"
    write(root, "projects/-p0/s.jsonl")
    write(root, "projects/-p0/s/subagents/a.jsonl")
    assert walked(root, True) == walked(root, False)
    assert not forks


def _failing_child(*args):  # type: ignore[no-untyped-def]
    raise RuntimeError("the child's half fails")


def _no_fork() -> int:
    raise BlockingIOError(11, "Resource temporarily unavailable")


@pytest.mark.parametrize(
    "module, name, failing", [(forked_walk, "_child", _failing_child), (os, "fork", _no_fork)]
)
def test_a_child_that_fails_or_never_starts_leaves_its_half_to_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module, name, failing
) -> None:  # type: ignore[no-untyped-def]
    """A fork that failed (no memory, or no process left under a limit) failed every push
    and status: the parent's half was never walked either."""
    root = tmp_path / ".claude"
    for p in range(4):
        write(root, f"projects/-p{p}/s.jsonl")
    one = walked(root, False)
    monkeypatch.setattr(module, name, failing)
    assert walked(root, True) == one


def test_a_walk_interrupted_here_stops_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    children: list[int] = []
    fork = os.fork

    def recorded() -> int:
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fork", recorded)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        forked_walk.beside(lambda: time.sleep(30), interrupted)
    assert time.monotonic() - started < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # gone, not even a zombie left


def test_a_signal_at_the_fork_is_raised_here_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C landing during the fork (in the interpreter's at-fork hooks) was printed as
    "Exception ignored" and lost; in the child, it ran the command's error path there."""
    fork = os.fork
    children: list[int] = []

    def interrupted_at_once() -> int:
        pid = fork()
        if pid:
            children.append(pid)
        # To each side, the moment it is one (to this thread: the test run has others, a
        # command that forks has none, see forked_walk.available).
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        return pid

    monkeypatch.setattr(os, "fork", interrupted_at_once)
    with pytest.raises(KeyboardInterrupt):
        forked_walk.beside(lambda: 1, lambda: None)
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)


def test_a_child_that_never_answers_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child stopped (SIGSTOP) held the command up for as long as it stayed stopped."""
    monkeypatch.setattr(forked_walk, "MIN_WAIT", 0.3)
    started = time.monotonic()
    assert forked_walk.beside(lambda: time.sleep(30), lambda: None) is None
    assert time.monotonic() - started < 5


_KILLED_WHILE_CHILD_STOPPED = """
import os, signal, sys, time
from claude_sync import forked_walk

def theirs():
    with open(sys.argv[1] + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    os.kill(os.getpid(), signal.SIGSTOP)

def mine():
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)

forked_walk.beside(theirs, mine)
"""


def test_a_command_killed_takes_its_stopped_child_with_it(tmp_path: Path) -> None:
    """A command killed (SIGKILL) while its process group was stopped left the child
    stopped, holding the caller's output open until someone resumed it."""
    told = tmp_path / "child"
    command = subprocess.run(
        [sys.executable, "-c", _KILLED_WHILE_CHILD_STOPPED, str(told)], timeout=60
    )
    assert command.returncode == -signal.SIGKILL
    stat = Path(f"/proc/{told.read_text()}/stat")
    deadline = time.monotonic() + 10
    while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child outlived the command"
        time.sleep(0.02)


@pytest.mark.parametrize("cores, others, split", [({0}, 0, False), ({0, 1}, 1, False)])
def test_one_core_or_a_busy_machine_keeps_the_walk_on_one_process(
    monkeypatch: pytest.MonkeyPatch, cores: set[int], others: int, split: bool
) -> None:
    """On one core, or with the other busy, the split only added the fork's cost."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cores, raising=False)
    monkeypatch.setattr(forked_walk, "others_running", lambda: others)
    assert _AVAILABLE() is split


def test_the_tasks_running_are_read_from_the_kernel() -> None:
    assert 0 <= forked_walk.others_running() < 10_000


def test_a_thread_running_here_keeps_the_walk_on_one_process() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not _AVAILABLE()
    finally:
        stop.set()
        thread.join()


_NAMES = st.sampled_from(["a", "b", "s.jsonl", "t.jsonl", "x.tmp", "new\nline", "sub", "é"])
_TREES = st.lists(
    st.tuples(st.lists(_NAMES, min_size=1, max_size=4), st.integers(0, 3)),
    max_size=30,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_TREES)
def test_any_tree_walked_split_is_walked_alike(tmp_path: Path, tree) -> None:  # type: ignore[no-untyped-def]
    """Random project trees: files, empty files, names a walk skips, a file and a folder
    fighting over a name (the second one made loses)."""
    root = tmp_path / str(time.monotonic_ns()) / ".claude"
    (root / "projects").mkdir(parents=True)
    for parts, size in tree:
        rel = "projects/" + "/".join(parts)
        try:
            write(root, rel, b"{}\n" * size)
        except OSError:
            continue
    assert walked(root, True) == walked(root, False)
