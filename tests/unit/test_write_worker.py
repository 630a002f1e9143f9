"""A pull of many small files has them written and moved into place by worker processes:
what it leaves (content, mode, time, what the state records, what it refuses to overwrite)
is what it leaves writing them itself; a worker that dies only sends its batch back; a write
that fails fails the pull with its file named."""

from __future__ import annotations

import os
import random
import stat
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claude_sync import install as install_module
from claude_sync import write_worker
from claude_sync.reading import stat_key
from claude_sync.state import State
from claude_sync.write_worker import FileWriters

pytestmark = pytest.mark.skipif(os.name == "nt", reason="no write workers on Windows")

#: an hour ago (sessions older than a machine's window are not pulled)
MTIME = (int(time.time()) - 3600) * 10**9 + 123_456_789


def tree(seed: int) -> dict[str, str]:
    """Files of one chunk and of several (2 MiB, cut at ~512 KiB), empty ones, transcripts,
    a filtered one (settings), in a few folders, one with its own mode."""
    rng = random.Random(seed)
    files: dict[str, str] = {}
    for n in range(rng.randint(5, 40)):
        folder = rng.choice(["agents", "agents/team", "projects/-home-u-app"])
        text = rng.choice(["", "x", f"text {rng.random()}\n" * 30])
        if folder.startswith("projects"):
            files[f"{folder}/{n:08x}-0000-4000-8000-000000000000.jsonl"] = text and '{"n": 1}\n'
        else:
            files[f"{folder}/f{n}.md"] = text
    if rng.random() < 0.5:
        files["agents/big.md"] = rng.randbytes(1 << 20).hex()  # several chunks
    files["settings.json"] = '{"model": "x"}'
    return files


def pulled(tmp: Path, files: dict[str, str], workers: bool, ahead: int = 2) -> EngineMachines:
    pair = EngineMachines(tmp)
    for path, text in files.items():
        pair.write(0, path, text)
    os.chmod(pair.root(0) / next(iter(files)), 0o640)
    for n, path in enumerate(files):  # the times a pull gives them: the same in every pair
        os.utime(pair.root(0) / path, ns=(MTIME + n, MTIME + n))
    pair.run(0, "push")
    moved: list[int] = []
    finish = FileWriters.moved

    def counted(self: FileWriters):  # type: ignore[no-untyped-def]
        placed = finish(self)
        moved.append(len(placed))
        return placed

    with (
        mock.patch.object(install_module, "WORKER_FILES", 1 if workers else 10**9),
        mock.patch.object(write_worker, "BATCH_FILES", 3),  # several batches, in flight
        mock.patch.object(write_worker, "AHEAD", ahead),
        # several parts: one's rows written while the next one's files are moved
        mock.patch.object(install_module, "WRITE_BATCH", 4),
        mock.patch.object(FileWriters, "moved", counted),
    ):
        result = pair.run(1, "pull")
    assert not result.warnings  # type: ignore[attr-defined]
    # (Empty files are not pushed: they may be ones an editor is about to write.)
    assert sum(moved) == (len(result.pulled) if workers else 0)  # type: ignore[attr-defined]
    assert len(moved) == (-(-len(result.pulled) // 4) if workers else 0)  # type: ignore[attr-defined]
    return pair


def left(pair: EngineMachines) -> dict[str, tuple[bytes, int, int]]:
    root = pair.root(1)
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if ".claude-sync" in str(path.relative_to(root)):
                continue
            st_ = path.lstat()
            found[str(path.relative_to(root))] = (
                path.read_bytes(),
                stat.S_IMODE(st_.st_mode),
                st_.st_mtime_ns,
            )
    return found


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), ahead=st.sampled_from([0, 1, 2]))
def test_a_pull_through_workers_leaves_what_it_leaves_by_itself(
    tmp_path_factory, seed: int, ahead: int
) -> None:
    """ahead 0: every batch is written by the pull's own thread (its worker busy)."""
    files = tree(seed)
    through = pulled(tmp_path_factory.mktemp("w"), files, True, ahead)
    itself = pulled(tmp_path_factory.mktemp("s"), files, False)
    assert left(through) == left(itself), f"seed {seed}"
    # What the state recorded is what is there: each file's stat, as a scan compares it
    # (filtered ones are read again by design); nothing to push, nothing to pull.
    state = State(through.state_path(1))
    try:
        recorded = state.cached_files()
    finally:
        state.close()
    for path in set(left(through)) - {"settings.json"}:
        assert recorded[path].stat == stat_key(os.stat(through.root(1) / path)), f"seed {seed}"
        assert recorded[path].mode == left(through)[path][1], f"seed {seed}"
    for pair in (through, itself):
        assert not pair.run(1, "push").pushed, f"seed {seed}"  # type: ignore[attr-defined]
        assert not pair.run(1, "pull").pulled, f"seed {seed}"  # type: ignore[attr-defined]


