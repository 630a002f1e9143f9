"""History and upkeep: the snapshot log, devices, restore and verify."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claude_sync import chain
from claude_sync.downloads import remove_unfilled
from claude_sync.engine import Engine, Result
from claude_sync.errors import ConfigError, CorruptionError, ObjectNotFoundError, SyncError
from claude_sync.planner import LocalView, sha
from claude_sync.repository import (
    DATA_PREFIX,
    MANIFEST_PREFIX,
    BlobLocation,
    PackWriter,
    Repository,
    SnapshotRoot,
    group_by_pack,
    snapshot_name,
)
from claude_sync.resources import Selection, is_temporary
from claude_sync.state import SnapshotSummary

#: the shortest grace period prune accepts (seconds): a push must get from its last check of
#: the packs it leans on to writing its snapshot within it. Tests that race prune against
#: pushes on purpose lower it with this variable.
MIN_GRACE = 15 * 60
MIN_GRACE_ENV = "CLAUDE_SYNC_MIN_GRACE"


def log(engine: Engine) -> list[SnapshotSummary]:
    """Every snapshot with its changes against its parent; summaries are cached locally."""
    cached = {e.seq: e for e in engine.state.snapshot_summaries()}
    seqs = engine.repo.snapshot_seqs()
    previous: tuple[int, dict[str, str]] | None = None
    for seq in seqs:
        if seq in cached:
            continue
        snap = engine.repo.load_snapshot(seq)
        files = {p: e.sha256 for p, e in snap.files.items()}
        parent: dict[str, str] = {}
        if snap.parent is not None:
            if previous and previous[0] == snap.parent:
                parent = previous[1]
            elif snap.parent in seqs:
                loaded = engine.repo.load_snapshot(snap.parent)
                parent = {p: e.sha256 for p, e in loaded.files.items()}
        entry = SnapshotSummary(
            seq,
            snap.device,
            snap.time,
            len(files),
            added=len(files.keys() - parent.keys()),
            changed=sum(1 for p in files.keys() & parent.keys() if files[p] != parent[p]),
            removed=len(parent.keys() - files.keys()),
        )
        with engine.state.transaction():
            engine.state.add_snapshot_summary(entry)
        cached[seq] = entry
        previous = (seq, files)
    return [cached[s] for s in seqs]


def devices(engine: Engine, entries: list[SnapshotSummary]) -> dict[str, tuple[int, float]]:
    """Per device, under its current name: snapshots pushed and the time of the last one."""
    renamed = _renames(engine, entries)

    def current(name: str) -> str:
        for _ in range(len(renamed)):  # a chain of renames; a cycle stops somewhere
            if name not in renamed:
                break
            name = renamed[name]
        return name

    seen: dict[str, tuple[int, float]] = {}
    for e in entries:
        count, last = seen.get(current(e.device), (0, 0.0))
        seen[current(e.device)] = (count + 1, max(last, e.time))
    return seen


def _renames(engine: Engine, entries: list[SnapshotSummary]) -> dict[str, str]:
    """Old device name -> new: from this machine's settings, and from the newest snapshot
    of each device (a renamed device names its former names there). A name pushed under
    after the rename is not taken over: another machine uses it now."""
    newest: dict[str, SnapshotSummary] = {}
    for e in entries:
        newest[e.device] = e
    renamed = dict.fromkeys(engine.former_names, engine.device)
    for device, entry in newest.items():
        with contextlib.suppress(ObjectNotFoundError, CorruptionError):
            formerly = engine.repo.load_root(entry.seq).body.get("formerly")
            for old in formerly if isinstance(formerly, list) else []:
                if (
                    isinstance(old, str)
                    and old != device
                    and old in newest
                    and newest[old].time <= entry.time
                ):
                    renamed.setdefault(old, device)
    return renamed


def _keeping_packs(restore: Callable[..., Result]) -> Callable[..., Result]:
    """restore with the packs its code guard reads whole kept for the rest (KeptPacks)."""

    @functools.wraps(restore)
    def kept(engine: Engine, *args: Any) -> Result:
        with engine.downloads.packs_kept():
            return restore(engine, *args)

    return kept


@_keeping_packs
def restore(
    engine: Engine,
    sel: Selection,
    seq: int,
    prefixes: list[str],
    target: Path | None,
    force: bool,
) -> Result:
    """Bring back files as they were in snapshot `seq`, in place or into `target`; only
    files of the types this machine syncs (the check every incoming path passes)."""
    if seq not in engine.repo.snapshot_seqs():
        raise ConfigError(f"there is no snapshot {seq} (see `claude-sync log`)")
    snap = engine.repo.load_snapshot(seq)
    wanted = [p.rstrip("/") for p in prefixes]
    # A file under a temporary name, stored by an older version, is no file to restore.
    matching = {
        p: e
        for p, e in snap.files.items()
        if (not wanted or any(p == w or p.startswith(w + "/") for w in wanted))
        and not is_temporary(p)
    }
    files = {p: e for p, e in matching.items() if sel.covers(p)}
    result = Result()
    skipped = len(matching) - len(files)
    if skipped:
        result.warnings.append(
            f"{skipped} files are of types this machine does not sync; not restored "
            "(`claude-sync types --enable TYPE` first)"
        )
    # A file whose code would change (settings.json's guarded keys, an agent's hooks…)
    # comes back in place only when asked for by name, or by its folder's; named, it is
    # said which (a folder names more than the files it holds).
    coming = engine.held_code.changing_code(files, result) if target is None else []
    if coming:
        some = f"{len(coming)} files" if len(coming) > 1 else "1 file"
        listed = ", ".join(coming[:3]) + (", …" if len(coming) > 3 else "")
        if wanted:
            result.warnings.append(
                f"{some} restored with code that runs, as in snapshot {seq}: {listed}"
            )
        else:
            for path in coming:
                del files[path]
            tops = dict.fromkeys(p.partition("/")[0] for p in coming)
            named = " ".join(coming if len(coming) <= 3 else tops)
            comes = "come" if len(coming) > 1 else "comes"
            result.warnings.append(
                f"{some} that can run code ({listed}) {comes} back only when named: "
                f"`claude-sync restore {named} --snapshot {seq}`"
            )
    if not files:
        raise ConfigError(
            f"no file this machine syncs in snapshot {seq} matches {' '.join(prefixes)}"
        )
    root = target or engine.root
    outputs = {p: (os.path.join(root, engine.mapper.to_local(p)), e) for p, e in files.items()}
    if not force and target is None:
        _refuse_unsynced(engine, files)
    elif not force:
        # What is there may exist nowhere else: a restore elsewhere adds, never replaces.
        there = sorted(p for p, (dest, _) in outputs.items() if os.path.lexists(dest))
        if there:
            raise ConfigError(
                f"{len(there)} of the files to restore already exist in {target} (e.g. "
                f"{there[0]}); restore into an empty folder, or use --force"
            )
    # A failed restore leaves no empty folders behind, nor the target folder it made.
    dropped, new = engine.downloads.drop_unwritable(outputs, Path(root), result)
    result.skipped += dropped
    filled: set[Path] = set()
    try:
        # Files named: a few blobs of packs a push made for many, read by range where
        # they are a small part of one.
        ranged = engine.downloads.reading_by_range() if prefixes else contextlib.nullcontext()
        with ranged, engine.downloads.staged_files(outputs, root, result, made=new) as staged:
            for s in staged:
                os.replace(s.tmp, s.dest)
                filled.add(Path(s.dest).parent)
                result.pulled.append(s.path)
    finally:
        remove_unfilled(new, filled)
    if target is None and result.pulled:
        # A file restored to the conflict's remote version settles it, as `resolve --take
        # remote` would (a held change restored by name is taken): `conflicts` listed it
        # while `status` said all was up to date. Restored to another version, the conflict
        # still stands, and `resolve` still settles it.
        waiting = engine.state.conflicts()
        settled = [
            p
            for p in result.pulled
            if p in waiting and files[p].sha256 == waiting[p].get("remote_sha256")
        ]
        with engine.state.transaction():
            for path in settled:
                engine.state.set_conflict(path, None)
        for path in settled:
            engine.conflict_log.remove_copies(path)
    return result


def _look_at_everything(engine: Engine) -> LocalView:
    """Every local file of every type, synced here or not, as a scan reads it; nothing is
    changed (not Claude Code's MCP servers of a type this machine does not sync)."""
    sel = engine.everything()
    return engine.scanner.scan(sel, [], walked=engine.scanner.walk(sel, [], "leave"))


def _refuse_unsynced(engine: Engine, files: dict[str, object]) -> None:
    """In-place restore must not destroy changes that exist nowhere else."""
    view = _look_at_everything(engine)
    bases = engine.state.bases()
    engine.identities.align(view, bases, None)  # a file read again since an upgrade
    local = view.files
    # An empty file holds nothing that could be lost (a transcript left empty is read).
    unsynced = [
        p
        for p in files
        if p in local and local[p].entry().size and sha(local[p]) != sha(bases.get(p))
    ]
    if unsynced:
        raise SyncError(
            f"{len(unsynced)} {'file has' if len(unsynced) == 1 else 'files have'} changes "
            f"not pushed yet (e.g. {unsynced[0]}); "
            "push first, restore with --target DIR, or use --force"
        )


def verify(engine: Engine, read_data: bool) -> list[str]:
    """Problems found: referenced data missing, and with read_data any byte that fails."""
    repo, problems = engine.repo, []
    problems += [
        f"key {key_id} is damaged or was changed in the storage: its passphrase may not open "
        f"the repository any more (`claude-sync key add`, then `claude-sync key remove {key_id}`)"
        for key_id in repo.damaged_keys()
    ]
    problems += [
        f"object {name} is damaged (`claude-sync repair` removes it)"
        for name in repo.read_forgotten()[1] + repo.read_marks()[1]
    ]
    indexes: dict[str, dict[str, object]] = {}
    for name in repo.index_names():
        try:
            indexes[name] = dict(repo.load_index(name))
        except SyncError as exc:
            problems.append(str(exc))
    locations = {b: loc for idx in indexes.values() for b, loc in idx.items()}
    packs = repo.pack_names()
    roots: dict[int, SnapshotRoot] = {}
    for seq in repo.snapshot_seqs():
        try:
            roots[seq] = repo.load_root(seq)
            snap = repo.snapshot(roots[seq], cached_ok=False)
        except SyncError as exc:
            problems.append(str(exc))
            continue
        blobs = {b for e in snap.files.values() for b, _ in e.chunks}
        missing = [b for b in blobs if b not in locations]
        lost = {locations[b].pack for b in blobs if b in locations} - packs  # type: ignore[attr-defined]
        if missing:
            problems.append(f"snapshot {seq}: {len(missing)} blobs are in no index")
        if lost:
            problems.append(f"snapshot {seq}: {len(lost)} packs are missing")
    problems += chain.breaks(repo, roots)
    if read_data:
        present = {
            pack: wanted
            for pack, wanted in group_by_pack(locations.items()).items()  # type: ignore[arg-type]
            if pack in packs
        }
        advance = engine.reporter.progress(
            "verifying", sum(loc.length for wanted in present.values() for loc in wanted.values())
        )
        for pack, wanted in present.items():
            try:
                for blob_id, _ in repo.iter_pack(pack, wanted):
                    advance(wanted[blob_id].length)  # reading authenticates the bytes
            except CorruptionError as exc:
                problems.append(str(exc))
    return problems


@dataclass
class PruneReport:
    """What `prune` removed, marked and freed."""

    snapshots_removed: list[int]
    packs_marked: int
    packs_deleted: int
    bytes_freed: int


def prune(
    engine: Engine, keep_last: int, keep_within: float | None, grace: float, dry_run: bool
) -> PruneReport:
    """Forget old snapshots, then delete data no kept snapshot needs, in two phases.

    Unreferenced packs are first *marked*; a later run deletes those still unreferenced once
    the mark is `grace` seconds old both by the storage's clock (the mark object's time of
    writing against a probe's) and by this machine's, counted from when it first saw the
    mark: neither a machine hours behind nor this clock jumping ahead makes a mark old. A push
    checks, just before writing its snapshot, that the packs it leans on are neither marked
    nor gone (else uploads again), and snapshots written while this runs are read again
    before anything is deleted: so no snapshot ever points at deleted data.
    """
    least = float(os.environ.get(MIN_GRACE_ENV, MIN_GRACE))
    if grace < least:
        raise ConfigError(
            f"--grace must be at least {least / 60:g}m: a push running meanwhile needs that "
            "long to see the mark"
        )
    repo = engine.repo
    entries = log(engine)
    if not entries:
        return PruneReport([], 0, 0, 0)
    now = time.time()
    keep = {e.seq for e in entries[-max(1, keep_last) :]}
    if keep_within is not None:
        keep |= {e.seq for e in entries if now - e.time <= keep_within}
    doomed_snapshots = [e.seq for e in entries if e.seq not in keep]
    report = PruneReport(doomed_snapshots, 0, 0, 0)
    if not dry_run:
        # Machines that last saw a forgotten snapshot must still be able to follow the chain.
        repo.write_forgotten(repo.load_roots(doomed_snapshots).values())
        repo.delete_objects([snapshot_name(seq) for seq in doomed_snapshots])
    kept = [repo.load_snapshot(seq) for seq in sorted(keep)]
    needed = {b for snap in kept for e in snap.files.values() for b, _ in e.chunks}
    indexes = {name: repo.load_index(name) for name in repo.index_names()}
    marks = repo.marks()
    marked = frozenset().union(*(m.packs for m in marks))
    # Packs no index names, left by a killed push or prune. A running push's packs get their
    # index within the grace period, so marking them too is safe.
    indexed = {loc.pack for locations in indexes.values() for loc in locations.values()}
    sizes = repo.sizes(DATA_PREFIX) | repo.sizes(MANIFEST_PREFIX)
    orphans = frozenset({n for n in sizes if n.startswith(DATA_PREFIX)} - indexed)
    # Manifest parts and chunk lists no kept snapshot uses (replaced, forgotten, or written
    # by a push that lost its race or was killed) go the same two-phase way as packs.
    used_parts = set().union(*(snap.manifest_names() for snap in kept))
    stale_parts = frozenset({n for n in sizes if n.startswith(MANIFEST_PREFIX)} - used_parts)
    unreferenced = _unreferenced_packs(indexes, needed, marked) | orphans | stale_parts
    fresh = unreferenced - marked
    report.packs_marked = sum(name.startswith(DATA_PREFIX) for name in fresh)
    if dry_run:
        return report  # what this run would mark; sweeping is for a later run anyway
    if fresh:
        repo.write_mark(set(fresh))
        marks = repo.marks()
    now = time.time()
    with engine.state.transaction():
        first_seen = {m.name: engine.state.mark_first_seen(m.name, now) for m in marks}
    store_ages = repo.mark_ages()

    def age(mark_name: str) -> float:
        seen = now - first_seen[mark_name]
        return seen if store_ages is None else min(seen, store_ages.get(mark_name, 0.0))

    due = [mark for mark in marks if age(mark.name) >= grace]
    doomed = frozenset().union(*(mark.packs for mark in due)) & unreferenced
    doomed -= _used_by_late_snapshots(repo, {e.seq for e in entries}, indexes)
    _sweep(repo, indexes, doomed, sizes, report)
    repo.delete_objects([mark.name for mark in due])
    return report


def _used_by_late_snapshots(
    repo: Repository, listed: set[int], indexes: dict[str, dict[str, BlobLocation]]
) -> frozenset[str]:
    """Packs and manifest objects needed by snapshots pushed since this prune listed them."""
    late = [repo.load_snapshot(s) for s in repo.snapshot_seqs() if s not in listed]
    if not late:
        return frozenset()
    needed = {b for snap in late for e in snap.files.values() for b, _ in e.chunks}
    where = dict(indexes)
    for name in repo.index_names():
        if name not in where:
            with contextlib.suppress(ObjectNotFoundError):
                where[name] = repo.load_index(name)
    packs = {loc.pack for idx in where.values() for b, loc in idx.items() if b in needed}
    return frozenset(packs | set().union(*(snap.manifest_names() for snap in late)))


def _unreferenced_packs(
    indexes: dict[str, dict[str, BlobLocation]], needed: set[str], marked: frozenset[str]
) -> frozenset[str]:
    """Packs holding no needed blob. A blob stored twice (a push re-uploaded it because its
    pack was marked) keeps only its copy outside marked packs alive."""
    homes: dict[str, set[str]] = {}
    packs: set[str] = set()
    for locations in indexes.values():
        for blob, loc in locations.items():
            packs.add(loc.pack)
            if blob in needed:
                homes.setdefault(blob, set()).add(loc.pack)
    used: set[str] = set()
    for places in homes.values():
        used |= (places - marked) or places
    return frozenset(packs - used)


def _sweep(
    repo: Repository,
    indexes: dict[str, dict[str, BlobLocation]],
    doomed: frozenset[str],
    sizes: dict[str, int],
    report: PruneReport,
) -> None:
    """The indexes read become one, without the doomed packs (so the index listing every
    pull reads stays short however many pushes there were), then the doomed objects go.
    A crash in between leaves duplicate index entries or orphans, which the next prune
    collects; indexes written meanwhile by pushes are not touched."""
    if len(indexes) > 1 or any(loc.pack in doomed for i in indexes.values() for loc in i.values()):
        remaining: dict[str, list[tuple[str, int, int]]] = {}
        for locations in indexes.values():
            for blob, loc in locations.items():
                if loc.pack not in doomed:
                    remaining.setdefault(loc.pack, []).append((blob, loc.offset, loc.length))
        if remaining:
            repo.write_index(remaining)
        repo.delete_objects(list(indexes))
    present = [name for name in doomed if name in sizes]  # the rest went meanwhile
    report.bytes_freed += sum(sizes[name] for name in present)
    report.packs_deleted += sum(name.startswith(DATA_PREFIX) for name in present)
    repo.delete_objects(present)


@dataclass
class RepairReport:
    """What `repair` checked, found damaged and rebuilt."""

    packs_checked: int
    #: packs whose bytes fail their check: no index leads to them any more
    packs_damaged: int
    packs_indexed: int
    blobs_restored: int
    #: snapshots still missing data that this machine does not have
    incomplete: list[int]
    #: snapshots whose root or file list is damaged or lost
    snapshots_damaged: list[int]
    #: of those, the ones whose root is (no machine keeps a copy of a root)
    roots_damaged: list[int]
    #: of those, the ones removed
    snapshots_removed: list[int]
    #: file list objects put back from this machine's cache
    lists_mended: int


def repair(engine: Engine, forget_damaged: bool = False) -> RepairReport:
    """Read every indexed pack, then rebuild the indexes from the packs themselves (one index
    for every intact pack present), then upload again, from this machine's files, the blobs
    that snapshots need and no intact pack holds. A damaged pack counts as missing (prune
    collects it later). What no machine that runs this still has stays missing."""
    repo = engine.repo
    # A damaged history record or prune mark is already left out by everyone who reads
    # it, and nothing can put it back: it goes.
    repo.delete_objects(repo.read_forgotten()[1] + repo.read_marks()[1])
    mended = repo.mend_manifests()
    indexes: dict[str, dict[str, BlobLocation]] = {}
    unreadable: list[str] = []
    for name in repo.index_names():
        try:
            indexes[name] = repo.load_index(name)
        except (CorruptionError, ObjectNotFoundError):
            # Its packs are then indexed by nobody: their own headers say what they hold.
            unreadable.append(name)
    present = repo.pack_names()
    indexed = {loc.pack for locations in indexes.values() for loc in locations.values()}
    damaged = _damaged_packs(engine, indexes, present)
    found: dict[str, BlobLocation] = {
        b: loc
        for locations in indexes.values()
        for b, loc in locations.items()
        if loc.pack in present - damaged
    }
    orphans = sorted(present - indexed)
    # A damaged pack whose header still reads was wrongly indexed: its header says where.
    for pack in orphans + sorted(damaged):
        with contextlib.suppress(CorruptionError, ObjectNotFoundError):
            found.update(repo.pack_header(pack))
    if orphans or damaged or indexed - present or unreadable:
        packs: dict[str, list[tuple[str, int, int]]] = {}
        for blob, loc in found.items():
            packs.setdefault(loc.pack, []).append((blob, loc.offset, loc.length))
        if packs:
            repo.write_index(packs)
        repo.delete_objects([*indexes, *unreadable])  # those a push writes meanwhile stay
    with engine.state.transaction():
        engine.state.forget_indexes()
    engine.downloads.refresh_index()
    needs, damaged_snapshots, roots, removed = _readable_snapshots(
        engine, forget_damaged, set(found)
    )
    restored, incomplete = _restore_missing_blobs(engine, needs)
    return RepairReport(
        len(indexed & present),
        len(damaged),
        len(orphans),
        restored,
        incomplete,
        damaged_snapshots,
        roots,
        removed,
        mended,
    )


def _readable_snapshots(
    engine: Engine, forget: bool, stored: set[str]
) -> tuple[dict[int, set[str]], list[int], list[int], list[int]]:
    """(The blobs each readable snapshot needs, read as stored, that no intact pack holds
    (stored: those some pack holds); the snapshots that cannot be read, their root or
    file list damaged or gone; those of them whose root is; those removed.)

    Such a snapshot blocks every command that reaches it. With `forget` it is removed:
    that loses history, not files, which the machines that pushed or pulled it still have
    (`sync --allow-rollback` there pushes them again). Without, a machine that pulled it
    may still put its list back. A root that still reads is recorded as forgotten first,
    as prune does, so the chain can be followed across it."""
    repo = engine.repo
    needs: dict[int, set[str]] = {}
    broken: list[int] = []
    unlisted: list[SnapshotRoot] = []
    roots: list[SnapshotRoot] = []
    for seq in repo.snapshot_seqs():
        try:
            root = repo.load_root(seq)
        except ObjectNotFoundError:
            continue  # pruned meanwhile
        except CorruptionError:
            broken.append(seq)
            continue
        roots.append(root)
        try:
            snap = repo.snapshot(root, cached_ok=False)
        except CorruptionError:
            unlisted.append(root)
            continue
        needs[seq] = {b for e in snap.files.values() for b, _ in e.chunks if b not in stored}
    unreadable = sorted(broken + [r.seq for r in unlisted])
    if not forget:
        return needs, unreadable, broken, []
    # A damaged root's id is known from its child, its parent is not: its record ends the
    # chain there (a machine that saw only older snapshots is told of a fork), and the
    # child no longer looks as if its parent were missing.
    ends = [
        SnapshotRoot(r.parent, r.parent_id, None, None, "", 0.0, {})
        for r in roots
        if r.parent in broken and r.parent_id is not None
    ]
    repo.write_forgotten([*unlisted, *ends])
    repo.delete_objects([snapshot_name(seq) for seq in unreadable])
    return needs, unreadable, broken, unreadable


def _damaged_packs(
    engine: Engine, indexes: dict[str, dict[str, BlobLocation]], present: set[str]
) -> set[str]:
    """Indexed packs that fail when read: their bytes do not match their name, or a blob
    the index places there does not authenticate."""
    locations = [
        (b, loc) for idx in indexes.values() for b, loc in idx.items() if loc.pack in present
    ]
    advance = engine.reporter.progress("checking", sum(loc.length for _, loc in locations))
    damaged: set[str] = set()
    by_pack = group_by_pack(locations)

    def note(pack: str, _: SyncError) -> None:
        damaged.add(pack)

    engine.repo.read_packs(by_pack, lambda _, data: advance(len(data)), note)
    return damaged


def _restore_missing_blobs(engine: Engine, needs: dict[int, set[str]]) -> tuple[int, list[int]]:
    repo = engine.repo
    missing = set().union(*needs.values()) if needs else set()
    if not missing:
        return 0, []
    local = _look_at_everything(engine).files
    with contextlib.closing(PackWriter(repo)) as writer:
        for f in local.values():
            wanted = [c for c in f.cached.chunks if c[0] in missing]
            if not wanted:
                continue
            with contextlib.suppress(OSError):
                data = engine.reader.logical_bytes(f.path, f.abspath)
                for blob_id, offset, length in wanted:
                    writer.add(blob_id, data[offset : offset + length])
        written = writer.finish()
        restored = set(writer.pending)
    with engine.state.transaction():
        for name, locations in written.items():
            engine.state.add_index(name, locations)
    return len(restored), sorted(seq for seq, blobs in needs.items() if blobs - restored)
