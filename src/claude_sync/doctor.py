"""`claude-sync doctor` (placeholder until the checks land)."""

from __future__ import annotations

from dataclasses import dataclass

from claude_sync.workspace import Locations


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run(where: Locations) -> list[Check]:
    return []
