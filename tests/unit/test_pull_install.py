"""A pull never overwrites or deletes a local file that changed after the scan that planned
it: the engine in-process, two machines sharing one in-memory repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from memory_store import MemoryStore

from claude_sync.engine import Engine
from claude_sync.repository import Repository
from claude_sync.resources import select
from claude_sync.state import State

AGENT = "agents/x.md"


class Machines:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store = MemoryStore()
        self.master = Repository.create(self.store, None).keys.master

    def root(self, m: int) -> Path:
        return self.tmp / f"m{m}" / ".claude"

    def run(self, m: int, action: str) -> object:
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

    def write(self, m: int, text: str) -> None:
        path = self.root(m) / AGENT
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[Machines]:
    pair = Machines(tmp_path)
    pair.write(0, "first\n")
    pair.run(0, "push")
    pair.run(1, "pull")
    yield pair


def edited_during_install(pair: Machines, m: int, text: str) -> mock._patch:  # type: ignore[type-arg]
    """The user saves the file after the pull planned, just before it installs."""
    install = Engine._install

    def racing(engine: Engine, *args: object) -> None:
        pair.write(m, text)
        install(engine, *args)  # type: ignore[arg-type]

    return mock.patch.object(Engine, "_install", racing)


def test_a_file_edited_during_the_pull_is_not_overwritten(machines: Machines) -> None:
    machines.write(0, "second, from m0\n")
    machines.run(0, "push")
    with edited_during_install(machines, 1, "edited on m1 meanwhile\n"):
        result = machines.run(1, "pull")
    assert (machines.root(1) / AGENT).read_text() == "edited on m1 meanwhile\n"
    assert AGENT in result.skipped and AGENT not in result.pulled  # type: ignore[attr-defined]


def test_a_file_edited_during_the_pull_is_not_deleted(machines: Machines) -> None:
    (machines.root(0) / AGENT).unlink()
    machines.run(0, "push")
    with edited_during_install(machines, 1, "edited on m1 meanwhile\n"):
        result = machines.run(1, "pull")
    assert (machines.root(1) / AGENT).read_text() == "edited on m1 meanwhile\n"
    assert AGENT not in result.deleted  # type: ignore[attr-defined]
