"""docs/CLI.md is the command-line reference: every command and option the CLI offers is in it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REFERENCE = (Path(__file__).resolve().parents[2] / "docs" / "CLI.md").read_text()


def help_of(*command: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "claude_sync", *command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return proc.stdout


def listed(help_text: str, section: str) -> list[str]:
    """The first words of the rows of a help section ("Commands:", "Options:")."""
    body = help_text.split(f"\n{section}\n", 1)[1]
    return re.findall(r"^  (\S+)", body.split("\n\n", 1)[0], flags=re.MULTILINE)


def test_every_command_has_an_entry() -> None:
    commands = listed(help_of(), "Commands:")
    assert len(commands) > 20
    missing = [c for c in commands if f"- **`{c}" not in REFERENCE]
    assert missing == []
    for sub in listed(help_of("key"), "Commands:"):
        assert re.search(rf"\*\*`key [^`]*\b{sub}\b", REFERENCE), sub


def test_every_option_is_named() -> None:
    commands = listed(help_of(), "Commands:")
    missing = set()
    for command in [*commands, "key add", "key passwd"]:
        for option in listed(help_of(*command.split()), "Options:"):
            name = option.rstrip(",")
            if name.startswith("--") and f"`{name}" not in REFERENCE:
                missing.add(f"{command} {name}")
    assert sorted(missing) == []


def test_every_commands_description_reads_as_wrapped_prose() -> None:
    """The description above the examples is re-wrapped by Click: an indent left on the
    docstring's lines came out as runs of spaces in the middle of sentences."""
    ragged = []
    for command in listed(help_of(), "Commands:"):
        text = help_of(command).split("Examples:")[0].split("Options:")[0]
        ragged += [
            f"{command}: {line}" for line in text.splitlines() if re.search(r"\S {2,}\S", line)
        ]
    assert ragged == []
