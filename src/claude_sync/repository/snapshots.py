"""Snapshots: their sealed roots (a hash chain), their file lists in manifest parts, and the
records of the snapshots prune deleted (docs/FORMAT.md §6, §7)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from claude_sync.errors import CorruptionError, ObjectNotFoundError
from claude_sync.model import HEX64, FileEntry, Snapshot, SnapshotRoot
from claude_sync.repository import epochs
from claude_sync.repository.access import StoreAccess
from claude_sync.repository.cache import ManifestCache
from claude_sync.repository.file_list import (
    ChangedFiles,
    ChunkLists,
    PartBodies,
    StoredFiles,
    check_paths,
)
from claude_sync.repository.format import (
    FORMAT_VERSION,
    LIST_CHUNKS,
    LIST_VERSION,
    LISTS_FORMAT,
    PART_FILES,
    PART_VERSIONS,
    SNAPSHOT_VERSION,
    SNAPSHOT_VERSIONS,
    SPLIT_FORMAT,
    SPLIT_SNAPSHOT_VERSION,
    decode_json,
    encode_chunk_list,
    encode_json,
    encode_manifest,
    grouped,
    piece_count,
    piece_names,
    snapshot_id,
    snapshot_name,
    split_pieces,
)
from claude_sync.store.base import ObjectStore
from claude_sync.store.handle import Handle, ObjectKind


class Snapshots(StoreAccess):
    """The snapshot objects of a repository, and the manifest parts they name."""

    _cache: ManifestCache | None = None

    @property
    def cache_dir(self) -> Path | None:
        """Where manifest parts are kept as fetched: a push need not download the list it
        wrote. None: no cache."""
        return None if self._cache is None else self._cache.folder

    @cache_dir.setter
    def cache_dir(self, folder: Path | None) -> None:
        self._cache = None if folder is None else ManifestCache(folder, self.config.repo_id)

    def snapshot_seqs(self, start_after: str = "") -> list[int]:
        return sorted(h.number for h in self._handles(ObjectKind.SNAPSHOT, start_after))

    def head_seq(self, seen: int = 0) -> int | None:
        """The newest snapshot's number (see `newest_in`)."""
        newest = self.newest(seen)
        return None if newest is None else newest[0]

    def newest(self, seen: int = 0) -> tuple[int, str | None] | None:
        return self.newest_in(self.store, seen)

    @staticmethod
    def newest_in(store: ObjectStore, seen: int = 0) -> tuple[int, str | None] | None:
        """The newest snapshot's number, and its tag where the store gives tags. Given one
        this machine has seen, only names from it on are listed (where the store can): one
        request, however long the history. When none is there any more (older data served,
        or pruned), everything is listed."""
        for start_after in (snapshot_name(seen - 1), "") if seen > 1 else ("",):
            listed = store.list_tagged(ObjectKind.SNAPSHOT.prefix, start_after)
            found = [
                (handle.number, tag)
                for name, tag in listed.items()
                if (handle := Handle.parse_as(ObjectKind.SNAPSHOT, name)) is not None
            ]
            if found:
                return max(found, key=lambda seq_tag: seq_tag[0])
        return None

    def load_root(self, seq: int) -> SnapshotRoot:
        """A snapshot's root, read from the store (a few hundred bytes; a number can come
        back with other content after a rollback or a prune) and authenticated."""
        return self.open_root(seq, self.sealed_root(seq))

    def sealed_root(self, seq: int) -> bytes:
        return self._get(snapshot_name(seq))

    def content_tag(self, sealed: bytes) -> str | None:
        """The tag the store's listing gives an object holding exactly these bytes, where
        it can be told here (ObjectStore.content_tag)."""
        return self.store.content_tag(sealed)

    def open_root(self, seq: int, sealed: bytes) -> SnapshotRoot:
        """Snapshot seq's root from its sealed bytes, authenticated."""
        name = snapshot_name(seq)
        obj = decode_json(self.keys.open(name, sealed), f"snapshot {seq}")
        epochs.check_snapshot(self.keys, seq, sealed)
        what = f"snapshot {seq}"
        try:
            version = obj["version"]
            if version not in SNAPSHOT_VERSIONS or obj["repo_id"] != self.config.repo_id:
                raise CorruptionError(f"{what} belongs to another repository or format")
            if int(obj["seq"]) != seq:
                raise CorruptionError(f"{what} claims another sequence number")
            parent = None if obj["parent"] is None else int(obj["parent"])
            parent_id = obj.get("parent_id")
            if parent_id is not None and (
                not isinstance(parent_id, str) or not HEX64.fullmatch(parent_id)
            ):
                raise CorruptionError(f"{what} names its parent wrongly")
            if parent is not None and parent >= seq:
                raise CorruptionError(f"{what} names a later snapshot as its parent")
            return SnapshotRoot(
                seq,
                snapshot_id(sealed),
                parent,
                parent_id,
                str(obj["device"]),
                float(obj["time"]),
                obj,
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            raise CorruptionError(f"{what} is malformed") from None

    def load_roots(self, seqs: Iterable[int]) -> dict[int, SnapshotRoot]:
        """The roots of those snapshots that exist, fetched `parallel` at a time."""

        def one(seq: int) -> SnapshotRoot | None:
            try:
                return self.load_root(seq)
            except ObjectNotFoundError:
                return None

        return {r.seq: r for r in self._each(one, sorted(set(seqs))) if r is not None}

    def load_snapshot(self, seq: int, cached_ok: bool = True) -> Snapshot:
        """A snapshot; its manifest parts, whose random names are never reused, come from
        this machine's cache when it has them (unless only the stored copies will do, as for
        verify)."""
        return self.snapshot(self.load_root(seq), cached_ok)

    def snapshot(self, root: SnapshotRoot, cached_ok: bool = True, lazy: bool = False) -> Snapshot:
        """The snapshot of an already authenticated root. Lazy: its file list's groups are
        read and checked when first asked for (StoredFiles); else all of them now."""
        obj, seq, what = root.body, root.seq, f"snapshot {root.seq}"
        try:
            parts: dict[str, tuple[str, ...]] = {}
            if obj["version"] == 1:
                files: Mapping[str, FileEntry] = {
                    str(p): FileEntry.from_json(e, what) for p, e in obj["files"].items()
                }
                check_paths(files, what)
            else:
                parts = {
                    str(group): piece_names(names, obj["version"], what)
                    for group, names in obj["parts"].items()
                }
                # Lists are read whatever this machine's copy of the config says (it may
                # predate an upgrade); only writing them waits for format 7.
                stored = StoredFiles(
                    parts,
                    self._part_bodies(what, cached_ok),
                    self._chunk_lists(what, cached_ok),
                    what,
                )
                files = stored if lazy else stored.everything()
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            raise CorruptionError(f"{what} is malformed") from None
        snapshot = Snapshot(
            seq, root.parent, root.device, root.time, files, parts, root.parent_id, root.id
        )
        self._evict(snapshot)
        return snapshot

    def _part_bodies(self, what: str, cached_ok: bool) -> PartBodies:
        """How a snapshot's file list reads its manifest parts: several at a time, each
        parsed to its `groups` object."""

        def load(name: str) -> tuple[str, dict[str, Any]]:
            try:
                body = decode_json(self._open_part(name, cached_ok), f"{what}'s manifest")
            except ObjectNotFoundError:
                raise CorruptionError(f"{what} needs a manifest part that is missing") from None
            if not isinstance(body, dict) or body.get("version") not in PART_VERSIONS:
                raise CorruptionError(f"{what} has a manifest part of an unknown format")
            if not isinstance(body.get("groups"), dict):
                raise CorruptionError(f"{what} is malformed")
            return name, body["groups"]

        return lambda names: dict(self._each(load, names))

    def _chunk_lists(self, what: str, cached_ok: bool) -> ChunkLists:
        """How a snapshot's file list reads the chunk lists its big files name."""

        def load(name: str) -> tuple[str, tuple[tuple[str, int], ...]]:
            if Handle.parse_as(ObjectKind.MANIFEST, name) is None:
                raise CorruptionError(f"{what} names an invalid chunk list")
            try:
                body = decode_json(self._open_part(name, cached_ok, True), f"{what}'s chunk list")
                if body["version"] != LIST_VERSION:
                    raise CorruptionError(f"{what} has a chunk list of an unknown format")
                chunks = tuple((str(b), int(n)) for b, n in body["chunks"])
            except ObjectNotFoundError:
                raise CorruptionError(f"{what} needs a chunk list that is missing") from None
            except (KeyError, TypeError, ValueError, OverflowError):
                raise CorruptionError(f"{what} has a malformed chunk list") from None
            if any(not HEX64.fullmatch(b) or n < 0 for b, n in chunks):
                raise CorruptionError(f"{what} has a malformed chunk list")
            return name, chunks

        return lambda names: dict(self._each(load, names))

    @property
    def lists(self) -> bool:
        """Whether big files' entries name chunk lists here (format 7)."""
        return self.config.version >= LISTS_FORMAT

    def write_snapshot(self, snapshot: Snapshot, base: Snapshot | None = None) -> bool:
        """Create-only: False when another machine took this sequence number first.

        The file list is split into groups (manifest_group), and in a repository of format
        5 a big group into pieces (piece_of); pieces unchanged since base keep base's
        manifest part, the changed ones go into new parts of at most PART_FILES entries: a
        push uploads only the part of the list that changed, and a later one that needs a
        few groups reads small parts. A list built as base plus changes (ChangedFiles)
        is compared with base only in the groups the changes are in."""
        split = self.config.version >= SPLIT_FORMAT
        old_parts = base.parts if base is not None else {}
        files = snapshot.files
        parts: dict[str, list[str | None]] = {}
        # A version 1 base lists its files in its root and names no parts: its untouched
        # groups would have no part to keep, so it is written whole.
        if (
            isinstance(files, ChangedFiles)
            and base is not None
            and files.base is base.files
            and (base.parts or not base.files)
        ):
            touched, listing = files.touched(), files.group
            parts = {g: list(names) for g, names in old_parts.items() if g not in touched}
        else:
            by_group = grouped(dict(files))
            touched, listing = set(by_group), lambda g: by_group.get(g, {})
        old = _grouping(base.files) if base is not None else lambda g: {}
        changed: list[tuple[str, dict[str, FileEntry]]] = []
        new_lists: dict[str, tuple[tuple[str, int], ...]] = {}
        for group in sorted(touched):
            now = listing(group)
            if not now:
                continue  # its last file went
            before = old_parts.get(group)
            count = piece_count(len(now), len(before) if before else None) if split else 1
            was = old(group)
            kept = split_pieces(was, count) if before and len(before) == count else []
            parts[group] = []
            for piece, listed in enumerate(split_pieces(now, count)):
                if kept and kept[piece] == listed:
                    parts[group].append(before[piece])  # type: ignore[index]
                else:
                    parts[group].append(None)
                    if self.lists:
                        listed = {
                            p: _with_lists(e, was.get(p), new_lists) for p, e in listed.items()
                        }
                    changed.append((group, listed))
        new_names = self._write_parts(changed, new_lists)
        pieces = {
            g: tuple(n or new_names.pop(0) for n in names) for g, names in sorted(parts.items())
        }
        name = snapshot_name(snapshot.seq)
        whole = all(len(names) == 1 for names in pieces.values())
        root = {
            # Snapshots with no split group stay readable by claude-sync before format 5.
            "version": SNAPSHOT_VERSION if whole else SPLIT_SNAPSHOT_VERSION,
            "repo_id": self.config.repo_id,
            "seq": snapshot.seq,
            "parent": snapshot.parent,
            "device": snapshot.device,
            "time": snapshot.time,
            "parts": {g: n[0] if len(n) == 1 else list(n) for g, n in pieces.items()},
        }
        if snapshot.parent_id is not None:
            # An optional field for readers of version 2: older claude-sync ignores it.
            root["parent_id"] = snapshot.parent_id
        if snapshot.formerly:
            root["formerly"] = list(snapshot.formerly)
        sealed = self.keys.seal(name, encode_json(root))
        if not self._put(name, sealed):
            return False
        snapshot.parts = pieces
        snapshot.id, snapshot.sealed = snapshot_id(sealed), sealed
        self._evict(snapshot)
        return True

    def _write_parts(
        self,
        pieces: list[tuple[str, dict[str, FileEntry]]],
        lists: dict[str, tuple[tuple[str, int], ...]],
    ) -> list[str]:
        """Store the changed pieces, in order, in new parts of at most PART_FILES entries
        (a piece is never split), and the new chunk lists their entries name; returns each
        piece's part name."""
        parts: list[dict[str, dict[str, FileEntry]]] = []
        names: list[str] = []
        where: list[str] = []
        filled = PART_FILES
        for group, listed in pieces:
            if filled and filled + len(listed) > PART_FILES:
                parts.append({})
                names.append(Handle.random(ObjectKind.MANIFEST).name)
                filled = 0
            # Even an empty piece names its group in its part: readers look the group up.
            parts[-1].setdefault(group, {}).update(listed)
            filled += len(listed)
            where.append(names[-1])

        # Encoded here, one part at a time (JSON holds the interpreter anyway; encoded on
        # the store's threads, each part's transient dicts and strings landed in another
        # allocator arena: +50 MiB at 50,000 files), sent several at once.
        sealed = {}
        for name, chunks in lists.items():
            sealed[name] = self.keys.seal(name, encode_chunk_list(chunks))
            if self._cache is not None:
                self._cache.put(name, sealed[name], lasting=True)
        for name, groups in zip(names, parts, strict=True):
            sealed[name] = self.keys.seal(name, encode_manifest(groups))
            if self._cache is not None:
                self._cache.put(name, sealed[name])
        parts.clear()
        self._each(lambda name: self._put(name, sealed[name]), list(sealed))
        return where

    def mend_manifests(self) -> int:
        """Put back, from this machine's cache, the manifest parts and chunk lists the store
        holds damaged, and the parts it lost that a snapshot names: a snapshot naming one
        can be read again. (A lost chunk list is not told from one prune removed.) Returns
        how many."""
        if self._cache is None:
            return 0
        named: set[str] | None = None
        mended = 0
        for name, sealed in self._cache.intact(self.keys.open):
            try:
                self.keys.open(name, self._get(name))
                continue
            except ObjectNotFoundError:
                if named is None:
                    named = self._named_parts()
                if name not in named:
                    continue  # pruned, or a chunk list
            except CorruptionError:
                self.delete_objects([name])
            mended += self._put(name, sealed)
        return mended

    def _named_parts(self) -> set[str]:
        """The manifest parts the snapshot roots that can be read name."""
        named: set[str] = set()
        for seq in self.snapshot_seqs():
            with contextlib.suppress(
                CorruptionError, ObjectNotFoundError, KeyError, TypeError, AttributeError
            ):
                root = self.load_root(seq)
                for names in root.body["parts"].values():
                    named.update(piece_names(names, root.body["version"], f"snapshot {seq}"))
        return named

    def _open_part(self, name: str, cached_ok: bool, lasting: bool = False) -> bytes:
        """A manifest object's plaintext, through this machine's cache when there is one
        (lasting: a chunk list, which a later snapshot may still name)."""
        if self._cache is None:
            return self.keys.open(name, self._get(name))
        return self._cache.open(name, self._get, self.keys.open, cached_ok, lasting)

    def _evict(self, current: Snapshot) -> None:
        if self._cache is not None:
            self._cache.keep_only(current.seq, current.part_names())

    # -- forgotten history ------------------------------------------------------------------

    def forgotten(self) -> dict[str, tuple[int, int | None, str | None]]:
        """id -> (seq, parent, parent id) of every snapshot prune deleted: a machine that
        last saw one of them can still check that the head descends from it. A damaged
        record is left out: the chain then ends there, which a machine that needed it
        takes for a fork (`sync --allow-rollback`), never for a history it can trust."""
        return self.read_forgotten()[0]

    def read_forgotten(self) -> tuple[dict[str, tuple[int, int | None, str | None]], list[str]]:
        """The links of the history records that can be read, and the names of those that
        cannot."""
        links: dict[str, tuple[int, int | None, str | None]] = {}
        damaged = []
        for name in (h.name for h in self._handles(ObjectKind.FORGOTTEN)):
            try:
                obj = decode_json(self.keys.open(name, self._get(name)), f"history record {name}")
                found = {}
                for seq, ident, parent, parent_id in obj["links"]:
                    if not HEX64.fullmatch(ident) or not (
                        parent_id is None or HEX64.fullmatch(parent_id)
                    ):
                        raise ValueError
                    found[ident] = (int(seq), None if parent is None else int(parent), parent_id)
                links.update(found)
            except ObjectNotFoundError:
                continue
            except (CorruptionError, KeyError, TypeError, ValueError, OverflowError):
                damaged.append(name)
        return links, damaged

    def write_forgotten(self, roots: Iterable[SnapshotRoot]) -> None:
        links = [[r.seq, r.id, r.parent, r.parent_id] for r in roots]
        if links:
            name = Handle.random(ObjectKind.FORGOTTEN).name
            body = {"version": FORMAT_VERSION, "links": links}
            self._put(name, self.keys.seal(name, encode_json(body)))


def _grouping(files: Mapping[str, FileEntry]) -> Callable[[str], dict[str, FileEntry]]:
    """A file list's groups one at a time, decoding no other where the list allows it."""
    if isinstance(files, StoredFiles | ChangedFiles):
        return files.group
    by_group = grouped(dict(files))
    return lambda group: by_group.get(group, {})


def _with_lists(
    entry: FileEntry, old: FileEntry | None, new: dict[str, tuple[tuple[str, int], ...]]
) -> FileEntry:
    """entry naming a chunk list for each LIST_CHUNKS of its chunks but the last (format
    7): the list it (as read) or its previous version names for the same chunks, else a new
    one, put in new. An append leaves every list as it was: it can cut the last chunk again
    (when that is short), which is never in a list."""
    full = max(0, len(entry.chunks) - 1) // LIST_CHUNKS
    if not full:
        return replace(entry, lists=()) if entry.lists else entry
    known: dict[int, tuple[str, tuple[tuple[str, int], ...]]] = {}
    for source in (entry, old):
        offset = 0
        for name, count, _ in source.lists if source is not None else ():
            if count == LIST_CHUNKS and offset % LIST_CHUNKS == 0:
                known.setdefault(offset, (name, source.chunks[offset : offset + count]))
            offset += count
    lists = []
    for start in range(0, full * LIST_CHUNKS, LIST_CHUNKS):
        block = entry.chunks[start : start + LIST_CHUNKS]
        name, chunks = known.get(start, ("", ()))
        if chunks != block:
            name = Handle.random(ObjectKind.MANIFEST).name
            new[name] = block
        lists.append((name, LIST_CHUNKS, sum(n for _, n in block)))
    return replace(entry, lists=tuple(lists))
