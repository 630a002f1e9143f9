"""Prune marks: packs found unreferenced, deleted by a later prune once a grace period has
passed (docs/FORMAT.md §7)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from claude_sync.errors import CorruptionError, ObjectNotFoundError
from claude_sync.repository.access import StoreAccess
from claude_sync.repository.format import FORMAT_VERSION, PRUNE_PREFIX, decode_json, encode_json
from claude_sync.store.handle import Handle, ObjectKind


@dataclass(frozen=True)
class PruneMark:
    """Packs found unreferenced at `time`; deleted by a prune run a grace period later."""

    name: str
    time: float
    packs: frozenset[str]


class PruneMarks(StoreAccess):
    """The prune mark objects of a repository."""

    def marks(self) -> list[PruneMark]:
        """The prune marks that can be read. A damaged one is left out: nothing is deleted
        on its account, and the next prune marks what is still unused anew."""
        return self.read_marks()[0]

    def read_marks(self) -> tuple[list[PruneMark], list[str]]:
        """The prune marks that can be read, and the names of those that cannot."""
        found, damaged = [], []
        for name in (h.name for h in self._handles(ObjectKind.PRUNE_MARK)):
            try:
                obj = decode_json(self.keys.open(name, self._get(name)), f"prune mark {name}")
                found.append(PruneMark(name, float(obj["time"]), frozenset(map(str, obj["packs"]))))
            except ObjectNotFoundError:
                continue  # swept meanwhile
            except (CorruptionError, KeyError, TypeError, ValueError, OverflowError):
                damaged.append(name)
        return found, damaged

    def mark_ages(self) -> dict[str, float] | None:
        """Seconds since each prune mark was written, by the storage's clock alone: a probe
        object written now is compared with the marks' times of writing, so no machine's
        clock enters. None where the storage keeps no time (Git)."""
        if any(info.modified is None for info in self.store.list_info(PRUNE_PREFIX)):
            return None
        probe = Handle.probe(ObjectKind.PRUNE_MARK)
        self.store.put_if_absent(probe, b"")
        try:
            times = {info.name: info.modified for info in self.store.list_info(PRUNE_PREFIX)}
        finally:
            self.store.delete(probe)
        now = times.get(probe)
        if now is None:
            return None
        return {name: now - written for name, written in times.items() if written is not None}

    def marked_packs(self) -> frozenset[str]:
        return frozenset().union(*(m.packs for m in self.marks()))

    def write_mark(self, packs: set[str]) -> str:
        name = Handle.random(ObjectKind.PRUNE_MARK).name
        body = {"version": FORMAT_VERSION, "time": time.time(), "packs": sorted(packs)}
        self._put(name, self.keys.seal(name, encode_json(body)))
        return name
