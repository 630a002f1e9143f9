"""The interactive `init` (placeholder until the wizard lands): the default folder remote."""

from __future__ import annotations

from claude_sync.store import RemoteOptions
from claude_sync.workspace import InitOutcome, Locations, init


def run(where: Locations, *, force: bool, device: str | None) -> InitOutcome:
    return init(
        where,
        None,
        passphrase_file=None,
        recovery_key=None,
        force=force,
        options=RemoteOptions(),
        device=device,
    )
