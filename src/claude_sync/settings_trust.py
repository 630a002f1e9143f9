"""What of settings.json may arrive from other machines without asking.

Claude Code runs commands named in settings.json (hooks, the status line, credential
helpers) and lets it decide what may run without asking (permissions, env, plugins, MCP
servers). Anyone who can write to the repository could plant such keys, so on a pull they
are *guarded*: ordinary keys (model, cleanupPeriodDays, ...) arrive as usual, a change to a
guarded key arrives only when the user says so (or opted in with the `settings-commands`
type). claude-sync's own SessionStart/SessionEnd hooks are never synced at all: each machine
installs its own, calling its own interpreter.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from claude_sync.hook_install import is_own_hook
from claude_sync.json_layout import dump_like
from claude_sync.pathmap import FileFilter, HomeFilter

PATH = "settings.json"
TRUST_TYPE = "settings-commands"
#: Keys Claude Code documents as running or authorising code.
GUARDED = frozenset(
    {
        "hooks",
        "statusLine",
        "apiKeyHelper",
        "awsAuthRefresh",
        "awsCredentialExport",
        "otelHeadersHelper",
        "permissions",
        "env",
        "enabledPlugins",
        "extraKnownMarketplaces",
        "strictKnownMarketplaces",
        "pluginConfigs",
        "enableAllProjectMcpServers",
        "enabledMcpjsonServers",
        "disabledMcpjsonServers",
        "allowedMcpServers",
        "deniedMcpServers",
        "mcpServers",
        "sandbox",
        "disableAllHooks",
        "allowManagedHooksOnly",
        "fileSuggestion",
        "forceLoginMethod",
        "forceLoginOrgUUID",
        # Checked against Claude Code 2.1.332: a launcher put before the processes it
        # starts, the sub-agents' status line command, the auto mode's rules (what runs
        # unasked), the agent the main session runs as, messages from other sessions acted
        # on, goals the model may set itself.
        "processWrapper",
        "subagentStatusLine",
        "autoMode",
        "useAutoModeDuringPlan",
        "agent",
        "crossSessionInbound",
        "modelProposedGoals",
        # Restrictions (removed, what they forbid runs): on Claude Code's own list.
        "disableAutoMode",
        "remoteTools",
    }
)
#: Keys Claude Code may add later "of that kind" are recognised by their names.
_GUARDED_NAME = re.compile(
    r"hook|helper|command|refresh|export|plugin|mcp|marketplace|permission|sandbox|"
    r"credential|apikey|secret|script|exec|env|wrapper|statusline",
    re.IGNORECASE,
)


_EMPTY: tuple[Any, ...] = (None, False, "", {}, [])


def is_guarded(key: str) -> bool:
    """Whether a settings.json key can run or authorise code, so a remote change to it
    waits for the user's consent."""
    return key in GUARDED or bool(_GUARDED_NAME.search(key))


def _object(data: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(data or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def guarded(data: bytes) -> dict[str, Any]:
    """The guarded keys of a settings.json (logical form); none when it is not an object.
    An empty or false value (`"hooks": {}`) means the same as no key: it is left out."""
    obj = _object(data) or {}
    return {k: v for k, v in obj.items() if is_guarded(k) and v not in _EMPTY}


def blend(incoming: bytes, local: bytes) -> bytes | None:
    """The incoming file with this machine's guarded keys instead of its own: what a pull
    writes while the guarded change waits. None when incoming is not a JSON object (there
    is nothing to take from it)."""
    obj = _object(incoming)
    if obj is None:
        return None
    kept = {k: v for k, v in obj.items() if not is_guarded(k)}
    return dump_like(
        kept | {k: v for k, v in (_object(local) or {}).items() if is_guarded(k)}, incoming
    )


# -- claude-sync's own hooks ------------------------------------------------------------------


def _split_own(obj: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """(settings without our hooks, our hook groups by event)."""
    hooks = obj.get("hooks")
    if not isinstance(hooks, dict):
        return obj, {}
    others: dict[str, Any] = {}
    own: dict[str, list[Any]] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            others[event] = groups
            continue
        kept = []
        for group in groups:
            entries = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(entries, list) or not any(map(is_own_hook, entries)):
                kept.append(group)
                continue
            own.setdefault(event, []).append({**group, "hooks": list(filter(is_own_hook, entries))})
            rest = [h for h in entries if not is_own_hook(h)]
            if rest:
                kept.append({**group, "hooks": rest})
        if kept:
            others[event] = kept
    if not own:
        return obj, {}
    stripped = dict(obj)
    if others:
        stripped["hooks"] = others
    else:
        stripped.pop("hooks")
    return stripped, own


class SettingsFilter(FileFilter):
    """settings.json as stored: home directory as a token (HomeFilter) and without our own
    hooks; written back with this machine's home and this machine's own hooks."""

    def __init__(self, home: Path, local: Path) -> None:
        self.home = HomeFilter(home)
        self.local = local

    def to_logical(self, data: bytes) -> bytes:
        """The file as stored: home as a token, claude-sync's own hooks left out."""
        obj = _object(data)
        if obj is not None:
            stripped, own = _split_own(obj)
            if own:
                data = dump_like(stripped, data)
        return self.home.to_logical(data)

    def to_local(self, data: bytes) -> bytes:
        """The file as written here: this home, and this machine's own hooks kept."""
        data = self.home.to_local(data)
        try:
            current = _object(self.local.read_bytes())
        except OSError:
            current = None
        own = _split_own(current)[1] if current is not None else {}
        obj = _object(data)
        if not own or obj is None:
            return data
        hooks = obj.get("hooks")
        hooks = dict(hooks) if isinstance(hooks, dict) else {}
        for event, groups in own.items():
            existing = hooks.get(event)
            hooks[event] = (existing if isinstance(existing, list) else []) + groups
        return dump_like(obj | {"hooks": hooks}, data)
