"""Local state in SQLite: the stat cache, the three-way merge base, and the blob index cache.

`local` remembers, per logical path, the stat of the file when we last read it and what we
found (SHA-256 and chunk list), so an unchanged file is never read again. `base` remembers the
version each path had at its last successful sync: the common ancestor for three-way checks.
`blobs` caches the repository's index objects so we know what the backend already holds.
"""

from __future__ import annotations

import errno
import json
import operator
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from json.encoder import encode_basestring_ascii as _string  # json.dumps's own, in C
from pathlib import Path
from typing import Any, NamedTuple

from claude_sync.errors import SyncError, no_space
from claude_sync.model import BlobLocation, FileEntry
from claude_sync.session_summary import SummaryMark

# The base's content hash, kept by SQLite itself: no JSON is parsed per row when a push
# compares every path, and no writer (an older claude-sync either, whose three-value
# inserts still fit) can let it drift from the entry.
BASE_SHA256 = "sha256 TEXT AS (json_extract(entry, '$.sha256')) STORED"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS local (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ino INTEGER, ctime_ns INTEGER,
    mode INTEGER, sha256 TEXT, chunks TEXT
);
CREATE TABLE IF NOT EXISTS summary_marks (path TEXT PRIMARY KEY, mark TEXT);
CREATE TABLE IF NOT EXISTS base (path TEXT PRIMARY KEY, entry TEXT, seq INTEGER, {BASE_SHA256});
CREATE TABLE IF NOT EXISTS blobs (id TEXT PRIMARY KEY, pack TEXT, offset INTEGER, length INTEGER);
CREATE TABLE IF NOT EXISTS indexes (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS conflicts (path TEXT PRIMARY KEY, detail TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS known (seq INTEGER, id TEXT, PRIMARY KEY (seq, id));
CREATE TABLE IF NOT EXISTS marks_seen (name TEXT PRIMARY KEY, first_seen REAL);
CREATE TABLE IF NOT EXISTS transcripts (snapshot TEXT PRIMARY KEY, paths TEXT);
CREATE TABLE IF NOT EXISTS clean_units (unit TEXT PRIMARY KEY, digest TEXT);
CREATE TABLE IF NOT EXISTS push_bases (path TEXT, sha256 TEXT);
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY, device TEXT, time REAL, files INTEGER, added INTEGER,
    changed INTEGER, removed INTEGER
);
"""

# Any write to the stat cache or the bases, by any code (an older claude-sync's too), forgets
# every clean unit (see clean_tree.py): each stands only for the rows it was recorded with.
# Only while there is one to forget: a pull or first push writes 100,000 rows, and a DELETE
# run for each took a fifth of their time (~0.2 s).
_FORGETTING = {
    f"{table}_{op.lower()}_forgets_clean": (table, op)
    for table in ("local", "base")
    for op in ("INSERT", "UPDATE", "DELETE")
}


def _trigger(name: str) -> str:
    table, op = _FORGETTING[name]
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {op} ON {table} "
        "WHEN EXISTS (SELECT 1 FROM clean_units) BEGIN DELETE FROM clean_units; END;"
    )


TRIGGERS = "\n".join(_trigger(name) for name in _FORGETTING)
#: rows written at once from which the triggers step aside while there is nothing for them
#: to forget (see State._bulk)
BULK_ROWS = 1000
#: the clean_units row of the whole tree
WHOLE_TREE = ""
#: the meta row of a push's journal (see journal_push): not the row claude-sync up to 0.2
#: wrote it in, with the bases in it, which those versions still read and need whole
PUSH_JOURNAL = "push_journal_header"
#: that row, still read (see push_journal)
EARLIER_PUSH_JOURNAL = "push_journal"

#: PRAGMA user_version of a state database this code has brought up to date (see _migrate)
SCHEMA_VERSION = 2

# Well under SQLite's limit on bound parameters (32,766 since 3.32, 999 before).
_IDS_PER_QUERY = 500


class StatKey(NamedTuple):
    """What a file's stat must still say for its cached hash to stand: any change to
    size, mtime, inode or ctime means the file is read again. A tuple: a scan makes and
    compares one per file, tens of thousands."""

    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int


@dataclass(slots=True)
class CachedFile:
    """What the last read of a file found, kept so an unchanged file is never read
    again: the stat it had, its mode, content hash and chunks. Not frozen: a frozen
    dataclass sets each field through object.__setattr__, and the stat cache makes one
    per file of the tree on every scan."""

    stat: StatKey
    mode: int
    sha256: str
    #: (blob id, offset, length) of each chunk; as stored (JSON text) until first needed,
    #: because a scan of an unchanged tree must not parse thousands of chunk lists
    raw_chunks: tuple[tuple[str, int, int], ...] | str
    _parsed: tuple[tuple[str, int, int], ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def chunks(self) -> tuple[tuple[str, int, int], ...]:
        """(blob id, offset, length) of each chunk, parsed on first use."""
        raw = self.raw_chunks
        if not isinstance(raw, str):
            return raw
        if self._parsed is None:
            self._parsed = tuple(tuple(c) for c in json.loads(raw))  # type: ignore[misc]
        return self._parsed


def chunks_text(chunks: tuple[tuple[str, int, int], ...]) -> str:
    """json.dumps of a file's chunks, without its cost per call: a first push or a pull
    remembers tens of thousands of files."""
    return "[" + ", ".join([f"[{_string(b)}, {o}, {n}]" for b, o, n in chunks]) + "]"


@dataclass(frozen=True)
class SnapshotSummary:
    """One snapshot as `log` lists it: who wrote it, when, and how many files it changed
    against its parent (cached here: working it out downloads two snapshots)."""

    seq: int
    device: str
    time: float
    files: int
    added: int
    changed: int
    removed: int


class Bases(Mapping[str, FileEntry]):
    """The merge bases by path, each entry decoded on first use: a plan compares the content
    hashes of every path (see sha) and needs the whole entries of the few that changed."""

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self._rows = {path: (sha256, raw) for path, sha256, raw in rows}
        self._decoded: dict[str, FileEntry] = {}

    def sha(self, path: str) -> str | None:
        """The base's content hash; None when path has none."""
        row = self._rows.get(path)
        return None if row is None else row[0]

    def __getitem__(self, path: str) -> FileEntry:
        entry = self._decoded.get(path)
        if entry is None:
            raw = self._rows[path][1]
            entry = self._decoded[path] = FileEntry.from_json(json.loads(raw), "local state")
        return entry

    def relabel(self, path: str, entry: FileEntry) -> None:
        """Name path's base by entry's identity: the same content (see State.relabel_base)."""
        self._rows[path] = (entry.sha256, self._rows[path][1])
        self._decoded[path] = replace(self[path], sha256=entry.sha256)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, path: object) -> bool:
        return path in self._rows


