"""The conflict prompt shown on a terminal (`--strategy ask`, the default)."""

from __future__ import annotations

import difflib
import json
from typing import Any

import click

from claude_sync import settings_trust
from claude_sync.merge import conflict_markers
from claude_sync.planner import Conflict
from claude_sync.terminal import clean, clean_value

MARKERS = (b"<<<<<<< ", b"\n=======\n", b">>>>>>> ")
CHOICES = {"l": "local", "r": "remote", "b": "both", "s": None}


def _diff(local: bytes, remote: bytes, path: str) -> str:
    lines = difflib.unified_diff(
        remote.decode(errors="replace").splitlines(keepends=True),
        local.decode(errors="replace").splitlines(keepends=True),
        fromfile=f"remote/{path}",
        tofile=f"local/{path}",
    )
    return "".join(lines) or "(no textual difference)\n"


def _edit(conflict: Conflict, local: bytes, remote: bytes, base: bytes | None) -> bytes | None:
    suffix = "." + conflict.path.rsplit(".", 1)[-1] if "." in conflict.path else ".txt"
    text = conflict_markers(local, remote, base).decode(errors="replace")
    edited = click.edit(text, extension=suffix, require_save=True)
    if edited is None:
        click.echo("Nothing saved; back to the question.", err=True)
        return None
    data = edited.encode()
    if any(marker in data for marker in MARKERS):
        click.echo("The file still has conflict markers; back to the question.", err=True)
        return None
    return data


def ask(conflict: Conflict, local: bytes, remote: bytes, base: bytes | None) -> str | bytes | None:
    """Ask on the terminal how to settle one conflict, until the user picks a side, a
    merge or to skip: the answer as `Reporter.resolve` returns it."""
    device = clean_value(conflict.remote_device) or "another machine"
    keys = f": {clean_value(', '.join(conflict.keys))}" if conflict.keys else ""
    click.echo(f"conflict: {conflict.path}{keys} changed here and on {device}", err=True)
    while True:
        choice = click.prompt(
            "  [l]ocal, [r]emote, [m]erge in $EDITOR, [b]oth (theirs saved beside), [d]iff, [s]kip",
            type=click.Choice(["l", "r", "m", "b", "d", "s"]),
            show_choices=False,
            err=True,
        )
        if choice == "d":
            click.echo(clean(_diff(local, remote, conflict.path)), err=True)
        elif choice == "m":
            merged = _edit(conflict, local, remote, base)
            if merged is not None:
                return merged
        else:
            return CHOICES[choice]


#: lines of a script or frontmatter shown before the rest is counted
SHOWN_LINES = 40


def _shown(value: Any) -> str:
    # JSON escapes every control character a hostile value might carry.
    if value is None:
        return "(not there)"
    more = ""
    if isinstance(value, list) and len(value) > SHOWN_LINES:
        more = f" (and {len(value) - SHOWN_LINES} more lines)"
        value = value[:SHOWN_LINES]
    # under the value's label (`    here: `), not at the margin
    return json.dumps(value, indent=2).replace("\n", "\n" + " " * 10) + more


def ask_trust(changes: dict[str, dict[str, tuple[Any, Any]]], device: str) -> bool:
    """Whether to apply changes to what runs or authorises code (code_trust.py), all at
    once: path -> part -> (here, incoming)."""
    who = clean_value(device) or "another machine"
    for path, parts in changes.items():
        what = "settings" if path == settings_trust.PATH else "parts"
        verb = "adds" if all(here is None for here, _ in parts.values()) else "changes"
        click.echo(f"{path} from {who} {verb} {what} that run or authorise code:", err=True)
        for key, (here, there) in parts.items():
            click.echo(
                f"  {json.dumps(key)}\n    here: {_shown(here)}\n    new:  {_shown(there)}",
                err=True,
            )
    click.echo("Anyone who can write to the repository could have made these changes.", err=True)
    many = f"all {len(changes)} of them" if len(changes) > 1 else "it"
    return click.confirm(
        f"Apply {many}? (no: keep yours; they wait for `claude-sync resolve`)",
        default=False,
        err=True,
    )
