"""What a push records of the units it found clean, and which units the next push must look
at (clean_tree.py says what a unit and its digest are)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from claude_sync.clean_tree import UNCLEAN, TreeWalk, unit_of
from claude_sync.planner import LocalView
from claude_sync.resources import Selection
from claude_sync.state import WHOLE_TREE

if TYPE_CHECKING:
    from claude_sync.engine import Engine


class CleanRecord:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def to_look_at(
        self, walked: TreeWalk, clean: dict[str, str], whole: str | None
    ) -> set[str] | None:
        """The units a push must look at, given those recorded clean (whole: the whole
        tree's record): none when nothing changed, None for every file."""
        if walked.digest == whole:
            return set()
        changed = walked.changed_units(clean)
        if not clean or len(changed) == len(walked.units.keys() | clean.keys()):
            return None  # no unit is as recorded: the setting may have changed
        # Some unit is as recorded, so the setting is too (every digest holds it).
        return self.with_aliases(changed, walked.units.keys() | clean.keys()) if changed else set()

    def record(
        self,
        sel: Selection,
        local: LocalView,
        walked: TreeWalk,
        clean: dict[str, str],
        changed: set[str],
        settled: bool = False,
    ) -> None:
        """After a push. clean: the units recorded clean that it relied on (none: it looked
        at everything); changed: the units it looked at. The whole tree is clean when the
        files it looked at were read as the walk found them and have nothing left to push
        (settled: known already), and it wrote no row outside them. Else the units it
        relied on and wrote no row of stay clean, and those it looked at or wrote keep a
        place as not clean: one that is gone later is then still looked at."""
        engine = self.engine
        units = walked.units.keys() | clean.keys()
        touched = self.with_aliases(
            {unit_of(engine.mapper.to_local(p)) for p in engine.state.touched}, units
        )
        if (
            local.tree is not None
            and (not clean or touched <= changed)
            and (settled or not engine.has_local_changes(sel, local))
        ):
            engine.state.set_clean_units({WHOLE_TREE: walked.digest, **walked.units})
        elif clean:
            kept = {u: d for u, d in clean.items() if u not in changed | touched}
            engine.state.set_clean_units({**dict.fromkeys(changed | touched, UNCLEAN), **kept})
        else:
            engine.state.set_clean_units({})

    def with_aliases(self, chosen: set[str], units: Iterable[str]) -> set[str]:
        """chosen, with the other units whose files have the same logical paths (a read-only
        alias of the home's folder, such as `C--Users-ann` beside `c--Users-ann`): a push
        narrowed to one covers the other's logical paths too."""
        to_logical = self.engine.mapper.to_logical
        logical = {u: to_logical(u) for u in {*units, *chosen}}
        wanted = {logical[u] for u in chosen}
        return chosen | {u for u, name in logical.items() if name in wanted}
