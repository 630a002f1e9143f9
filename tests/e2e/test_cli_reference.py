"""docs/CLI.md is the command-line reference: every command and option the CLI offers is in it.

The help texts are read in-process (the cli_inprocess fixture): a new Python per command only
cost time."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Outcome

REFERENCE = (Path(__file__).resolve().parents[2] / "docs" / "CLI.md").read_text()


@pytest.fixture
def help_of(cli_inprocess: Callable[..., Outcome]) -> Callable[..., str]:
    def read(*command: str) -> str:
        code, stdout, stderr = cli_inprocess(*command, "--help")
        assert code == 0, stderr
        return stdout

    return read


def listed(help_text: str, section: str) -> list[str]:
    """The first words of the rows of a help section ("Commands:", "Options:")."""
    body = help_text.split(f"\n{section}\n", 1)[1]
    return re.findall(r"^  (\S+)", body.split("\n\n", 1)[0], flags=re.MULTILINE)


def test_every_command_has_an_entry(help_of: Callable[..., str]) -> None:
    commands = listed(help_of(), "Commands:")
    assert len(commands) > 20
    missing = [c for c in commands if f"- **`{c}" not in REFERENCE]
    assert missing == []
    for sub in listed(help_of("key"), "Commands:"):
        assert re.search(rf"\*\*`key [^`]*\b{sub}\b", REFERENCE), sub


def test_every_option_is_named(help_of: Callable[..., str]) -> None:
    commands = listed(help_of(), "Commands:")
    missing = set()
    for command in [*commands, "key add", "key passwd"]:
        for option in listed(help_of(*command.split()), "Options:"):
            name = option.rstrip(",")
            if name.startswith("--") and f"`{name}" not in REFERENCE:
                missing.add(f"{command} {name}")
    assert sorted(missing) == []


def test_every_commands_description_reads_as_wrapped_prose(help_of: Callable[..., str]) -> None:
    """The description above the examples is re-wrapped by Click: an indent left on the
    docstring's lines came out as runs of spaces in the middle of sentences."""
    ragged = []
    for command in listed(help_of(), "Commands:"):
        text = help_of(command).split("Examples:")[0].split("Options:")[0]
        ragged += [
            f"{command}: {line}" for line in text.splitlines() if re.search(r"\S {2,}\S", line)
        ]
    assert ragged == []
