"""A pull that brings many bytes or files has its packs opened, and their blobs written, by
worker processes: what it leaves (content, mode, time, what the state records) is what it
leaves opening them itself; a damaged pack is reported as one; a worker that dies or hangs
only hands its pack back; a write that fails fails the pull with its file named; the keys
reach a worker on its input only."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_write_worker import MTIME, left, tree

from claude_sync import downloads, open_worker
from claude_sync import install as install_module
from claude_sync.errors import CorruptionError, ObjectNotFoundError
from claude_sync.open_worker import PackOpeners
from claude_sync.outcome import Reporter
from claude_sync.repository import Repository

pytestmark = pytest.mark.skipif(os.name == "nt", reason="no open workers on Windows")

PACK_PREFIX = "data/"


def pulled(
    tmp: Path, files: dict[str, str], openers: bool, writers: bool = False
) -> tuple[EngineMachines, list[object]]:
    """A pull of files onto a second machine, with open workers (or not) and write workers
    (or not); what each pack handed over was answered (True: written by a worker)."""
    pair = EngineMachines(tmp)
    for path, text in files.items():
        pair.write(0, path, text)
    os.chmod(pair.root(0) / next(iter(files)), 0o640)
    for n, path in enumerate(files):
        os.utime(pair.root(0) / path, ns=(MTIME + n, MTIME + n))
    pair.run(0, "push")
    answered: list[object] = []
    open_ = PackOpeners.open

    def counted(self: PackOpeners, *args):  # type: ignore[no-untyped-def]
        done = open_(self, *args)
        answered.append(done)
        return done

    with (
        mock.patch.object(downloads, "OPEN_WORKERS_FROM_FILES", 1 if openers else 10**9),
        mock.patch.object(downloads, "OPEN_WORKERS_FROM_BYTES", 1 if openers else 10**12),
        mock.patch.object(install_module, "WORKER_FILES", 1 if writers else 10**9),
        mock.patch.object(PackOpeners, "open", counted),
        mock.patch.object(open_worker, "BLOBS_PER_FRAME", 2),  # requests of several parts
    ):
        result = pair.run(1, "pull")
    assert not result.warnings  # type: ignore[attr-defined]
    return pair, answered


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), writers=st.booleans())
def test_a_pull_through_open_workers_leaves_what_it_leaves_by_itself(
    tmp_path_factory, seed: int, writers: bool
) -> None:
    files = tree(seed)
    through, answered = pulled(tmp_path_factory.mktemp("o"), files, True, writers)
    itself, none = pulled(tmp_path_factory.mktemp("s"), files, False)
    assert answered and all(a is True for a in answered) and not none, f"seed {seed}"
    assert left(through) == left(itself), f"seed {seed}"
    for pair in (through, itself):
        assert not pair.run(1, "push").pushed, f"seed {seed}"  # type: ignore[attr-defined]
        assert not pair.run(1, "pull").pulled, f"seed {seed}"  # type: ignore[attr-defined]


def test_a_pack_whose_worker_died_is_opened_by_the_pull(tmp_path: Path) -> None:
    files = {f"agents/a{n}.md": f"remote {n}\n" * (n + 1) for n in range(30)}
    open_ = PackOpeners.open

    def dies(self: PackOpeners, *args):  # type: ignore[no-untyped-def]
        for worker in self._workers:
            worker.proc.kill()
            worker.proc.wait()
        return open_(self, *args)

    with mock.patch.object(PackOpeners, "open", dies):
        through, answered = pulled(tmp_path / "o", files, True)
    itself, _ = pulled(tmp_path / "s", files, False)
    assert answered and all(a is not True for a in answered)
    assert left(through) == left(itself)


def test_a_damaged_pack_is_reported_as_by_the_pull_itself(tmp_path: Path) -> None:
    """Every file of a pack with a flipped byte is named unavailable, with why (a pull
    brings everything that can be had), and the others are pulled, whoever opened the
    packs."""
    outcomes = []
    for openers in (True, False):
        pair = EngineMachines(tmp_path / str(openers))
        for n in range(40):
            pair.write(0, f"agents/a{n}.md", f"remote {n}\n" * 50)
        pair.run(0, "push")
        damaged = next(name for name in pair.store.objects if name.startswith(PACK_PREFIX))
        pair.write(0, "agents/big.md", os.urandom(1 << 20).hex())  # in a pack of its own
        pair.run(0, "push")
        data = bytearray(pair.store.objects[damaged])
        data[len(data) // 3] ^= 0x40
        pair.store.objects[damaged] = bytes(data)
        with mock.patch.object(downloads, "OPEN_WORKERS_FROM_FILES", 1 if openers else 10**9):
            result = pair.run(1, "pull")
        pulled = sorted(p.name for p in pair.root(1).glob("agents/*.md"))
        why = {w.replace(damaged, "PACK") for w in result.warnings}  # type: ignore[attr-defined]
        outcomes.append((sorted(result.unavailable), pulled, why))  # type: ignore[attr-defined]
    assert outcomes[0] == outcomes[1]
    unavailable, pulled, why = outcomes[0]
    assert unavailable and "big.md" in pulled
    assert all("damaged" in w for w in why)


def pieces(data: bytes, size: int = 1000) -> Iterator[bytes]:
    return (data[at : at + size] for at in range(0, len(data), size))


def _a_pack(tmp_path: Path) -> tuple[Repository, str, list[open_worker.WantedBlob], bytes]:
    """A pushed pack, with its blobs' places in files under tmp_path/out."""
    pair = EngineMachines(tmp_path)
    for n in range(3):
        pair.write(0, f"agents/a{n}.md", f"text {n}\n" * 10)
    pair.run(0, "push")
    repo = Repository.open(pair.store, pair.master)
    pack = next(name for name in pair.store.objects if name.startswith(PACK_PREFIX))
    blobs: list[open_worker.WantedBlob] = []
    for blob_id, loc in repo.pack_header(pack).items():
        plain = len(repo.read_pack(pack, {blob_id: loc})[blob_id])
        where = str(tmp_path / "out" / blob_id[:8])
        blobs.append((blob_id, loc.offset, loc.length, [(where, 0, plain, None, None)]))
    return repo, pack, blobs, pair.store.objects[pack]


