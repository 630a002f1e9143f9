"""Machines that run the engine in-process, sharing one in-memory repository: for tests of
what happens between the engine's steps (a file edited after the scan), which a CLI
subprocess cannot reach."""

from __future__ import annotations

from pathlib import Path

from memory_store import MemoryStore

from claude_sync.engine import Engine, Result
from claude_sync.repository import Repository
from claude_sync.resources import select
from claude_sync.state import State


class EngineMachines:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store = MemoryStore()
        self.master = Repository.create(self.store, None).keys.master

    def root(self, m: int) -> Path:
        """Machine m's Claude folder."""
        return self.tmp / f"m{m}" / ".claude"

    def run(self, m: int, action: str) -> Result:
        """A push or a pull of everything on machine m."""
        self.root(m).mkdir(parents=True, exist_ok=True)
        (self.tmp / f"m{m}-work").mkdir(exist_ok=True)
        repo = Repository.open(self.store, self.master)
        engine = Engine(
            self.root(m), repo, State(self.tmp / f"m{m}.db"), f"m{m}", self.tmp / f"m{m}-work"
        )
        try:
            return engine.push(select([], {})) if action == "push" else engine.pull(select([], {}))
        finally:
            engine.state.close()

    def write(self, m: int, rel: str, text: str) -> None:
        path = self.root(m) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def read(self, m: int, rel: str) -> str:
        return (self.root(m) / rel).read_text()