def test_a_file_that_appeared_where_a_pull_writes_is_kept(tmp_path: Path) -> None:
    """A file made here between the pull's scan and its moves is not replaced: the worker
    leaves it, and the pull says why, as it does by itself."""
    pair = EngineMachines(tmp_path)
    for n in range(5):
        pair.write(0, f"agents/a{n}.md", f"remote {n}")
    pair.run(0, "push")
    send = FileWriters.send_moves

    def meanwhile(self: FileWriters, moves):  # type: ignore[no-untyped-def]
        pair.write(1, "agents/a3.md", "written here meanwhile")
        return send(self, moves)

    with (
        mock.patch.object(install_module, "WORKER_FILES", 1),
        mock.patch.object(FileWriters, "send_moves", meanwhile),
    ):
        result = pair.run(1, "pull")
    assert pair.read(1, "agents/a3.md") == "written here meanwhile"
    assert [pair.read(1, f"agents/a{n}.md") for n in (0, 1, 2, 4)] == [
        f"remote {n}" for n in (0, 1, 2, 4)
    ]
    assert any("agents/a3.md" in w for w in result.warnings)  # type: ignore[attr-defined]


def test_moves_only_onto_what_the_scan_saw(tmp_path: Path) -> None:
    writers = FileWriters(1)
    try:
        for name in "abcd":
            writers.write(str(tmp_path / f"t{name}"), name.encode(), 0o644, MTIME)
        writers.written()
        (tmp_path / "b").write_text("there")
        (tmp_path / "c").write_text("seen")
        seen = (tmp_path / "c").stat()
        key = (seen.st_size, seen.st_mtime_ns, seen.st_ino, seen.st_ctime_ns)
        (tmp_path / "d").write_text("seen, then changed")
        writers.send_moves(
            [
                (str(tmp_path / "ta"), str(tmp_path / "a"), None),  # nothing there: moved
                (str(tmp_path / "tb"), str(tmp_path / "b"), None),  # appeared: kept
                (str(tmp_path / "tc"), str(tmp_path / "c"), key),  # as seen: replaced
                (str(tmp_path / "td"), str(tmp_path / "d"), key),  # not as seen: kept
            ]
        )
        placed = writers.moved()
    finally:
        writers.close()
    assert sorted(placed) == [str(tmp_path / "a"), str(tmp_path / "c")]
    assert (tmp_path / "a").read_text() == "a" and (tmp_path / "c").read_text() == "c"
    assert (tmp_path / "b").read_text() == "there"
    assert (tmp_path / "d").read_text() == "seen, then changed"
    st_ = (tmp_path / "a").stat()
    assert placed[str(tmp_path / "a")] == (
        (st_.st_size, st_.st_mtime_ns, st_.st_ino, st_.st_ctime_ns),
        st_.st_mode,
    )
    assert st_.st_mtime_ns == MTIME and stat.S_IMODE(st_.st_mode) == 0o644


def test_a_worker_that_dies_sends_its_batches_back(tmp_path: Path) -> None:
    """Killed with batches to do, writes and moves alike: the pull's thread does them (a
    move the worker made is found made)."""
    writers = FileWriters(1)
    try:
        with mock.patch.object(write_worker, "BATCH_FILES", 5):
            for n in range(20):
                if n == 7:
                    writers._workers[0].proc.kill()
                writers.write(str(tmp_path / f"t{n}"), b"%d" % n, 0o600, MTIME)
            writers.written()
            writers.send_moves(
                (str(tmp_path / f"t{n}"), str(tmp_path / f"f{n}"), None) for n in range(20)
            )
            placed = writers.moved()
    finally:
        writers.close()
    assert len(placed) == 20
    assert all((tmp_path / f"f{n}").read_bytes() == b"%d" % n for n in range(20))
    assert not list(tmp_path.glob("t*"))


def test_a_move_a_stopped_worker_may_have_made_is_not_claimed(tmp_path: Path) -> None:
    """Done here after its worker stopped, a move whose temporary file is gone says "not
    moved": what is at dest is not known to be what the worker moved (the caller looks at
    it itself), so nothing is recorded as pulled that may be something else."""
    writers = FileWriters(1)
    try:
        (tmp_path / "t").write_text("new")
        os.replace(tmp_path / "t", tmp_path / "f")  # as the worker would, before it died
        writers._workers[0].stop()
        writers.send_moves([(str(tmp_path / "t"), str(tmp_path / "f"), None)])
        placed = writers.moved()
    finally:
        writers.close()
    assert placed == {}
    assert (tmp_path / "f").read_text() == "new"


