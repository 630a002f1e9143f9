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


#: lines of a script or frontmatter shown before the rest is counted; of a changed one, the
#: lines of its changes (with a few around each), of which at most REMOVED_SHOWN taken away
#: in a row: what is new is what the question is about
SHOWN_LINES = 40
SHOWN_CHANGES = 120
REMOVED_SHOWN = 5
#: lines between the first and the last change, past which they are not compared line by
#: line (a comparison costs their product: a planted file of 20,000 lines held up a pull
#: for a minute) but the new ones shown from the first change on
COMPARED_LINES = 2000


def _read_whole(seq: int) -> str:
    return (
        f"answer no, and read it whole with `claude-sync restore PATH --snapshot {seq} "
        "--target DIR`"
    )


def _shown(value: Any, seq: int) -> str:
    # JSON escapes every control character a hostile value might carry.
    if value is None:
        return "(not there)"
    more = ""
    if isinstance(value, list) and len(value) > SHOWN_LINES:
        more = f" (and {len(value) - SHOWN_LINES} more lines: {_read_whole(seq)})"
        value = value[:SHOWN_LINES]
    # under the value's label (`    here: `), not at the margin
    return json.dumps(value, indent=2).replace("\n", "\n" + " " * 10) + more


def _lines(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(line, str) for line in value)


def _part(here: Any, there: Any, seq: int) -> str:
    """A guarded part as the question shows it: here and new, whole, or for a long script
    (or list) that changed, its changed lines (the first lines of both may be the same: a
    line changed further down was never shown)."""
    if not (_lines(here) and _lines(there)) or max(len(here), len(there)) <= SHOWN_LINES:
        return f"    here: {_shown(here, seq)}\n    new:  {_shown(there, seq)}"
    shown = _changes(here, there)
    more = ""
    if len(shown) > SHOWN_CHANGES:
        left = len(shown) - SHOWN_CHANGES
        more = f"\n      (and {left} more lines of changes: {_read_whole(seq)})"
        shown = shown[:SHOWN_CHANGES]
    return "    changed lines:\n" + "\n".join("      " + line for line in shown) + more


def _changes(here: list[str], there: list[str]) -> list[str]:
    """The changed lines of there against here, each JSON-escaped, a few alike around."""
    # What is alike at both ends is set aside first (in one pass): a change in a long file.
    start = 0
    while start < min(len(here), len(there)) and here[start] == there[start]:
        start += 1
    end = 0
    while end < min(len(here), len(there)) - start and here[-1 - end] == there[-1 - end]:
        end += 1
    old, new = here[start : len(here) - end], there[start : len(there) - end]
    if max(len(old), len(new)) > COMPARED_LINES:
        groups = [[("replace", 0, len(old), 0, len(new))]]
    else:
        matcher = difflib.SequenceMatcher(None, old, new)
        groups = list(matcher.get_grouped_opcodes(0))
    shown: list[str] = []
    for group in groups:
        first = group[0][3] + start
        before = max(0, first - 2)
        shown.append(f"@@ from line {before + 1} of the new version")
        shown += ["  " + json.dumps(line) for line in there[before:first]]
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                continue  # (empty: no lines alike are kept in a group)
            removed = old[i1:i2]
            shown += ["- " + json.dumps(line) for line in removed[:REMOVED_SHOWN]]
            if len(removed) > REMOVED_SHOWN:
                shown.append(f"- (and {len(removed) - REMOVED_SHOWN} more lines taken away)")
            shown += ["+ " + json.dumps(line) for line in new[j1:j2]]
        last = group[-1][4] + start
        shown += ["  " + json.dumps(line) for line in there[last : last + 2]]
    return shown


def ask_trust(changes: dict[str, dict[str, tuple[Any, Any]]], device: str, seq: int) -> bool:
    """Whether to apply changes to what runs or authorises code (code_trust.py), all at
    once: path -> part -> (here, incoming), from snapshot seq."""
    who = clean_value(device) or "another machine"
    for path, parts in changes.items():
        what = "settings" if path == settings_trust.PATH else "parts"
        verb = "adds" if all(here is None for here, _ in parts.values()) else "changes"
        click.echo(
            f"{clean_value(path)} from {who} {verb} {what} that run or authorise code:", err=True
        )
        for key, (here, there) in parts.items():
            click.echo(f"  {json.dumps(key)}\n{_part(here, there, seq)}", err=True)
    click.echo("Anyone who can write to the repository could have made these changes.", err=True)
    many = f"all {len(changes)} of them" if len(changes) > 1 else "it"
    return click.confirm(
        f"Apply {many}? (no: keep yours; they wait for `claude-sync resolve`)",
        default=False,
        err=True,
    )
