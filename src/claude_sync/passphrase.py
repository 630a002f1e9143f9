"""Where the passphrase comes from (CONTRACT.md "Secrets without a terminal")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from claude_sync.errors import ConfigError


def read_passphrase(passphrase_file: str | None, confirm: bool) -> str:
    """Environment, then file, then a prompt; never waits on a standard input that is no tty."""
    env = os.environ.get("CLAUDE_SYNC_PASSPHRASE")
    if env:
        return env
    file = passphrase_file or os.environ.get("CLAUDE_SYNC_PASSPHRASE_FILE")
    if file:
        try:
            text = Path(file).expanduser().read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read the passphrase file {file}: {exc.strerror}") from None
        if not text:
            raise ConfigError(f"the passphrase file {file} is empty")
        return text
    if not sys.stdin.isatty():
        raise ConfigError(
            "a passphrase is needed and there is no terminal to ask on: set "
            "CLAUDE_SYNC_PASSPHRASE or CLAUDE_SYNC_PASSPHRASE_FILE, or pass --passphrase-file"
        )
    while True:
        text: str = click.prompt(
            "Repository passphrase", hide_input=True, confirmation_prompt=confirm, err=True
        )
        if text:
            return text
