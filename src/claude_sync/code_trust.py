"""What of a synced file runs code on the machine that pulls it, so that a pull applies a
change to it only with the user's consent (held_code.py).

- settings.json: its guarded keys (settings_trust.py);
- an agent, a command or a skill (`SKILL.md`): the frontmatter keys by which Claude Code
  runs or allows code (`hooks`, `mcpServers`, `permissionMode`, `allowed-tools`, `shell`),
  and the shell lines it runs when the command or skill is invoked (`` !`…` `` and
  ```` ```! ```` blocks; read from Claude Code 2.1.197's own patterns);
- any other file of a skill's folder but markdown (its scripts), whole, byte for byte;
- a saved workflow (`workflows/`, JavaScript Claude Code runs, which starts sub-agents
  with the session's tools; 2.1.332), whole, byte for byte;
- the key bindings (`keybindings.json`), whole: a binding in the `Confirmation` context
  can make `n` or Escape answer yes to a permission question;
- with a `permissionMode`, also what the agent may use (`tools`, `disallowedTools`,
  `skills`…), taken away as well as added.

What an agent, skill or command *says* is not guarded, as CLAUDE.md is not: an instruction
still goes through the permissions a user gave. Only a part that is added or changed is
guarded; taking code away is not (settings.json excepted: a removed `permissions.deny`
allows more).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from claude_sync import settings_trust

#: the part of a skill's script, of a frontmatter that cannot be read key by key, and of a
#: file's shell lines, as a held conflict names them
SCRIPT = "script"
#: the key bindings' part (a held conflict said they changed a "script")
BINDINGS = "key bindings"
FRONTMATTER = "frontmatter"
SHELL_LINES = "shell lines"
PATH_PART = "path"
#: a skill's file larger than this is held by its size and hash: not read twice to be shown
SHOWN_BYTES = 64 * 1024

_CODE_FOLDERS = ("agents/", "commands/", "skills/", "workflows/")
#: folders whose every file is guarded, markdown by its parts, the rest whole
_SCRIPT_FOLDERS = ("skills/", "workflows/")
KEYBINDINGS = "keybindings.json"
# JavaScript's white space, which Claude Code's patterns mean by `\s` (Python's has no
# byte-order mark: a `---\ufeff` line was a frontmatter only for Claude Code).
_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Claude Code's own patterns: its frontmatter (only at the very start; a byte-order mark is
# allowed here too, where Claude Code would not see one) and its shell lines.
_FRONTMATTER = re.compile(f"\ufeff?---[{_SPACE}]*\n([\\s\\S]*?)---[{_SPACE}]*\n?")
_SHELL_BLOCK = re.compile(f"```![{_SPACE}]*\n?([\\s\\S]*?)\n?```")
_SHELL_INLINE = re.compile(f"(?:^|(?<=[{_SPACE}]))!`([^`]+)`", re.MULTILINE)
# YAML's line breaks (Python's splitlines knows more).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A top-level `key:` line, the key plain or quoted.
_KEY = re.compile(r"""(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_][^:#]*?))[ \t]*:(?:[ \t]|$)""")
# A line that continues the key above it: indented by spaces, blank, or a list item at the
# key's level. (A tab is no YAML indentation: such a line is not read as a key's.)
_CONTINUED = re.compile(r" |-(?:[ \t]|$)|$")
# An alias (`*h`, where a node starts: after a key, a list dash, a flow bracket or comma):
# a guarded key's value that stands for another key's, which a line-by-line reading of
# that key alone cannot follow.
_ALIAS = re.compile(r"(?:^[ \t]*(?:-[ \t]+)*|:[ \t]+|[\[{,][ \t]*)\*[^ \t,\[\]{}]", re.MULTILINE)
# Frontmatter keys that run or allow code, by name as settings.json's are (not
# `disallowed-tools`, which only takes away); `description` is not `script`.
# (`agent` and `context: fork` run a skill as an agent, which may skip every question; an
# agent's `observer` starts other agents, in its own permission mode, whenever it runs
# (Claude Code 2.1.332); a plugin's manifest in a SKILL.md (2.1.197) can start language
# servers and monitors (also under `experimental`), and bring settings.)
_GUARDED_KEY = re.compile(
    r"hook|mcp|permission|(?<!dis)allowed|shell|command|exec|helper|plugin|sandbox|"
    r"credential|secret|apikey|\benv|^agent$|^context$|^observer$|lsp|monitor|^settings$|"
    r"^experimental$",
    re.IGNORECASE,
)
# With a permission mode, what an agent may use is what it may run unasked: its tools (and
# the tools it is denied), skills and agents count too, taken away as well as added.
_PERMISSION_KEY = re.compile("permission", re.IGNORECASE)
_TOOL_KEY = re.compile(r"tool|skill|agent|context", re.IGNORECASE)


#: Claude Code's plugin manifests: they say where an enabled plugin's code is (an installed
#: plugin's `installPath`, a marketplace's `source` and `installLocation`). Pointed at a
#: folder that syncs (`rules/…`), a plugin already enabled ran its hooks from there. Each
#: with the key its entries are under (None: the top level) and those locations' keys.
PLUGIN_MANIFESTS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "plugins/installed_plugins.json": ("plugins", ("installPath",)),
    "plugins/known_marketplaces.json": (None, ("source", "installLocation")),
}


def guards(path: str) -> bool:
    """Whether a file can carry code a pull applies only with consent."""
    if not path.startswith(_CODE_FOLDERS):  # a pull asks for each of 50,000 files
        return path in (settings_trust.PATH, KEYBINDINGS) or path in PLUGIN_MANIFESTS
    if path.startswith(_SCRIPT_FOLDERS):
        # Every file of a skill: its markdown by its parts, the rest whole. Not only SKILL.md:
        # a skill's folder with a `.claude-plugin/plugin.json` is loaded as a plugin, whose
        # commands, agents and skills (in folders its manifest may name) run as those do.
        return True
    if not path.lower().endswith(".md"):
        return whole(path)
    return "/" in path


