"""A pull never overwrites or deletes a local file that changed after the scan that planned
it: the engine in-process, two machines sharing one in-memory repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines

from claude_sync.engine import Engine

AGENT = "agents/x.md"


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[EngineMachines]:
    pair = EngineMachines(tmp_path)
    pair.write(0, AGENT, "first\n")
    pair.run(0, "push")
    pair.run(1, "pull")
    yield pair


def edited_during_install(pair: EngineMachines, m: int, text: str) -> mock._patch:  # type: ignore[type-arg]
    """The user saves the file after the pull planned, just before it installs."""
    install = Engine._install

    def racing(engine: Engine, *args: object) -> None:
        pair.write(m, AGENT, text)
        install(engine, *args)  # type: ignore[arg-type]

    return mock.patch.object(Engine, "_install", racing)


def test_a_file_edited_during_the_pull_is_not_overwritten(machines: EngineMachines) -> None:
    machines.write(0, AGENT, "second, from m0\n")
    machines.run(0, "push")
    with edited_during_install(machines, 1, "edited on m1 meanwhile\n"):
        result = machines.run(1, "pull")
    assert (machines.root(1) / AGENT).read_text() == "edited on m1 meanwhile\n"
    assert AGENT in result.skipped and AGENT not in result.pulled  # type: ignore[attr-defined]


def test_a_file_edited_during_the_pull_is_not_deleted(machines: EngineMachines) -> None:
    (machines.root(0) / AGENT).unlink()
    machines.run(0, "push")
    with edited_during_install(machines, 1, "edited on m1 meanwhile\n"):
        result = machines.run(1, "pull")
    assert (machines.root(1) / AGENT).read_text() == "edited on m1 meanwhile\n"
    assert AGENT not in result.deleted  # type: ignore[attr-defined]
