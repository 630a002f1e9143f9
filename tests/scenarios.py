"""A realistic ~/.claude and a pair of machines sharing a folder repository: the scenario
several end-to-end test files start from."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from conftest import Machine, snapshot_tree, transcript

SENTINEL = "SENTINEL-0f3c9a7e-credentials-must-never-leave"
PROJECT = "-home-ann-code-app"


def populate(m: Machine) -> dict[str, str]:
    """A realistic ~/.claude with synced and never-synced files; returns some identifiers."""
    session = str(uuid.uuid4())
    agent = str(uuid.uuid4())
    # Older than a day, but younger than Claude Code's clean-up period: a pull keeps it (an
    # older one gets a fresh mtime, e2e/test_sessions.py).
    old = int(time.time()) - 86400
    m.write(f"projects/{PROJECT}/{session}.jsonl", transcript(session, 200), mtime=old)
    m.write(f"projects/{PROJECT}/{session}/subagents/agent-{agent}.jsonl", transcript(agent, 5))
    m.write(f"projects/{PROJECT}/{session}/subagents/agent-{agent}.meta.json", '{"a": 1}')
    m.write(f"projects/{PROJECT}/{session}/tool-results/r1.txt", "tool output " * 100)
    m.write(f"projects/{PROJECT}/memory/notes.md", "# memory\nuse pytest\n")
    m.write(
        "history.jsonl", json.dumps({"display": "hi", "timestamp": 1, "sessionId": session}) + "\n"
    )
    m.write("settings.json", '{"model": "opus", "hooks": {}}\n')
    m.write("CLAUDE.md", "Be terse.\n")
    m.write("agents/reviewer.md", "---\nname: reviewer\n---\nReview code.\n")
    m.write("commands/deploy.md", "Deploy it.\n")
    m.write("skills/pdf/SKILL.md", "---\nname: pdf\n---\n")
    m.write("rules/style.md", "No tabs.\n")
    m.write("output-styles/terse.md", "Terse.\n")
    m.write("plugins/installed_plugins.json", "{}\n")
    m.write("plugins/known_marketplaces.json", "{}\n")
    # Never synced:
    m.write(".credentials.json", json.dumps({"token": SENTINEL}))
    m.write("settings.local.json", json.dumps({"token": SENTINEL}))
    m.write("statsig/cache", SENTINEL)
    m.write("shell-snapshots/snap.sh", SENTINEL)
    m.write("todos/t.json", SENTINEL)
    m.write("plugins/cache/x/plugin.json", SENTINEL)
    m.write("agents/empty.md", "")
    (m.home / ".claude.json").write_text(SENTINEL)
    outside = m.home / "outside-secret.md"
    outside.write_text(SENTINEL)
    (m.claude / "agents" / "link-out.md").symlink_to(outside)
    (m.claude / "agents" / "link-in.md").symlink_to(m.claude / "CLAUDE.md")
    return {"session": session, "agent": agent}


SYNCED_MISSING = {  # present on A, must not appear on B
    ".credentials.json",
    "settings.local.json",
    "statsig/cache",
    "shell-snapshots/snap.sh",
    "todos/t.json",
    "plugins/cache/x/plugin.json",
    "agents/empty.md",
    "agents/link-out.md",
}


def set_up_pair(a: Machine, b: Machine, repo: Path) -> None:
    a.run("init", str(repo), "--create")
    a.run("push")
    b.run("init", str(repo))


def synced_view(m: Machine) -> dict[str, tuple[bytes, int]]:
    return {p: v for p, v in snapshot_tree(m.claude).items() if p not in SYNCED_MISSING}
