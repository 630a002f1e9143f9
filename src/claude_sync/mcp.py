"""User-scope MCP servers (opt-in type `mcp`): the `mcpServers` key of `~/.claude.json`.

`~/.claude.json` (inside the Claude folder when CLAUDE_CONFIG_DIR is set) also holds the login
session, the machine id and per-project state, which never leave the machine, so the file
itself is never synced. Its `mcpServers` object is mirrored in `SIDECAR`, an ordinary file
under the Claude folder that the engine syncs like any JSON file (merged per server name by
`merge.merge_json_entries`, home paths mapped like settings.json).

`reconcile` keeps the two in step, both ways, using what they last agreed on (kept in
claude-sync's own folder) as the base: a side that changed since wins, and when both changed
the servers are merged per name, the live file winning a server both changed. Writing
`~/.claude.json` touches only `mcpServers`: read, replace that key, write a temporary file,
and replace the original only if it did not change meanwhile (Claude Code rewrites it often);
otherwise start again.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from claude_sync import resources
from claude_sync.errors import SyncError
from claude_sync.merge import MCP_SERVERS as SIDECAR
from claude_sync.merge import merge_entries

KEY = "mcpServers"
LAST_FILE = "mcp-servers.last.json"
WRITE_ATTEMPTS = 10
TYPE = resources.TYPES_BY_NAME["mcp"]

Servers = dict[str, Any]


def config_file(claude_dir: Path) -> Path:
    """Where Claude Code keeps its user config (with the user-scope MCP servers)."""
    if os.environ.get("CLAUDE_CONFIG_DIR") or claude_dir != Path.home() / ".claude":
        return claude_dir / ".claude.json"
    return Path.home() / ".claude.json"


def _load_object(path: Path) -> tuple[bytes | None, dict[str, Any]]:
    """The file's bytes (None when missing) and its JSON object."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, {}
    except OSError as exc:
        raise SyncError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise SyncError(f"{path} is not valid JSON; MCP servers left alone") from None
    if not isinstance(data, dict):
        raise SyncError(f"{path} does not hold a JSON object; MCP servers left alone")
    return raw, data


def _servers(data: dict[str, Any], where: Path) -> Servers:
    servers = data.get(KEY, {})
    if not isinstance(servers, dict):
        raise SyncError(f"`{KEY}` in {where} is not a JSON object; MCP servers left alone")
    return servers


def _dump(servers: Servers) -> bytes:
    return (json.dumps(servers, indent=2, ensure_ascii=False) + "\n").encode()


def _write_atomic(
    path: Path, data: bytes, mode: int, unless_changed_from: bytes | None = None
) -> bool:
    """Replace path with data through a temporary file; with unless_changed_from, only if the
    file still holds those bytes (False otherwise: someone else wrote it meanwhile)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if unless_changed_from is not None:
            try:
                if path.read_bytes() != unless_changed_from:
                    return False
            except FileNotFoundError:
                return False
        os.replace(tmp, path)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_servers(path: Path, servers: Servers) -> None:
    """Set only `mcpServers` in Claude Code's config file; every other key stays as it is."""
    for _ in range(WRITE_ATTEMPTS):
        raw, data = _load_object(path)
        if _servers(data, path) == servers and (servers or KEY not in data):
            return
        data[KEY] = servers
        text = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
        if raw is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, text, 0o600)
            return
        # Claude Code may have rewritten the file since we read it: then read it again.
        if _write_atomic(path, text, stat.S_IMODE(path.stat().st_mode), raw):
            return
    raise SyncError(f"{path} kept changing; MCP servers not written this time")


def _read_json(path: Path) -> Servers | None:
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def reconcile(claude_dir: Path, state_dir: Path, mirror_only: bool = False) -> list[str]:
    """Bring SIDECAR and Claude Code's `mcpServers` to the same servers; warnings.
    mirror_only: never write Claude Code's config; so where it would have to change (a
    pull changed the servers), nothing is written, and a later reconcile does it all. (A
    synced copy ahead of the record of what the two agreed on reads as a pull: the two
    move together or not at all.)"""
    live_path = config_file(claude_dir)
    sidecar = claude_dir / SIDECAR
    last_path = state_dir / LAST_FILE
    try:
        _, data = _load_object(live_path)
        live = _servers(data, live_path)
        mirrored = _read_json(sidecar)
        last = _read_json(last_path)
        warnings = []
        if mirrored is None or mirrored == last:
            agreed = live  # first run, or only Claude Code's side changed
        elif live in (last, mirrored):
            agreed = mirrored  # a pull (or a resolved conflict) changed the servers
        else:
            agreed, both = merge_entries(last or {}, live, mirrored)
            if both:
                warnings.append(
                    f"MCP servers {', '.join(both)} changed both in {live_path} and by a pull; "
                    "kept this machine's version"
                )
        if agreed != live:
            if mirror_only:
                return warnings
            write_servers(live_path, agreed)
        if mirrored != agreed:
            sidecar.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(sidecar, _dump(agreed), 0o600)
        if last != agreed:
            _write_atomic(last_path, _dump(agreed), 0o600)
    except SyncError as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"MCP servers not synced: {exc}"]
    return warnings
