"""Settling one conflict the user chose a side of (`claude-sync resolve`)."""

from __future__ import annotations

from dataclasses import replace

from claude_sync.engine import Engine, Result
from claude_sync.errors import ConfigError
from claude_sync.workspace import Workspace


def resolve(ws: Workspace, engine: Engine, path: str, take: str) -> Result:
    """Sync PATH alone (a file, or a folder: every conflict under it) with TAKE (local,
    remote or both) as the strategy, so the result is pushed; once settled, the remote
    copies left beside the file go (the pull does it; with `both` they stay: they are the
    version kept)."""
    folder = path.rstrip("/")
    if not any(p == path or p.startswith(folder + "/") for p in ws.state.conflicts()):
        raise ConfigError(f"{path} has no unresolved conflict (see `claude-sync conflicts`)")
    # Taking the remote version is the user's consent to its settings that run code.
    engine.trust_code = engine.trust_code or take == "remote"
    sel = replace(ws.selection(), only=(engine.mapper.to_local(folder),))
    return engine.sync(sel, take, dry_run=False, complete=False)