#: SQLite's longest file name (its default SQLITE_MAX_PATHNAME), terminator included
SQLITE_MAX_PATH = 512


_path = operator.itemgetter(0)


def _no_room(path: Path) -> str | None:
    """A full disk's message when the state's folder has no room left: SQLite reports
    some writes on a full disk as I/O errors."""
    try:
        if shutil.disk_usage(path.parent).free < 1 << 20:
            return no_space(OSError(errno.ENOSPC, "No space left on device"))
    except OSError:
        pass
    return None


class State:
    """This machine's SQLite state for one Claude folder and repository: the stat
    cache, the merge bases, the blob index cache, conflicts and bookkeeping. Writes that
    belong together go in one `transaction`."""

    def __init__(self, path: Path) -> None:
        #: logical paths whose stat cache or base rows this process wrote: a push keeps the
        #: clean units (clean_tree.py) it did not touch
        self.touched: set[str] = set()
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            # A statement's undo record (its journal) in memory, not a file: in the long
            # transaction of a pull's install it had spilled to /var/tmp, and every later
            # row was written there too (50,000 files: 370,000 writes, ~750 MB).
            self.db.execute("PRAGMA temp_store=MEMORY")
            self.db.executescript(SCHEMA)
            self._migrate()
            self.db.executescript(TRIGGERS)  # after _migrate, which builds base anew
        except sqlite3.DatabaseError as exc:
            if full := no_space(exc) or _no_room(path):
                raise SyncError(full) from None
            if len(os.fsencode(path)) >= SQLITE_MAX_PATH:
                raise SyncError(
                    f"the local state database's path is longer than SQLite takes "
                    f"({SQLITE_MAX_PATH - 1} bytes): {path}; choose a shorter --config-dir"
                ) from None
            raise SyncError(
                f"the local state database {path} cannot be opened ({exc}); it is safe to "
                f"delete: remove {path.name}, {path.name}-wal and {path.name}-shm in "
                f"{path.parent} and run the command again (the next sync rebuilds it)"
            ) from None

    def _migrate(self) -> None:
        """Bring a database an older claude-sync wrote up to SCHEMA_VERSION: its base table
        gets the sha256 column (1; SQLite adds no stored column to a table in place, so the
        table is copied), and its triggers go, to be made again with their condition (2)."""
        if self.db.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return
        with self.transaction():
            columns = {row[1] for row in self.db.execute("PRAGMA table_xinfo(base)")}
            if "sha256" not in columns:
                self.db.execute(
                    "CREATE TABLE base_new (path TEXT PRIMARY KEY, entry TEXT, seq INTEGER, "
                    f"{BASE_SHA256})"
                )
                self.db.execute(
                    "INSERT INTO base_new (path, entry, seq) SELECT path, entry, seq FROM base"
                )
                self.db.execute("DROP TABLE base")
                self.db.execute("ALTER TABLE base_new RENAME TO base")
            for name in _FORGETTING:
                self.db.execute(f"DROP TRIGGER IF EXISTS {name}")
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the database; the object is unusable afterwards."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: the writes inside are committed together, or rolled back
        when the block raises (a kill leaves the state as before)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def _bulk(self, table: str, rows: int) -> Iterator[None]:
        """rows rows of table written in this transaction: its triggers, which forget the
        clean units, are dropped while there is none to forget, and made again after. Each
        looked for a clean unit at every row: 0.065 s per 50,000 rows here, a tenth of a
        first push's or a pull's writes of the stat cache and the bases. (Failing, the
        transaction brings them back; the next open makes any that is missing.)"""
        if (
            rows < BULK_ROWS
            or not self.db.in_transaction
            or self.db.execute("SELECT 1 FROM clean_units LIMIT 1").fetchone() is not None
        ):
            yield
            return
        names = [name for name, (of, _) in _FORGETTING.items() if of == table]
        for name in names:
            self.db.execute(f"DROP TRIGGER IF EXISTS {name}")
        try:
            yield
        finally:
            for name in names:
                self.db.execute(_trigger(name))

    # -- stat cache ---------------------------------------------------------------------------

    def cached_files(self, under: tuple[str, ...] | None = None) -> dict[str, CachedFile]:
        """What the stat cache holds, by logical path (under: only at or below these)."""
        rows = self._under(
            "SELECT path, size, mtime_ns, ino, ctime_ns, mode, sha256, chunks FROM local", under
        )
        return {
            path: CachedFile(StatKey(size, mtime, ino, ctime), mode, sha, chunks)
            for path, size, mtime, ino, ctime, mode, sha, chunks in rows
        }

    def remember_file(self, path: str, cached: CachedFile) -> None:
        """Cache what reading path found."""
        self.remember_files([(path, cached)])

    def remember_files(self, files: Iterable[tuple[str, CachedFile]]) -> None:
        """One statement for many files: a first scan of a large tree remembers thousands
        (in the order of their paths, the table's key: inserted in the order read, 50,000
        rows took a third longer)."""
        files = sorted(files, key=_path)
        self.touched.update(path for path, _ in files)
        with self._bulk("local", len(files)):
            self.db.executemany(
                "INSERT OR REPLACE INTO local VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        path,
                        c.stat.size,
                        c.stat.mtime_ns,
                        c.stat.ino,
                        c.stat.ctime_ns,
                        c.mode,
                        c.sha256,
                        raw if isinstance(raw := c.raw_chunks, str) else chunks_text(raw),
                    )
                    for path, c in files
                ),
            )

    def remembers_files(self, at_least: int = 1) -> bool:
        """Whether the stat cache holds at least that many files (any: not on this
        machine's first scan)."""
        row = self.db.execute("SELECT 1 FROM local LIMIT 1 OFFSET ?", (at_least - 1,))
        return row.fetchone() is not None

    def forget_file(self, path: str) -> None:
        """Drop path from the stat cache: it is read again next time."""
        self.forget_files([path])

    def forget_files(self, paths: Iterable[str]) -> None:
        """Drop these paths from the stat cache."""
        gone = [(p,) for p in paths]
        self.touched.update(p for (p,) in gone)
        self.db.executemany("DELETE FROM local WHERE path = ?", gone)
        self.db.executemany("DELETE FROM summary_marks WHERE path = ?", gone)

    def summary_marks(self, paths: Iterable[str]) -> dict[str, SummaryMark]:
        """Where these transcripts' summaries can resume (session_summary.SummaryMark)."""
        rows = self._in_parts("SELECT path, mark FROM summary_marks WHERE path IN ({})", paths)
        return {path: mark for path, text in rows if (mark := SummaryMark.from_json(text))}

    def remember_summary_marks(self, marks: Iterable[tuple[str, SummaryMark]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO summary_marks VALUES (?, ?)",
            ((path, mark.to_json()) for path, mark in marks),
        )

    # -- merge base ---------------------------------------------------------------------------

    def bases(self, under: tuple[str, ...] | None = None) -> Bases:
        """Each path's merge base: its version at the last sync that moved it (under: only
        at or below these paths)."""
        return Bases(self._under("SELECT path, sha256, entry FROM base", under))

    def base_shas(self, under: tuple[str, ...] | None = None) -> dict[str, str]:
        """Each path's base content hash, without decoding whole entries."""
        return dict(self._under("SELECT path, sha256 FROM base", under))

    def _under(self, query: str, under: tuple[str, ...] | None) -> Iterable[Any]:
        """query's rows, only those whose path is one of under or below one (None: all).
        As ranges of the primary key: a push of one project reads its rows, not all."""
        if under is None:
            return self.db.execute(query)
        # "/" and "0" are neighbours: [p + "/", p + "0") is every path below p.
        where = " OR ".join(["path = ? OR (path >= ? AND path < ?)"] * len(under)) or "0"
        bounds = [b for p in under for b in (p, p + "/", p + "0")]
        return self.db.execute(f"{query} WHERE {where}", bounds)

    def set_base(self, path: str, entry: FileEntry | None, seq: int | None) -> None:
        """Record path's merge base as entry, taken from snapshot seq (None removes it)."""
        self.set_bases([(path, entry)], seq)

    def relabel_base(self, path: str, file_id: str) -> None:
        """Name path's base by another identity of the same content (identity.py): a version
        stored under SHA-256 that another machine stored again under BLAKE3."""
        self.db.execute(
            "UPDATE base SET entry = json_set(entry, '$.sha256', ?) WHERE path = ?", (file_id, path)
        )

    def set_bases(self, entries: Iterable[tuple[str, FileEntry | None]], seq: int | None) -> None:
        """Many bases in two statements (None removes one): a first push sets thousands
        (in the order of their paths, as remember_files). A base keeps no transcript
        summary, as a push's never did: what reads a base needs its content, and a pull's
        summaries made the state a tenth bigger (50,000 sessions: 60 MB against 54 MB)."""
        entries = sorted(entries, key=_path)
        self.touched.update(p for p, _ in entries)
        with self._bulk("base", len(entries)):
            self.db.executemany(
                "DELETE FROM base WHERE path = ?", ((p,) for p, e in entries if e is None)
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO base VALUES (?, ?, ?)",
                ((p, e.json_text(summary=False), seq) for p, e in entries if e is not None),
            )

    # -- the head's sessions -------------------------------------------------------------

    def snapshot_transcripts(self, snapshot_id: str) -> list[str] | None:
        """The main transcripts of snapshot snapshot_id, when they were recorded for it."""
        row = self.db.execute(
            "SELECT paths FROM transcripts WHERE snapshot = ?", (snapshot_id,)
        ).fetchone()
        if row is None:
            return None
        return row[0].split("\n") if row[0] else []

    def set_snapshot_transcripts(self, snapshot_id: str, paths: Iterable[str]) -> None:
        """Record the main transcripts of snapshot snapshot_id, in place of any other
        snapshot's (one text: a logical path holds no newline, and there can be tens of
        thousands)."""
        self.db.execute("DELETE FROM transcripts")
        self.db.execute("INSERT INTO transcripts VALUES (?, ?)", (snapshot_id, "\n".join(paths)))

    # -- blob index cache ---------------------------------------------------------------------

    def known_indexes(self) -> set[str]:
        """Names of the index objects loaded into the blob cache."""
        return {name for (name,) in self.db.execute("SELECT name FROM indexes")}

    def add_index(self, name: str, locations: dict[str, BlobLocation]) -> None:
        """Load one index object's blob locations into the cache."""
        self.db.executemany(
            "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?)",
            ((b, loc.pack, loc.offset, loc.length) for b, loc in sorted(locations.items())),
        )
        self.db.execute("INSERT OR REPLACE INTO indexes VALUES (?)", (name,))

    def forget_indexes(self) -> None:
        """Drop the blob cache, to be rebuilt from the indexes that exist now."""
        self.db.execute("DELETE FROM blobs")
        self.db.execute("DELETE FROM indexes")

    def forget_packs(self, packs: set[str]) -> set[str]:
        """Forget where blobs were, for packs gone or going; returns those blobs."""
        lost: set[str] = set()
        for pack in packs:
            rows = self.db.execute("SELECT id FROM blobs WHERE pack = ?", (pack,))
            lost |= {blob for (blob,) in rows}
            self.db.execute("DELETE FROM blobs WHERE pack = ?", (pack,))
        return lost

    def mark_first_seen(self, name: str, now: float) -> float:
        """When this machine first saw a prune mark, by its own clock."""
        self.db.execute("INSERT OR IGNORE INTO marks_seen VALUES (?, ?)", (name, now))
        row = self.db.execute("SELECT first_seen FROM marks_seen WHERE name = ?", (name,))
        return float(row.fetchone()[0])

    def blob_pack(self, blob_id: str) -> str | None:
        """The pack holding blob_id, as far as the cache knows; None when unknown."""
        return self.blob_packs([blob_id]).get(blob_id)

    def blob_packs(self, blob_ids: Iterable[str]) -> dict[str, str]:
        """The pack of each blob the cache knows, a few hundred ids per statement."""
        return dict(self._in_parts("SELECT id, pack FROM blobs WHERE id IN ({})", blob_ids))

    def blob_ids(self) -> set[str]:
        """Every blob the cache knows."""
        return {blob_id for (blob_id,) in self.db.execute("SELECT id FROM blobs")}

    def pack_extents(self, packs: Iterable[str]) -> dict[str, int]:
        """Where the last blob the cache knows of each pack ends: about the pack's size."""
        query = "SELECT pack, MAX(offset + length) FROM blobs WHERE pack IN ({}) GROUP BY pack"
        return dict(self._in_parts(query, packs))

    def _in_parts(self, query: str, values: Iterable[str]) -> Iterator[Any]:
        """The rows of query, whose IN ({}) takes the values a few hundred at a time."""
        items = list(values)
        for i in range(0, len(items), _IDS_PER_QUERY):
            part = items[i : i + _IDS_PER_QUERY]
            yield from self.db.execute(query.format(",".join("?" * len(part))), part)

    def locate(self, blob_ids: Iterable[str]) -> dict[str, BlobLocation]:
        """Where each blob the cache knows is stored (pack, offset, length)."""
        found = {}
        # Each pack's name kept once: a pull of 50,000 small files wants blobs of a few
        # packs, and a copy of the name per blob was 5 MiB of its peak.
        packs: dict[str, str] = {}
        wanted = blob_ids if isinstance(blob_ids, (set, frozenset)) else set(blob_ids)
        # At least the rows there are, without counting them (rows are only ever replaced
        # or all dropped, so the largest rowid is about their number)
        (known,) = self.db.execute("SELECT coalesce(max(rowid), 0) FROM blobs").fetchone()
        query = "SELECT id, pack, offset, length FROM blobs"
        if 4 * len(wanted) >= known:
            # Most of them (a first pull): one pass over the table is a third of the time
            # of looking up each.
            rows: Iterable[Any] = self.db.execute(query)
        else:
            rows = self._in_parts(query + " WHERE id IN ({})", wanted)
        for blob_id, pack, offset, length in rows:
            if blob_id in wanted:
                found[blob_id] = BlobLocation(packs.setdefault(pack, pack), offset, length)
        return found

    # -- conflicts and bookkeeping -----------------------------------------------------------

    def conflicts(self) -> dict[str, dict[str, object]]:
        """The unresolved conflicts, by path, as `Conflict.to_json` recorded them."""
        return {p: json.loads(d) for p, d in self.db.execute("SELECT path, detail FROM conflicts")}

    def set_conflict(self, path: str, detail: dict[str, object] | None) -> None:
        """Record path's conflict (None: it is resolved)."""
        if detail is None:
            self.db.execute("DELETE FROM conflicts WHERE path = ?", (path,))
        else:
            self.db.execute(
                "INSERT OR REPLACE INTO conflicts VALUES (?, ?)", (path, json.dumps(detail))
            )

    def snapshot_summaries(self) -> list[SnapshotSummary]:
        """The `log` summaries worked out so far, in no particular order."""
        return [
            SnapshotSummary(*row)
            for row in self.db.execute(
                "SELECT seq, device, time, files, added, changed, removed FROM snapshots"
            )
        ]

    def add_snapshot_summary(self, summary: SnapshotSummary) -> None:
        """Cache one snapshot's `log` summary."""
        self.db.execute(
            "INSERT OR REPLACE INTO snapshots VALUES "
            "(:seq, :device, :time, :files, :added, :changed, :removed)",
            summary.__dict__,
        )

    # -- history this machine has seen -------------------------------------------------------

    def known_snapshots(self) -> set[tuple[int, str]]:
        """(seq, id) of every snapshot this machine took as head or wrote."""
        return set(self.db.execute("SELECT seq, id FROM known"))

    def add_known_snapshot(self, seq: int, ident: str) -> None:
        """Remember that this machine took snapshot (seq, ident) as head or wrote it."""
        self.db.execute("INSERT OR IGNORE INTO known VALUES (?, ?)", (seq, ident))

    def forget_bases_after(self, seq: int) -> list[str]:
        """Drop the bases taken from snapshots after seq (they are not in an accepted
        history): those files become local changes again, never silently replaced."""
        paths = [p for (p,) in self.db.execute("SELECT path FROM base WHERE seq > ?", (seq,))]
        self.db.execute("DELETE FROM base WHERE seq > ?", (seq,))
        self.touched.update(paths)
        return paths

    def clean_tree(self) -> str | None:
        """The digest of the whole tree (see clean_tree.py) a push last found with nothing
        to send, while the stat cache and the bases are as they were then; None otherwise."""
        row = self.db.execute(
            "SELECT digest FROM clean_units WHERE unit = ?", (WHOLE_TREE,)
        ).fetchone()
        return row[0] if row else None

    def clean_units(self) -> dict[str, str]:
        """Each unit's digest (see clean_tree.py) recorded clean, the whole tree's too."""
        return dict(self.db.execute("SELECT unit, digest FROM clean_units"))

    def set_clean_units(self, units: dict[str, str]) -> None:
        """Record these units as clean (WHOLE_TREE: the whole tree), and no other; forgotten
        at the next write to the stat cache or the bases."""
        with self.transaction():
            self.db.execute("DELETE FROM clean_units")
            self.db.executemany("INSERT INTO clean_units VALUES (?, ?)", units.items())

    # -- a push's journal ----------------------------------------------------------------

    def journal_push(self, header: str, bases: Iterable[tuple[str, str | None]]) -> None:
        """What a push records before it writes its snapshot: header (its number, time and
        parent), and the content hash of each path's new base (None: no base) a row each.
        In one JSON text, a first push of 50,000 files held ~8 MiB, and twice as much again
        while it was encoded and stored, at the push's peak of memory. (The table has no
        key: its paths come from a dict, and without one it is written in half the time.)"""
        with self.transaction():
            self.db.execute("DELETE FROM push_bases")
            self.db.executemany("INSERT INTO push_bases VALUES (?, ?)", bases)
            self.set_meta(PUSH_JOURNAL, header)

    def push_journal(self) -> tuple[str, dict[str, str | None]] | None:
        """The journal of a push that did not end (header, and each path's base hash), or
        the one an earlier version left, whose header holds the bases itself."""
        header = self.get_meta(PUSH_JOURNAL)
        if header is not None:
            return header, dict(self.db.execute("SELECT path, sha256 FROM push_bases"))
        earlier = self.get_meta(EARLIER_PUSH_JOURNAL)
        return None if earlier is None else (earlier, {})

    def end_push_journal(self) -> None:
        """Forget the journal (inside the transaction that records the push, or gives it
        up): the header first, as what a journal without one holds is never read."""
        self.set_meta(PUSH_JOURNAL, None)
        self.set_meta(EARLIER_PUSH_JOURNAL, None)
        self.db.execute("DELETE FROM push_bases")

    def get_meta(self, key: str) -> str | None:
        """A bookkeeping value (last pull, the snapshot seen last, ...); None when unset."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        """Set a bookkeeping value (None removes it)."""
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
