"""Claude Code plugins on this machine, read from the manifests claude-sync syncs.

`plugins/installed_plugins.json` lists installed plugins (`name@marketplace` -> entries with a
`scope` and an `installPath` in the plugin cache) and `plugins/known_marketplaces.json` the
marketplaces (name -> `source` and `installLocation`). The caches themselves are never synced,
so after a pull a plugin or marketplace can be listed here but absent: we name the exact
`claude plugin …` commands that bring it, and can run them. The same manifests tell whether
claude-sync's own plugin is installed, which decides who runs the session hooks.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_sync.errors import ConfigError

INSTALLED = "plugins/installed_plugins.json"
MARKETPLACES = "plugins/known_marketplaces.json"
SELF = "claude-sync"
#: the checkout this claude-sync runs from, when it is one: it is a plugin marketplace
CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Missing:
    """A marketplace or plugin enabled in settings.json but not installed here, with the
    `claude` command that installs it."""

    kind: str  # "marketplace" or "plugin"
    name: str
    command: tuple[str, ...]

    @property
    def shell(self) -> str:
        """The command as one shell-quoted line, to show the user."""
        return shlex.join(self.command)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def installed(claude_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Plugin id -> its installation entries (one per scope)."""
    plugins = _load(claude_dir / INSTALLED).get("plugins")
    if not isinstance(plugins, dict):
        return {}
    return {
        pid: [e for e in entries if isinstance(e, dict)]
        for pid, entries in plugins.items()
        if isinstance(pid, str) and isinstance(entries, list)
    }


def marketplaces(claude_dir: Path) -> dict[str, dict[str, Any]]:
    """The marketplaces Claude Code knows here, by name (none when its file is unreadable)."""
    data = _load(claude_dir / MARKETPLACES)
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict)}


def _enabled(claude_dir: Path) -> dict[str, Any]:
    enabled = _load(claude_dir / "settings.json").get("enabledPlugins")
    return enabled if isinstance(enabled, dict) else {}


def self_plugin(claude_dir: Path) -> str | None:
    """The id of claude-sync's own plugin when it is installed and not disabled."""
    enabled = _enabled(claude_dir)
    for pid in installed(claude_dir):
        if pid.split("@", 1)[0] == SELF and enabled.get(pid, True) is not False:
            return pid
    return None


def _marketplace_source(entry: dict[str, Any]) -> str | None:
    """What `claude plugin marketplace add` takes for a known_marketplaces.json source."""
    source = entry.get("source")
    if not isinstance(source, dict):
        return None
    kind = source.get("source")
    value = {
        "github": source.get("repo"),
        "git": source.get("url"),
        "url": source.get("url"),
        "directory": source.get("path"),
        "file": source.get("path"),
    }.get(kind if isinstance(kind, str) else "")
    return value if isinstance(value, str) and value else None


def missing(claude_dir: Path) -> list[Missing]:
    """Marketplaces, then user-scope plugins, listed in the manifests but absent here.
    Project and local scopes belong to a project folder, which `claude plugin install -s
    project` needs as its working directory: those are left to the user."""
    found: list[Missing] = []
    for name, entry in sorted(marketplaces(claude_dir).items()):
        location = entry.get("installLocation")
        source = _marketplace_source(entry)
        if source is None or (isinstance(location, str) and Path(location).exists()):
            continue
        command = ("claude", "plugin", "marketplace", "add", source)
        found.append(Missing("marketplace", name, command))
    for pid, entries in sorted(installed(claude_dir).items()):
        for entry in entries:
            path = entry.get("installPath")
            if entry.get("scope", "user") != "user" or not isinstance(path, str):
                continue
            if not Path(path).exists():
                found.append(Missing("plugin", pid, ("claude", "plugin", "install", pid)))
    return found


def install_missing(claude_dir: Path) -> list[tuple[Missing, int, str]]:
    """Run each missing item's command in order (marketplaces first, as plugins need them);
    (item, exit code, last output line) for each."""
    todo = missing(claude_dir)
    if todo and shutil.which("claude") is None:
        raise ConfigError("the `claude` command is not on PATH: install Claude Code first")
    results = []
    for item in todo:
        try:
            proc = subprocess.run(item.command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            results.append((item, 1, str(exc)))
            continue
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        results.append((item, proc.returncode, lines[-1] if lines else ""))
    return results


def marketplace_hint() -> str:
    """Where `claude plugin marketplace add` finds claude-sync's plugin."""
    if (CHECKOUT / ".claude-plugin" / "marketplace.json").is_file():
        return str(CHECKOUT)
    return "<a checkout of claude-sync>"
