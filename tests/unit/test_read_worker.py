"""A push that reads thousands of small files reads them in worker processes: what it pushes
is what it would push reading them itself (content, chunks, summaries, what it skips), the
sealed chunks open on another machine, a file changed since the walk is read again, a worker
that dies or hangs only sends the reading back, and no secret reaches a worker's environment
or arguments."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_store import MemoryStore

from claude_sync import identity, read_worker
from claude_sync import reading as reading_module
from claude_sync import scanner as scanner_module
from claude_sync.crypto import KeyRing
from claude_sync.merge import split_unfinished
from claude_sync.read_worker import ReadWorkers
from claude_sync.repository import Repository

PROJECT = "projects/-home-u-app"
F_SETPIPE_SZ = 1031  # fcntl's, Linux


def worker_setup(keys: KeyRing) -> dict[str, object]:
    """What a push hands its read workers (FileReader.read_workers), for a repository's keys."""
    return {
        "keys": keys.handover(),
        "chunker": {"min_size": 131072, "avg_size": 524288, "max_size": 8388608, "seed": 1},
        "device": "d",
        "block": 65536,
    }


def session(n: int) -> str:
    return f"{PROJECT}/{n:08x}-0000-4000-8000-000000000000.jsonl"


def record(rng: random.Random, i: int) -> str:
    kind = rng.choice(["user", "assistant"])
    body = {
        "type": kind,
        "uuid": f"u{i}",
        "cwd": "/home/u/app",
        "timestamp": f"2026-11-30T10:{i % 60:02d}:00Z",
        "message": {"role": kind, "content": f"prompt {rng.random()} " * rng.randint(1, 40)},
    }
    return json.dumps(body)


def tree(seed: int) -> dict[str, str]:
    """Small files of every kind a scan reads differently: transcripts (some ending in a
    record still being written, one with nothing else), sub-agent transcripts, JSON that
    parses and JSON caught mid-write, and plain text."""
    rng = random.Random(seed)
    files: dict[str, str] = {}
    for n in range(rng.randint(3, 12)):
        lines = [record(rng, i) for i in range(rng.randint(1, 30))]
        text = "".join(line + "\n" for line in lines)
        if rng.random() < 0.3:
            text += record(rng, 99)[: rng.randint(1, 40)]  # being written
        files[session(n)] = text
        if rng.random() < 0.4:
            files[f"{session(n)[:-6]}/subagents/agent-{n}.jsonl"] = record(rng, n) + "\n"
    files[session(200)] = record(rng, 1)[:30]  # nothing but a record being written
    files["agents/helper.md"] = "# helper\n" * rng.randint(1, 500)
    files["settings.json"] = json.dumps({"model": "x", "n": rng.random()})
    files["commands/broken.json"] = '{"half": '
    return files


def push(tmp: Path, files: dict[str, str], workers: bool) -> tuple[EngineMachines, object]:
    pair = EngineMachines(tmp)
    for path, text in files.items():
        pair.write(0, path, text)
    # Batches of 4: several in flight on each worker, answered in turn.
    with (
        mock.patch.object(reading_module, "WORKER_FILES", 1 if workers else 10**9),
        mock.patch.object(scanner_module, "READ_BATCH", 4),
    ):
        result = pair.run(0, "push")
    return pair, result


def pushed_through_workers(tmp: Path, files: dict[str, str]) -> tuple[EngineMachines, object]:
    """push, asserting that the workers read every file but settings.json (whose paths are
    mapped: its logical form is made by the push)."""
    read, answered = ReadWorkers.read, []

    def counted(self: ReadWorkers, asked: list) -> list:  # type: ignore[type-arg]
        answers = read(self, asked)
        answered.extend(f.path for f in asked)
        # Summarized there, not again here.
        assert all(
            a.summary for f, a in zip(asked, answers, strict=True) if f.summarize and a.chunks
        )
        return answers

    with mock.patch.object(ReadWorkers, "read", counted):
        done = push(tmp, files, workers=True)
    assert sorted(answered) == sorted(set(files) - {"settings.json"})
    return done


def listed(pair: EngineMachines) -> dict[str, tuple[object, ...]]:
    """What the head lists of each file, but for the ids (each repository has its own key:
    only their kind is compared): size, mode, chunk lengths, and its summary."""
    files = Repository.open(pair.store, pair.master).load_snapshot(1).files
    return {
        p: (e.sha256[:3], e.size, e.mode, [n for _, n in e.chunks], e.session)
        for p, e in files.items()
    }


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1))
def test_workers_push_what_the_push_would_read_itself(tmp_path_factory, seed: int) -> None:
    files = tree(seed)
    through, r1 = pushed_through_workers(tmp_path_factory.mktemp("w"), files)
    itself, r2 = push(tmp_path_factory.mktemp("s"), files, workers=False)
    assert listed(through) == listed(itself), f"seed {seed}"
    assert sorted(r1.warnings) == sorted(r2.warnings), f"seed {seed}"  # type: ignore[attr-defined]
    assert any("not valid JSON" in w for w in r1.warnings)  # type: ignore[attr-defined]
    # The sealed chunks open on another machine, as the files pushed.
    through.run(1, "pull")
    for path in listed(through):
        pushed = (through.root(0) / path).read_bytes()
        if path.endswith(".jsonl"):
            pushed = split_unfinished(pushed)[0]  # a record being written waits
        assert (through.root(1) / path).read_bytes() == pushed, f"seed {seed}"


