"""Benchmark of the session catalog and lazy pull (issue 17), claude-sync only.

A ~/.claude with N sessions (default 5,000) whose last records are spread over three years
(most older than Claude Code's 30-day clean-up period) is pushed to a folder repository;
then, each on a fresh machine (its own HOME, different from the source's):

* `init` + `pull` (lazy: sessions updated within 30 days) against `init` + `pull --all`:
  seconds, bytes downloaded, files written;
* `sessions --json` listing all N sessions: seconds (best of 3), and that no transcript
  was downloaded for it;
* `resume --print` of the largest session older than the window: seconds.

    .venv/bin/python bench/sessions.py --sessions 5000 --out bench/SESSIONS.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate

PASSPHRASE = "bench passphrase"
DAY = 86400
YEARS = 3


def write_sessions(home: Path, count: int, seed: int) -> int:
    """count transcripts, a few KB to a few hundred KB, last updated over three years."""
    rng = random.Random(seed)
    material = generate.Material(seed)
    now = time.time()
    projects = [f"{home}/code/{name}-{i:02d}" for i, name in enumerate(("api", "web", "app") * 8)]
    total = 0
    for _ in range(count):
        cwd = rng.choice(projects)
        session = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        size = max(2_000, int(min(rng.lognormvariate(9.3, 1.2), 3e6)))
        rel = f"projects/{generate.encode_project(cwd)}/{session}.jsonl"
        spec = generate.FileSpec(rel, "transcript", size, rng.getrandbits(63), session, cwd)
        writer = generate.Writer(material, spec)
        end = now - rng.random() * YEARS * 365 * DAY
        writer.clock = end - 3600  # the records' times: an hour or so before `end`
        path = home / ".claude" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            writer.jsonl(fh)
        os.utime(path, (writer.clock, writer.clock))
        total += path.stat().st_size
    return total


def claude_sync(home: Path, *args: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CLAUDE_"))}
    env |= {"HOME": str(home), "CLAUDE_SYNC_PASSPHRASE": PASSPHRASE}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "claude_sync", *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"claude-sync {' '.join(args)} failed: {proc.stderr.strip()}")
    return took, proc.stdout


def fresh_pull(root: Path, name: str, repo: Path, *extra: str) -> tuple[float, int, int]:
    home = root / "home" / name
    (home / "code").mkdir(parents=True)
    took_init, _ = claude_sync(home, "init", str(repo))
    took_pull, out = claude_sync(home, "pull", "--json", *extra)
    result = json.loads(out)
    return took_init + took_pull, result["downloaded_bytes"], len(result["pulled"])


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="claude-sync-sessions-", dir=args.workdir))
    try:
        source = root / "Users" / "ann"
        start = time.perf_counter()
        total = write_sessions(source, args.sessions, args.seed)
        took = time.perf_counter() - start
        print(f"generated {args.sessions} sessions, {mib(total)} in {took:.1f} s")
        repo = root / "repository"
        claude_sync(source, "init", str(repo), "--create")
        push, _ = claude_sync(source, "push")
        print(f"initial push: {push:.1f} s")
        lazy = fresh_pull(root, "lazy", repo)
        full = fresh_pull(root, "full", repo, "--all")
        lister = root / "home" / "lazy"
        listing = []
        for _ in range(3):
            took, out = claude_sync(lister, "sessions", "--json")
            listing.append(took)
        listed = json.loads(out)
        remote = [s for s in listed if not s["local"]]
        oldest_big = max(remote, key=lambda s: s["bytes"])
        (lister / Path(oldest_big["cwd"]).relative_to(source)).mkdir(parents=True)
        resume, _ = claude_sync(lister, "resume", oldest_big["id"], "--print")
        rows = [
            "| measurement | result |",
            "|---|---|",
            f"| sessions, bytes | {args.sessions}, {mib(total)} |",
            f"| init + pull (lazy, 30 days) | {lazy[0]:.2f} s, {mib(lazy[1])} downloaded, "
            f"{lazy[2]} files |",
            f"| init + pull --all | {full[0]:.2f} s, {mib(full[1])} downloaded, {full[2]} files |",
            f"| sessions --json ({len(listed)} listed, {len(remote)} remote-only) | "
            f"{min(listing):.2f} s best of 3 (goal < 1 s) |",
            f"| resume --print of a {mib(oldest_big['bytes'])} remote-only session | "
            f"{resume:.2f} s |",
        ]
        report = "\n".join(rows) + "\n"
        print(report)
        if args.out:
            args.out.write_text(
                f"# Session catalog and lazy pull\n\n`{' '.join(sys.argv)}` on a folder "
                f"repository, {os.cpu_count()} cores.\n\n{report}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
