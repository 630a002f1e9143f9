"""Where the passphrase comes from (docs/CLI.md "Secrets without a terminal"), and whether a
new one is strong enough.

The key objects are readable by the storage provider, so a passphrase is only as good as
the number of Argon2id guesses it takes (0.2 s each on one core, far less on many): new
passphrases are rated by zxcvbn and weak ones refused.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from claude_sync.errors import ConfigError

ENV = "CLAUDE_SYNC_PASSPHRASE"
NEW_ENV = "CLAUDE_SYNC_NEW_PASSPHRASE"
#: "1" accepts weak new passphrases: for throw-away repositories and tests only.
ALLOW_WEAK_ENV = "CLAUDE_SYNC_ALLOW_WEAK_PASSPHRASE"
#: zxcvbn's "safely unguessable" against an offline attack on a slow hash (~10^10 guesses).
MIN_SCORE = 3
GENERATED_WORDS = 6
_taken: dict[str, str] = {}


def take_from_environment() -> None:
    """Move the passphrase variables out of os.environ, once, at start: no child process
    (git, ssh, a hook worker) ever inherits them."""
    for var in (ENV, NEW_ENV):
        value = os.environ.pop(var, None)
        if value:
            _taken[var] = value


def in_environment() -> bool:
    """Whether the environment (a variable or a file) answers the passphrase question."""
    take_from_environment()
    return ENV in _taken or bool(os.environ.get(f"{ENV}_FILE"))


def read_passphrase(passphrase_file: str | None, confirm: bool, new: bool = False) -> str:
    """The file given as an option, then the environment (the variable, then its _FILE),
    then a prompt; never waits on a standard input that is no tty. `new` reads a passphrase
    being introduced (key add, key passwd) from the NEW_ variables. A passphrase being
    chosen (confirm) must be strong."""
    take_from_environment()
    var = NEW_ENV if new else ENV
    text = (
        _from_file(passphrase_file) or _taken.get(var) or _from_file(os.environ.get(f"{var}_FILE"))
    )
    if text:
        if confirm:
            require_strong(text)
        return text
    if not sys.stdin.isatty():
        option = "--new-passphrase-file" if new else "--passphrase-file"
        raise ConfigError(
            f"a {'new ' if new else ''}passphrase is needed and there is no terminal to ask on: "
            f"set {var}_FILE (or {var}), or pass {option}"
        )
    hidden: dict[str, Any] = {"hide_input": True, "err": True}
    while True:
        text = click.prompt("New passphrase" if new else "Repository passphrase", **hidden)
        # Rated before it is repeated: nobody should type a refused passphrase twice.
        problem = weakness(text) if confirm else None
        if problem:
            click.echo(f"  {problem}", err=True)
            continue
        if not confirm or text == click.prompt("Repeat for confirmation", **hidden):
            return text
        click.echo("Error: The two entered values do not match.", err=True)


def _from_file(file: str | None) -> str | None:
    if not file:
        return None
    path = Path(file).expanduser()
    try:
        text = path.read_text().rstrip("\r\n")
        shared = os.name == "posix" and path.stat().st_mode & 0o077
    except OSError as exc:
        raise ConfigError(f"cannot read the passphrase file {file}: {exc.strerror}") from None
    if not text:
        raise ConfigError(f"the passphrase file {file} is empty")
    if shared:
        click.echo(
            f"warning: other users can read the passphrase file {file}: `chmod 600 {file}`",
            err=True,
        )
    return text


def weakness(passphrase: str) -> str | None:
    """Why a new passphrase is too weak, or None when it will do."""
    if os.environ.get(ALLOW_WEAK_ENV) == "1":
        return None
    from zxcvbn import zxcvbn  # only here: it loads its dictionaries on import

    # zxcvbn's matching grows fast with length; a passphrase this long is strong anyway.
    rating = zxcvbn(passphrase[:100])
    if rating["score"] >= MIN_SCORE:
        return None
    hint = rating.get("feedback", {}).get("warning") or "it is too easy to guess"
    return (
        f"this passphrase is too weak ({hint.rstrip('.')}): an attacker holding the "
        "repository could guess it; use four or more random words, or "
        "`claude-sync init --generate-passphrase` for one"
    )


def require_strong(passphrase: str) -> None:
    """Refuse a new passphrase `weakness` finds too weak, saying why."""
    problem = weakness(passphrase)
    if problem:
        raise ConfigError(problem)


def generate() -> str:
    """A diceware passphrase: six words from the EFF long list (7776 words), about 77 bits,
    drawn with the system's secure random source."""
    from xkcdpass import xkcd_password

    words = xkcd_password.generate_wordlist(
        wordfile=xkcd_password.locate_wordfile("eff-long"), min_length=1, max_length=20
    )
    return str(xkcd_password.generate_xkcdpassword(words, numwords=GENERATED_WORDS))