def test_a_file_that_changed_while_a_worker_read_it_is_read_again_here(tmp_path: Path) -> None:
    """A worker's answer whose stat is not the walk's (the file changed while it was read:
    its bytes and its stat may not belong together) is not used: the push reads the file
    itself, as it would without workers."""
    files = {session(n): record(random.Random(n), n) + "\n" for n in range(4)}
    pair = EngineMachines(tmp_path)
    for path, text in files.items():
        pair.write(0, path, text)
    read = ReadWorkers.read

    def torn(self: ReadWorkers, asked: list) -> list:  # type: ignore[type-arg]
        answers = read(self, asked)
        return [
            a._replace(stat=(a.stat[0] + 1, *a.stat[1:]), sha256="0" * 64)
            if f.path == session(2)
            else a
            for f, a in zip(asked, answers, strict=True)
        ]

    with (
        mock.patch.object(reading_module, "WORKER_FILES", 1),
        mock.patch.object(ReadWorkers, "read", torn),
    ):
        pair.run(0, "push")
    repo = Repository.open(pair.store, pair.master)
    entry = repo.load_snapshot(1).files[session(2)]
    assert entry.sha256 == identity.of(repo.keys.file_hash, files[session(2)].encode())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sets pipe sizes (Linux)")
def test_batches_in_flight_never_wait_on_each_other(tmp_path: Path) -> None:
    """Several threads hand a worker batches while it answers earlier ones: with small
    pipes (4 KiB, as on Windows) a sender blocked writing while holding the lock the
    collector needed stopped every push for good."""
    folder = tmp_path / ("d" * 40)
    folder.mkdir()
    asked = []
    for i in range(64):
        path = folder / f"{i:04d}{'x' * 60}.txt"
        path.write_bytes(random.Random(i).randbytes(60_000))
        asked.append(read_worker.FileToRead(str(path), f"agents/{i}.md", 60_000, None, False))
    setup = worker_setup(Repository.create(MemoryStore(), None).keys)
    import fcntl  # Linux only, as the test

    workers = ReadWorkers(setup, 2)
    try:
        for worker in workers._workers:
            for pipe in (worker.proc.stdin, worker.proc.stdout):
                fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, 4096)  # type: ignore[union-attr]
        done: list[int] = []

        def send() -> None:
            for _ in range(50):
                done.append(len(workers.read(asked)))

        # Daemon threads, not a pool: a deadlock must fail the test, not hang the suite.
        senders = [threading.Thread(target=send, daemon=True) for _ in range(4)]
        for thread in senders:
            thread.start()
        deadline = time.monotonic() + 60
        for thread in senders:
            thread.join(timeout=max(0, deadline - time.monotonic()))
        assert done == [64] * 200
    finally:
        workers.stop()
        workers.close()


@pytest.mark.parametrize(
    "command",
    [(sys.executable, "-c", "pass"), (sys.executable, "-c", "import time; time.sleep(60)")],
    ids=["dies", "hangs"],
)
def test_a_worker_that_fails_sends_the_reading_back(tmp_path: Path, command) -> None:  # type: ignore[no-untyped-def]
    files = tree(7)
    started = time.monotonic()
    with (
        mock.patch.object(ReadWorkers, "command", command),
        mock.patch.object(read_worker, "READ_WAIT", 0.5),
    ):
        failed, _ = push(tmp_path / "f", files, workers=True)
    assert time.monotonic() - started < 30
    itself, _ = push(tmp_path / "s", files, workers=False)
    assert listed(failed) == listed(itself)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_keys_reach_a_worker_only_on_its_input(tmp_path: Path) -> None:
    pair = EngineMachines(tmp_path)
    keys = Repository.open(pair.store, pair.master).keys
    secrets = {"AWS_SECRET_ACCESS_KEY": "sentinel-aws", "CLAUDE_SYNC_PASSPHRASE": "sentinel-pass"}
    setup = worker_setup(keys)
    with mock.patch.dict(os.environ, secrets):
        workers = ReadWorkers(setup, 1)
    try:
        pid = workers._workers[0].proc.pid
        seen = Path(f"/proc/{pid}/environ").read_bytes() + Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"sentinel" not in seen
        assert keys.master.hex().encode() not in seen and keys.master not in seen
    finally:
        workers.close()