def test_a_write_that_fails_names_its_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    writers = FileWriters(1)
    try:
        writers.write(str(tmp_path / "ok"), b"fine", 0o600, MTIME)
        writers.write(str(tmp_path / "file" / "t"), b"nowhere", 0o600, MTIME)
        with pytest.raises(OSError) as failed:
            writers.written()
    finally:
        writers.close()
    assert failed.value.filename == str(tmp_path / "file" / "t")
    assert (tmp_path / "ok").read_bytes() == b"fine"


def test_a_pull_that_fails_leaves_no_worker_writing(tmp_path: Path) -> None:
    """The download fails after some files were handed over: the workers are stopped before
    the pull cleans up, so nothing is written behind it."""
    pair = EngineMachines(tmp_path)
    for n in range(30):
        pair.write(0, f"agents/a{n}.md", f"remote {n}")
    pair.run(0, "push")
    stopped = []
    stop = FileWriters.stop

    def counted(self: FileWriters) -> None:
        stopped.append(True)
        stop(self)

    def fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(5, "the disk went away")

    with (
        mock.patch.object(install_module, "WORKER_FILES", 1),
        mock.patch.object(FileWriters, "stop", counted),
        mock.patch.object(FileWriters, "written", fails),
        pytest.raises(OSError),
    ):
        pair.run(1, "pull")
    assert stopped == [True]
    assert not list(pair.root(1).glob("agents/a*.md"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_write_worker_is_given_no_secret() -> None:
    """Neither in its environment nor in its arguments: it is handed verified bytes only."""
    secrets = {"AWS_SECRET_ACCESS_KEY": "sentinel-aws", "CLAUDE_SYNC_PASSPHRASE": "sentinel-pass"}
    with mock.patch.dict(os.environ, secrets):
        writers = FileWriters(1)
    try:
        pid = writers._workers[0].proc.pid
        assert b"sentinel" not in Path(f"/proc/{pid}/environ").read_bytes()
        assert b"sentinel" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        writers.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe sizes are Linux's")
def test_batches_handed_over_wait_in_the_pipe_not_in_the_pull() -> None:
    """The worker's pipe holds the batches it has waiting (AHEAD of them): a pull's thread
    that hands one over goes on with its own work instead of waiting for the worker."""
    import fcntl

    if int(Path("/proc/sys/fs/pipe-max-size").read_text()) < write_worker.PIPE_BYTES:
        pytest.skip("this system's pipes cannot be made that big")
    writers = FileWriters(1)
    try:
        stdin = writers._workers[0].proc.stdin
        assert stdin is not None
        held = fcntl.fcntl(stdin.fileno(), fcntl.F_GETPIPE_SZ)  # type: ignore[attr-defined]
    finally:
        writers.close()
    assert held >= write_worker.PIPE_BYTES
    # What a batch sends: its bytes, and its operations (~300 bytes each with the paths of
    # a Claude folder's transcripts).
    batch = write_worker.BATCH_BYTES + write_worker.BATCH_FILES * 300
    assert held >= (write_worker.AHEAD - 1) * batch


FILES_EACH = 1500


def test_files_handed_over_from_several_threads_keep_their_own_bytes(tmp_path: Path) -> None:
    """A pull reads several packs at once, each on its thread: a batch's operations and
    bytes stay in step whoever adds to it."""
    import threading

    writers = FileWriters(1)
    # (Bounded: a thread that failed before the barrier once held the whole run up.)
    go = threading.Barrier(4, timeout=120)
    failed: list[BaseException] = []

    def hand_over(t: int) -> None:
        try:
            go.wait()
            for n in range(FILES_EACH):
                data = b"%d-%d" % (t, n) * (n % 7 + 1)
                writers.write(str(tmp_path / f"{t}-{n}"), data, 0o600, MTIME)
        except BaseException as exc:
            failed.append(exc)
            go.abort()

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two steps: races show
    try:
        with mock.patch.object(write_worker, "BATCH_FILES", 7):
            threads = [threading.Thread(target=hand_over, args=(t,)) for t in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
            assert not any(thread.is_alive() for thread in threads), "a thread never ended"
            assert not failed, failed
            writers.written()
    finally:
        sys.setswitchinterval(switching)
        writers.close()
    for t in range(4):
        for n in range(FILES_EACH):
            assert (tmp_path / f"{t}-{n}").read_bytes() == b"%d-%d" % (t, n) * (n % 7 + 1)
