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

    def state_path(self, m: int) -> Path:
        """Machine m's state database."""
        return self.tmp / f"m{m}.db"

    def engine(self, m: int) -> Engine:
        """An engine for machine m, as a command opens one (the caller closes its state)."""
        self.root(m).mkdir(parents=True, exist_ok=True)
        (self.tmp / f"m{m}-work").mkdir(exist_ok=True)
        repo = Repository.open(self.store, self.master)
        return Engine(
            self.root(m), repo, State(self.state_path(m)), f"m{m}", self.tmp / f"m{m}-work"
        )

    def run(self, m: int, action: str) -> Result:
        """A push or a pull of everything on machine m."""
        engine = self.engine(m)
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