def whole(path: str) -> bool:
    """Whether a guarded file is code as a whole: any file of a skill but markdown (its
    scripts, binaries, the files they read), also of one Claude Code finds in `commands/`
    (a folder with a SKILL.md), a workflow, and the key bindings."""
    if path == KEYBINDINGS:
        return True
    if path.lower().endswith(".md"):
        return False
    return path.startswith(_SCRIPT_FOLDERS) or (
        path.startswith("commands/") and path.count("/") > 1
    )


def guarded(path: str, data: bytes | None) -> dict[str, Any]:
    """The parts of a file (logical form) that run code, by name; none for an absent one."""
    if data is None:
        return {}
    if path == settings_trust.PATH:
        return settings_trust.guarded(data)
    if path in PLUGIN_MANIFESTS:
        return _code_locations(data, *PLUGIN_MANIFESTS[path])
    # Claude Code puts a skill's folder in front of its text (`Base directory for this
    # skill: …`, and for ${CLAUDE_SKILL_DIR}) before it runs the shell lines: a backtick
    # in a folder's name can make one.
    found: dict[str, Any] = {PATH_PART: path} if "`" in path else {}
    if whole(path):
        part = BINDINGS if path == KEYBINDINGS else SCRIPT
        return found | {part: _as_lines(data)} if data else found
    text = data.decode("utf-8", errors="replace")  # as Claude Code reads it
    front = _FRONTMATTER.match(text)
    if front:
        found.update(_frontmatter_code(front.group(1)))
    lines = _SHELL_BLOCK.findall(text) + _SHELL_INLINE.findall(text)
    if lines:
        found[SHELL_LINES] = lines
    return found


def _code_locations(data: bytes, under: str | None, keys: tuple[str, ...]) -> dict[str, Any]:
    """A plugin manifest's code locations, by "name key" (an installed plugin's entries are
    a list, one per scope, or one entry in the first form), with any other top-level value
    but the format number whole (a manifest of another form); the whole file when it is no
    JSON object."""
    try:
        manifest = json.loads(data)
    except ValueError:
        return {FRONTMATTER: _as_lines(data)}
    if not isinstance(manifest, dict):
        return {FRONTMATTER: _as_lines(data)}
    named = manifest if under is None else manifest.get(under, {})  # none yet: no plugins
    if not isinstance(named, dict):
        return {FRONTMATTER: _as_lines(data)}
    found: dict[str, Any] = {
        key: value
        for key, value in manifest.items()
        # The file's own format number is no code (both forms' locations are read).
        if under is not None and key != under and not (key == "version" and type(value) is int)
    }
    for name, value in named.items():
        for n, entry in enumerate(value if isinstance(value, list) else [value]):
            if not isinstance(entry, dict):
                found[f"{name} [{n}]"] = entry
                continue
            for key in keys:
                if key in entry:
                    found[f"{name} {key}" + (f" [{n}]" if n else "")] = entry[key]
    return found


def _as_lines(data: bytes) -> list[str]:
    """A whole file as it is compared and shown: its lines, exactly (a change of any byte
    is one), or its size and hash when it is no UTF-8 text."""
    try:
        return data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return [f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}"]


def _frontmatter_code(front: str) -> dict[str, list[str]]:
    """The guarded keys of a frontmatter, each with its lines as written. Read line by line,
    not as YAML: what such a reading cannot follow (a guarded key's alias, a complex or
    escaped key, a merge key, a tab) makes the frontmatter guarded as a whole."""
    lines = _LINE_BREAK.split(front)
    entries: dict[str, list[str]] = {}
    key = None
    for line in lines:
        if key is not None and _CONTINUED.match(line):
            entries[key].append(line.rstrip())
            continue
        if line.startswith("#") or not line:
            continue
        found = _KEY.match(line)
        key = next((k for k in found.groups() if k is not None), "").strip() if found else ""
        if not found or not key or key == "<<" or (found.group(1) and "\\" in key):
            return {FRONTMATTER: lines}
        entries.setdefault(key, []).append(line.rstrip())
    for value in entries.values():
        while not value[-1]:  # blank lines before the next key are no part of this one
            value.pop()
    wanted = _GUARDED_KEY
    if any(_PERMISSION_KEY.search(k) for k in entries):
        wanted = re.compile(f"{_GUARDED_KEY.pattern}|{_TOOL_KEY.pattern}", re.IGNORECASE)
    found = {k: value for k, value in entries.items() if wanted.search(k)}
    if any(_ALIAS.search("\n".join(value)) for value in found.values()):
        return {FRONTMATTER: lines}
    return found


def changed(path: str, local: bytes | None, incoming: bytes | None) -> dict[str, tuple[Any, Any]]:
    """The guarded parts a pull would change: name -> (here, incoming), None where absent.
    For settings.json any change; for the others only what incoming adds or changes."""
    here, there = guarded(path, local), guarded(path, incoming)
    if path == settings_trust.PATH:
        here, there = guarded(path, local or b"{}"), guarded(path, incoming or b"{}")
        names = here.keys() | there.keys()
    else:
        names = set(there)
        if any(_PERMISSION_KEY.search(k) for k in there):
            names |= {k for k in here if _TOOL_KEY.search(k)}  # a tool no longer denied
    return {k: (here.get(k), there.get(k)) for k in sorted(names) if here.get(k) != there.get(k)}
