"""What a walk of the Claude folder saw, and when that is enough to know a push has nothing
to send there.

A push that ends with nothing left to push records the digest of its walk, and one per
*unit*: a project folder, or a top-level entry (`agents`, `settings.json`)
(State.set_clean_units). A digest covers each file's path and stat (size, times, inode,
mode), what the walk left out, and all that decides how files are read and mapped (the
selection, the path maps, this version). SQLite triggers forget every record at any write to
the stat cache or the bases; a push that relied on the records keeps those it did not touch,
and the units it looked at without leaving them clean keep a place as UNCLEAN, so that one
gone later is still looked at (CleanRecord.record).

So while a unit's files have the digest recorded for it, and no write touched its rows since,
a full scan would find it as in step as it was: the next push need not look at its files.
That is the whole tree for a push with nothing to do, and all but the projects that changed
for a push after a session: it costs as much as the walk, not as much as the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from claude_sync.resources import FoundFile, Skipped

#: the form of the digests: a new one makes every recorded one stale (2: a transcript left
#: empty is read, no longer skipped; a record made while one was skipped would hide it)
DIGEST_FORM = 2
#: the record of a unit a push looked at without leaving it clean: never a walk's digest,
#: so the next push looks at it again, whether it is still there or gone
UNCLEAN = "unclean"
PROJECTS = "projects/"
_ENCODING = ("utf-8", "surrogatepass")


def unit_of(local_path: str) -> str:
    """The unit a path (relative to the Claude folder) is in: `projects/<folder>` for a
    project's files, else its top-level entry."""
    if local_path.startswith(PROJECTS):
        folder = local_path[len(PROJECTS) :].partition("/")[0]
        if folder:
            return PROJECTS + folder
    return local_path.partition("/")[0]


@dataclass
class TreeWalk:
    """One walk of the selection (Scanner.walk): the files found, with the stat each had,
    what was left out, and the digests of it all (the whole tree's, and each unit's)."""

    found: list[FoundFile]
    skipped: list[Skipped]
    digest: str
    units: dict[str, str] = field(default_factory=dict)
    #: where each unit's files are in found (a walk lists them one after the other)
    spans: dict[str, list[slice]] = field(default_factory=dict)

    @classmethod
    def of(cls, setting: str, found: list[FoundFile], skipped: list[Skipped]) -> TreeWalk:
        """The walk of found and skipped; setting: all else that decides how files are read
        and mapped (see Scanner.walk)."""
        head = f"{DIGEST_FORM}\0{setting}".encode(*_ENCODING)
        # Hashed a unit's run at a time: the lines of a whole tree, held together, left the
        # heap fragmented for the rest of the push.
        digests: dict[str, Any] = {}
        spans: dict[str, list[slice]] = {}

        def add(unit: str, lines: list[str]) -> None:
            if unit not in digests:
                digests[unit] = hashlib.sha256(head)
            digests[unit].update(_joined(lines))

        start, count = 0, len(found)
        while start < count:
            # A walk lists each unit's files one after the other: one lookup per unit.
            unit = unit_of(found[start].local_path)
            below, end = unit + "/", start + 1
            while end < count and found[end].local_path.startswith(below):
                end += 1
            spans.setdefault(unit, []).append(slice(start, end))
            add(
                unit,
                [
                    f"{f.local_path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
                    f"\0{st.st_ctime_ns}\0{st.st_mode}"
                    for f in found[start:end]
                    for st in (f.st,)
                ],
            )
            start = end
        for s in skipped:
            add(unit_of(s.local_path), [repr(s)])
        units = {unit: h.hexdigest() for unit, h in digests.items()}
        whole = _sha(head, [f"{unit}\0{digest}" for unit, digest in sorted(units.items())])
        return cls(found, skipped, whole, units, spans)

    def take(self) -> list[FoundFile]:
        """The files found, handed over once: the scan that takes them lets go of each
        unchanged one as it goes."""
        found, self.found = self.found, []
        return found

    def changed_units(self, recorded: Mapping[str, str]) -> set[str]:
        """The units whose digest is not the one recorded for them (new, changed or gone)."""
        return {
            u for u in self.units.keys() | recorded.keys() if self.units.get(u) != recorded.get(u)
        }

    def narrowed(self, units: Iterable[str]) -> TreeWalk:
        """This walk with only the files of units (what was left out stays whole: it is
        reported, not read)."""
        every = self.take()
        # By the units' places, not each file's unit: a push after one session asks this
        # of 50,000 files (0.06 s).
        parts = sorted(
            (span for unit in set(units) for span in self.spans.get(unit, ())),
            key=lambda span: span.start,
        )
        found = [f for span in parts for f in every[span]]
        return TreeWalk(found, self.skipped, self.digest, self.units)


def _joined(lines: list[str]) -> bytes:
    """The lines as they follow the head in a digest, each after a line break."""
    return "".join(["\n" + line for line in lines]).encode(*_ENCODING)


def _sha(head: bytes, lines: list[str]) -> str:
    return hashlib.sha256(head + _joined(lines)).hexdigest()
