"""Where the passphrase comes from (CONTRACT.md "Secrets without a terminal")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from claude_sync.errors import ConfigError


def read_passphrase(passphrase_file: str | None, confirm: bool, new: bool = False) -> str:
    """Environment, then file, then a prompt; never waits on a standard input that is no tty.
    `new` reads a passphrase being introduced (key add, key passwd) from the NEW_ variables."""
    var = "CLAUDE_SYNC_NEW_PASSPHRASE" if new else "CLAUDE_SYNC_PASSPHRASE"
    env = os.environ.get(var)
    if env:
        return env
    file = passphrase_file or os.environ.get(f"{var}_FILE")
    if file:
        try:
            text = Path(file).expanduser().read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read the passphrase file {file}: {exc.strerror}") from None
        if not text:
            raise ConfigError(f"the passphrase file {file} is empty")
        return text
    if not sys.stdin.isatty():
        option = "--new-passphrase-file" if new else "--passphrase-file"
        raise ConfigError(
            f"a {'new ' if new else ''}passphrase is needed and there is no terminal to ask on: "
            f"set {var} or {var}_FILE, or pass {option}"
        )
    while True:
        text: str = click.prompt(
            "New passphrase" if new else "Repository passphrase",
            hide_input=True,
            confirmation_prompt=confirm,
            err=True,
        )
        if text:
            return text
