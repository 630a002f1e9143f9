"""What of a synced file runs code on the machine that pulls it, so that a pull applies a
change to it only with the user's consent (held_code.py).

- settings.json: its guarded keys (settings_trust.py);
- an agent, a command or a skill (`SKILL.md`): the frontmatter keys by which Claude Code
  runs or allows code (`hooks`, `mcpServers`, `permissionMode`, `allowed-tools`, `shell`),
  and the shell lines it runs when the command or skill is invoked (`` !`…` `` and
  ```` ```! ```` blocks; read from Claude Code 2.1.197's own patterns);
- any other file in a skill's folder but markdown: its scripts, whole.

What an agent, skill or command *says* is not guarded, as CLAUDE.md is not: an instruction
still goes through the permissions a user gave. Only a part that is added or changed is
guarded; taking code away is not (settings.json excepted: a removed `permissions.deny`
allows more).
"""

from __future__ import annotations

import re
from typing import Any

from claude_sync import settings_trust

#: the part of a skill's script, of a frontmatter that cannot be read key by key, and of a
#: file's shell lines, as a held conflict names them
SCRIPT = "script"
FRONTMATTER = "frontmatter"
SHELL_LINES = "shell lines"
#: a skill's file larger than this is held by its size and hash: not read twice to be shown
SHOWN_BYTES = 64 * 1024

_CODE_FOLDERS = ("agents/", "commands/", "skills/")
# Claude Code's own patterns: its frontmatter (only at the very start; a byte-order mark is
# allowed here too, where Claude Code would not see one) and its shell lines.
_FRONTMATTER = re.compile(r"\ufeff?---\s*\n([\s\S]*?)---\s*\n?")
_SHELL_BLOCK = re.compile(r"```!\s*\n?([\s\S]*?)\n?```")
_SHELL_INLINE = re.compile(r"(?:^|(?<=\s))!`([^`]+)`", re.MULTILINE)
# A top-level `key:` line, the key plain or quoted.
_KEY = re.compile(r"""(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_][^:#]*?))\s*:(?:\s|$)""")
# A line that continues the key above it: indented, blank, or a list item at the key's level.
_CONTINUED = re.compile(r"\s|-(?:\s|$)|$")
# Frontmatter keys that run or allow code, by name as settings.json's are (not
# `disallowed-tools`, which only takes away); `description` is not `script`.
_GUARDED_KEY = re.compile(
    r"hook|mcp|permission|(?<!dis)allowed|shell|command|exec|helper|plugin|sandbox|"
    r"credential|secret|apikey|\benv",
    re.IGNORECASE,
)


def guards(path: str) -> bool:
    """Whether a file can carry code a pull applies only with consent."""
    if not path.startswith(_CODE_FOLDERS):  # a pull asks for each of 50,000 files
        return path == settings_trust.PATH
    top, _, rest = path.partition("/")
    name = path.rpartition("/")[2].lower()
    if top in ("agents", "commands"):
        return bool(rest) and name.endswith(".md")
    return top == "skills" and bool(rest) and (name == "skill.md" or not name.endswith(".md"))


def whole(path: str) -> bool:
    """Whether a guarded file is code as a whole (a skill's script or asset): any change to
    it is a change to its code."""
    return path.startswith("skills/") and not path.lower().endswith(".md")


def guarded(path: str, data: bytes | None) -> dict[str, Any]:
    """The parts of a file (logical form) that run code, by name; none for an absent one."""
    if data is None:
        return {}
    if path == settings_trust.PATH:
        return settings_trust.guarded(data)
    text = data.decode("utf-8", errors="replace")
    if whole(path):
        return {SCRIPT: text.splitlines()} if text else {}
    found: dict[str, Any] = {}
    front = _FRONTMATTER.match(text)
    if front:
        found.update(_frontmatter_code(front.group(1)))
    lines = _SHELL_BLOCK.findall(text) + _SHELL_INLINE.findall(text)
    if lines:
        found[SHELL_LINES] = lines
    return found


def _frontmatter_code(front: str) -> dict[str, list[str]]:
    """The guarded keys of a frontmatter, each with its lines as written. Read line by line,
    not as YAML: a line that is no plain `key:` (an anchor, a flow mapping, a complex key)
    makes the frontmatter guarded as a whole."""
    entries: dict[str, list[str]] = {}
    key = None
    for line in front.splitlines():
        if key is not None and _CONTINUED.match(line):
            entries[key].append(line.rstrip())
            continue
        if line.startswith("#"):
            continue
        found = _KEY.match(line)
        key = next((k for k in found.groups() if k is not None), "").strip() if found else ""
        if not found or not key or key == "<<":
            return {FRONTMATTER: front.splitlines()}
        entries.setdefault(key, []).append(line.rstrip())
    return {k: lines for k, lines in entries.items() if _GUARDED_KEY.search(k)}


def changed(path: str, local: bytes | None, incoming: bytes | None) -> dict[str, tuple[Any, Any]]:
    """The guarded parts a pull would change: name -> (here, incoming), None where absent.
    For settings.json any change; for the others only what incoming adds or changes."""
    here, there = guarded(path, local), guarded(path, incoming)
    if path == settings_trust.PATH:
        here, there = guarded(path, local or b"{}"), guarded(path, incoming or b"{}")
        names = here.keys() | there.keys()
    else:
        names = there.keys()
    return {k: (here.get(k), there.get(k)) for k in sorted(names) if here.get(k) != there.get(k)}
