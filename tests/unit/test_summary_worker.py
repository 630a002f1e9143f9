"""A push that reads many transcript bytes summarizes them in a worker process (the summaries'
regex passes would hold the interpreter lock the scan's threads need): the worker's summaries
are the ones the push would make itself, it is given no secret, and a worker that stops only
sends the work back to the push."""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines
from memory_store import MemoryStore

from claude_sync import reading as reading_module
from claude_sync.chunking import Chunker
from claude_sync.repository import Repository
from claude_sync.session_policy import SessionPolicy
from claude_sync.summary_worker import SummaryWorker

PROJECT = "projects/-home-u-app"


def transcript(rng: random.Random, records: int, title: str | None = None) -> str:
    lines = [
        {
            "type": "user",
            "cwd": "/home/u/app",
            "timestamp": "2026-11-30T10:00:00Z",
            "message": {"role": "user", "content": f"first prompt {rng.random()}"},
        }
    ]
    for i in range(records):
        lines.append(
            {
                "type": "assistant",
                "timestamp": f"2026-11-30T10:{i % 60:02d}:00Z",
                "gitBranch": "main",
                "message": {"content": rng.randbytes(300).hex()},
            }
        )
        if title is not None and i == records // 2:
            lines.append({"type": "custom-title", "customTitle": title})
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_the_worker_summarizes_as_the_push_would(tmp_path: Path) -> None:
    rng = random.Random(1)
    repo = Repository.create(MemoryStore(), None)
    chunker = Chunker(repo.config.chunker)
    worker = SummaryWorker()
    try:
        asked = []
        for n, (records, title) in enumerate([(10, None), (2000, "Fix the login"), (5, "x")]):
            path = f"{PROJECT}/{n:08x}-0000-4000-8000-000000000000.jsonl"
            file = tmp_path / f"{n}.jsonl"
            file.write_text(transcript(rng, records, title))
            _, chunks = chunker.digest_file(file, repo.keys.blob_id)
            asked.append((path, str(file), chunks))
        futures = [worker.submit(p, f, c, "dev", None) for p, f, c in asked]
        for (path, file, chunks), future in zip(asked, futures, strict=True):
            here = SessionPolicy.summary(path, file, chunks, "dev")
            assert future.result(timeout=30) == here
            assert here[0] is not None
        # A mark from the last push: the worker resumes from it as the push would.
        path, file, chunks = asked[1]
        _, mark = SessionPolicy.summary(path, file, chunks, "dev")
        with open(file, "a") as fh:
            fh.write(transcript(rng, 50))
        _, grown = chunker.digest_file(file, repo.keys.blob_id)
        here = SessionPolicy.summary(path, file, grown, "dev", mark)
        assert worker.submit(path, file, grown, "dev", mark).result(timeout=30) == here
    finally:
        worker.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_worker_is_given_no_secret() -> None:
    secrets = {"AWS_SECRET_ACCESS_KEY": "sentinel-aws", "CLAUDE_SYNC_PASSPHRASE": "sentinel-pass"}
    with mock.patch.dict(os.environ, secrets):
        worker = SummaryWorker()
    try:
        environ = Path(f"/proc/{worker._proc.pid}/environ").read_bytes()
        assert b"sentinel" not in environ
    finally:
        worker.close()


def pushed_summaries(tmp: Path, texts: dict[str, str], dies: bool) -> dict[str, object]:
    """Push texts through a summary worker (that dies at once, if asked): the summaries the
    snapshot lists."""
    pair = EngineMachines(tmp)
    for path, text in texts.items():
        pair.write(0, path, text)
    submit = SummaryWorker.submit
    calls = []

    def submitted(worker: SummaryWorker, *args: object) -> object:
        calls.append(args[0])
        if dies:
            worker._proc.kill()
            worker._proc.wait()
        return submit(worker, *args)  # type: ignore[arg-type]

    with (
        mock.patch.object(reading_module, "OFFLOAD_SUMMARIES", 1),
        mock.patch.object(reading_module, "OFFLOAD_FILE", 1),
        mock.patch.object(SummaryWorker, "submit", submitted),
    ):
        pair.run(0, "push")
    assert sorted(calls) == sorted(texts)
    files = Repository.open(pair.store, pair.master).load_snapshot(1).files
    return {p: files[p].session for p in texts}


def test_a_push_summarizes_in_the_worker_and_without_it_alike(tmp_path: Path) -> None:
    """Both machines push the same transcripts, one through the worker, one whose worker
    dies at once: the summaries listed are the same (the second made them itself)."""
    rng = random.Random(2)
    texts = {
        f"{PROJECT}/{n:08x}-0000-4000-8000-000000000000.jsonl": transcript(
            rng, 400 + n, "Titled" if n % 2 else None
        )
        for n in range(6)
    }
    through = pushed_summaries(tmp_path / "a", texts, dies=False)
    without = pushed_summaries(tmp_path / "b", texts, dies=True)
    assert through == without
    assert all(s is not None and s.records > 400 for s in through.values())  # type: ignore[attr-defined]


def test_a_push_does_not_wait_for_ever_on_a_hung_worker(tmp_path: Path) -> None:
    """A worker that never answers is taken for hung after SUMMARY_WAIT and killed; the
    push makes the summaries itself."""
    rng = random.Random(4)
    texts = {
        f"{PROJECT}/{n:08x}-0000-4000-8000-000000000000.jsonl": transcript(rng, 300)
        for n in range(3)
    }
    pair = EngineMachines(tmp_path)
    for path, text in texts.items():
        pair.write(0, path, text)
    hung = (sys.executable, "-c", "import time; time.sleep(60)")
    started = time.monotonic()
    with (
        mock.patch.object(reading_module, "OFFLOAD_SUMMARIES", 1),
        mock.patch.object(reading_module, "OFFLOAD_FILE", 1),
        mock.patch.object(reading_module, "SUMMARY_WAIT", 0.5),
        mock.patch.object(SummaryWorker, "command", hung),
    ):
        pair.run(0, "push")
    assert time.monotonic() - started < 20
    files = Repository.open(pair.store, pair.master).load_snapshot(1).files
    assert all(files[p].session is not None and files[p].session.records == 301 for p in texts)
