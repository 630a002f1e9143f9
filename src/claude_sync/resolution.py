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
    found = {
        p: c for p, c in ws.state.conflicts().items() if p == path or p.startswith(folder + "/")
    }
    if not found:
        raise ConfigError(f"{path} has no unresolved conflict (see `claude-sync conflicts`)")
    if take == "remote":
        # Consent to the code of the versions in conflict, not of whatever came since, nor
        # of other files of the folder. An edit conflict is consented to as a held change
        # is: taking its remote side must not hold that same side back for a second run.
        engine.held_code.consent = {p: c.get("remote_sha256") for p, c in found.items()}
    sel = replace(ws.selection(), only=(engine.mapper.to_local(folder),))
    return engine.sync(sel, take, dry_run=False, complete=False)