def test_a_worker_writes_the_blobs_where_they_go(tmp_path: Path) -> None:
    repo, pack, blobs, data = _a_pack(tmp_path)
    openers = PackOpeners(repo.keys, 1)
    try:
        assert openers.open(pack, blobs, pieces(data))
    finally:
        openers.close()
    for blob_id, _, _, where in blobs:
        got = Path(where[0][0]).read_bytes()
        loc = repo.pack_header(pack)[blob_id]
        assert got == repo.read_pack(pack, {blob_id: loc})[blob_id]


def test_a_write_that_fails_in_a_worker_names_its_file(tmp_path: Path) -> None:
    repo, pack, blobs, data = _a_pack(tmp_path)
    (tmp_path / "file").write_text("a file, not a folder")
    blob_id, offset, length, where = blobs[0]
    nowhere = str(tmp_path / "file" / "t")
    failing = [(blob_id, offset, length, [(nowhere, *where[0][1:])]), *blobs[1:]]
    openers = PackOpeners(repo.keys, 1)
    try:
        with pytest.raises(OSError) as failed:
            openers.open(pack, failing, pieces(data))
        # The rest of that pack was read to its end: the worker takes the next one.
        assert openers.open(pack, blobs, pieces(data))
    finally:
        openers.close()
    assert failed.value.filename == nowhere


def test_a_blob_of_another_length_than_its_snapshot_says_is_damage(tmp_path: Path) -> None:
    repo, pack, blobs, data = _a_pack(tmp_path)
    blob_id, offset, length, where = blobs[0]
    tmp, at, plain, mode, mtime = where[0]
    blobs[0] = (blob_id, offset, length, [(tmp, at, plain + 1, mode, mtime)])
    openers = PackOpeners(repo.keys, 1)
    try:
        with pytest.raises(CorruptionError, match="length"):
            openers.open(pack, blobs, pieces(data))
    finally:
        openers.close()


@pytest.mark.parametrize("stuck", ["taking pieces", "answering"])
def test_a_hung_worker_hands_its_pack_back(tmp_path: Path, stuck: str) -> None:
    """Stopped (a debugger, a suspended process) past OPEN_WAIT, while it is handed pieces
    (more than its pipe holds) or once it has them all: the caller opens the pack itself,
    and every later one too, without waiting again."""
    repo, pack, blobs, data = _a_pack(tmp_path)
    more = [b"x" * (1 << 20)] * 4 if stuck == "taking pieces" else []
    openers = PackOpeners(repo.keys, 1)
    try:
        os.kill(openers._workers[0].proc.pid, signal.SIGSTOP)
        with (
            mock.patch.object(open_worker, "OPEN_WAIT", 0.5),
            mock.patch.object(open_worker, "WATCH_EVERY", 0.1),
        ):
            answers: list[object] = []
            opening = threading.Thread(
                target=lambda: answers.append(
                    openers.open(pack, blobs, itertools.chain(pieces(data), more))
                ),
                daemon=True,
            )
            opening.start()
            opening.join(timeout=10)
            assert answers == [False]  # it had pieces: the pack is to be read again
            # The next ones are left to the caller, with the pieces read meanwhile.
            assert b"".join(openers.open(pack, blobs, pieces(data))) == data  # type: ignore[arg-type]
    finally:
        openers.stop()


def test_a_store_that_fails_mid_pack_fails_as_it_does_here(tmp_path: Path) -> None:
    """What reading the pack raised is raised, and the worker, left waiting for the rest of
    that pack, is stopped (the next pack is opened here)."""
    repo, pack, blobs, data = _a_pack(tmp_path)

    def cut() -> Iterator[bytes]:
        yield data[:100]
        raise ObjectNotFoundError(f"object {pack} is missing")

    openers = PackOpeners(repo.keys, 1)
    try:
        with pytest.raises(ObjectNotFoundError):
            openers.open(pack, blobs, cut())
        assert b"".join(openers.open(pack, blobs, pieces(data))) == data  # type: ignore[arg-type]
    finally:
        openers.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_keys_reach_an_open_worker_only_on_its_input(tmp_path: Path) -> None:
    repo, pack, blobs, data = _a_pack(tmp_path)
    secrets = {"AWS_SECRET_ACCESS_KEY": "sentinel-aws", "CLAUDE_SYNC_PASSPHRASE": "sentinel-pass"}
    with mock.patch.dict(os.environ, secrets):
        openers = PackOpeners(repo.keys, 1)
    try:
        assert openers.open(pack, blobs, pieces(data))  # it holds the keys: it opened the pack
        pid = openers._workers[0].proc.pid
        for seen in (Path(f"/proc/{pid}/environ"), Path(f"/proc/{pid}/cmdline")):
            text = seen.read_bytes()
            assert b"sentinel" not in text
            assert repo.keys.master.hex().encode() not in text and repo.keys.master not in text
    finally:
        openers.close()


def test_a_pack_waiting_for_a_worker_is_read_on_up_to_a_bound(tmp_path: Path) -> None:
    """While every worker is busy, the pack's next pieces are read (the store's answer does
    not wait unread), up to WAIT_AHEAD bytes; then the first worker free takes it."""
    repo, _, _, _ = _a_pack(tmp_path)
    openers = PackOpeners(repo.keys, 1)
    read: list[int] = []

    def counted() -> Iterator[bytes]:
        for n in range(10):
            read.append(n)
            yield b"x" * 1000

    try:
        busy = openers._idle.get()  # as if another thread's pack had it
        held: list[bytes] = []
        taken: list[int | None] = []
        with mock.patch.object(open_worker, "WAIT_AHEAD", 3000):
            waiting = threading.Thread(target=lambda: taken.append(openers._take(counted(), held)))
            waiting.start()
            waiting.join(timeout=0.5)
            assert waiting.is_alive() and len(held) == 3 and read == [0, 1, 2]
            openers._idle.put(busy)
            waiting.join(timeout=10)
        assert taken == [busy] and len(held) == 3
    finally:
        openers.close()


def test_a_ctrl_c_leaves_the_workers_to_the_pull(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the workers go on with the packs they have
    (the pull stops them), rather than die and have those packs opened again."""
    repo, pack, blobs, data = _a_pack(tmp_path)
    openers = PackOpeners(repo.keys, 1)
    try:
        assert openers.open(pack, blobs, pieces(data)) is True  # started, and serving
        os.kill(openers._workers[0].proc.pid, signal.SIGINT)
        assert openers.open(pack, blobs, pieces(data)) is True
    finally:
        openers.close()


def test_the_progress_of_a_pull_through_workers_adds_up(tmp_path: Path) -> None:
    """The bar moves as each pack goes to its worker (not a pack at a time, after it), and
    ends at the bytes downloaded, no more."""
    # (rules: an agent's content is read once more before, for the code it may carry)
    files = {f"rules/a{n}.md": os.urandom(200_000).hex() for n in range(6)}
    bars: dict[str, list[int]] = {}

    def progress(self: Reporter, description: str, total: int):  # type: ignore[no-untyped-def]
        steps = bars.setdefault(description, [total])
        return steps.append

    with mock.patch.object(Reporter, "progress", progress):
        pulled(tmp_path, files, True)
    total, *steps = bars["downloading"]
    assert steps and sum(steps) == total
