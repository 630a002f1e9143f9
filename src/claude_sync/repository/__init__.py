"""Repository format v1 (docs/FORMAT.md): keys, config, packs, indexes and snapshots.

Every object but the key objects and key epochs is sealed, with the master key or, once key
epochs exist (epochs.py), with the newest epoch's data key; the name an object is stored
under is its associated data. This module turns those objects into Python values and back,
and validates everything it decodes: a hostile backend gets clean errors, never a crash.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from claude_sync import compression, crypto, epochs, resources
from claude_sync.config import write_private
from claude_sync.errors import (
    BackendError,
    ConfigError,
    CorruptionError,
    ObjectNotFoundError,
    RevokedError,
    SyncError,
    WrongKeyError,
)
from claude_sync.session_summary import SessionSummary
from claude_sync.store.base import ObjectStore

#: the version of index, prune mark and history record objects
FORMAT_VERSION = 1
#: the repository format, in the config: 1 (formats "1" and "2" of claude-sync, which differ
#: only in snapshot versions) or 3, whose snapshots must all be chained (docs/FORMAT.md §10).
#: claude-sync before 3 refuses a format 3 config, so it cannot add unchained snapshots.
CHAINED_FORMAT = 3
#: format 3 with key epochs: written when the first epoch starts, so that claude-sync
#: before 0.4, which cannot open epoch-sealed objects, refuses the repository by its config
EPOCH_FORMAT = 4
#: format 4 whose snapshots may split a big manifest group into pieces (snapshot version 3):
#: claude-sync before it refuses the config instead of failing on such a snapshot
SPLIT_FORMAT = 5
REPO_FORMAT = SPLIT_FORMAT
REPO_FORMATS = (1, CHAINED_FORMAT, EPOCH_FORMAT, SPLIT_FORMAT)
UPGRADE_NAME = "config-upgrade"
#: 1: the file list inside the snapshot; 2: in manifest parts; 3: a group may be split into
#: pieces, each in its own part. Readers take all three.
SNAPSHOT_VERSION = 2
SPLIT_SNAPSHOT_VERSION = 3
SNAPSHOT_VERSIONS = (1, SNAPSHOT_VERSION, SPLIT_SNAPSHOT_VERSION)
#: the versions a manifest part's body may have (its layout did not change with version 3)
PART_VERSIONS = (1, SNAPSHOT_VERSION)
#: files per piece of a split manifest group: a push that changes one file of a project
#: rewrites about this many entries, however many sessions the project holds
PIECE_FILES = 32
CONFIG_NAME = "config"
KEYS_PREFIX = "keys/"
DATA_PREFIX = "data/"
INDEX_PREFIX = "index/"
SNAPSHOTS_PREFIX = "snapshots/"
PRUNE_PREFIX = "prune/"
MANIFEST_PREFIX = "manifest/"
FORGOTTEN_PREFIX = "forgotten/"
SEQ_DIGITS = 10
PACK_TARGET_SIZE = 8 * 1024 * 1024
#: packs a push or pull holds at once, whatever the number of transfers: bounded memory
#: (4 x 8 MiB) at about the parallelism restic uses for S3
PACKS_IN_MEMORY = 4
T = TypeVar("T")
R = TypeVar("R")

_HEX64 = re.compile(r"[0-9a-f]{64}")
_MANIFEST_NAME = re.compile(r"manifest/[0-9a-f]{64}")
_SNAPSHOT_NAME = re.compile(rf"snapshots/(\d{{{SEQ_DIGITS}}})")


def snapshot_name(seq: int) -> str:
    return f"{SNAPSHOTS_PREFIX}{seq:0{SEQ_DIGITS}d}"


def pack_name(digest: str) -> str:
    return f"{DATA_PREFIX}{digest[:2]}/{digest}"


@dataclass(frozen=True)
class ChunkerParams:
    min_size: int
    avg_size: int
    max_size: int
    seed: int


@dataclass(frozen=True)
class RepoConfig:
    repo_id: str
    chunker: ChunkerParams
    created: str
    version: int = REPO_FORMAT


@dataclass(frozen=True)
class FileEntry:
    """One synced file in a snapshot: its content is the concatenation of its chunks."""

    sha256: str
    size: int
    mtime_ns: int
    mode: int
    chunks: tuple[tuple[str, int], ...]  # (blob id, plaintext length)
    #: a conversation transcript's summary (optional: older writers have none)
    session: SessionSummary | None = None

    def to_json(self) -> dict[str, Any]:
        body = {
            "sha256": self.sha256,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "mode": self.mode,
            "chunks": [list(c) for c in self.chunks],
        }
        if self.session is not None:
            body["session"] = self.session.to_json()
        return body

    @classmethod
    def from_json(cls, obj: Any, what: str) -> FileEntry:
        try:
            chunks = tuple((str(b), int(n)) for b, n in obj["chunks"])
            entry = cls(
                sha256=str(obj["sha256"]),
                size=int(obj["size"]),
                mtime_ns=int(obj["mtime_ns"]),
                mode=int(obj["mode"]),
                chunks=chunks,
                session=(
                    None if "session" not in obj else SessionSummary.from_json(obj["session"], what)
                ),
            )
        except (KeyError, TypeError, ValueError, OverflowError):
            raise CorruptionError(f"{what} has a malformed file entry") from None
        if (
            not _HEX64.fullmatch(entry.sha256)
            or entry.size < 0
            or not 0 <= entry.mode <= 0o7777
            or any(not _HEX64.fullmatch(b) or n < 0 for b, n in chunks)
            or sum(n for _, n in chunks) != entry.size
        ):
            raise CorruptionError(f"{what} has an inconsistent file entry")
        return entry


@dataclass
class Snapshot:
    seq: int
    parent: int | None
    device: str
    time: float
    files: dict[str, FileEntry] = field(default_factory=dict)
    #: manifest group -> the manifest part of each of its pieces, piece k holding the paths
    #: whose piece_of(path, n) is k (one piece: the whole group); empty for a version 1
    #: snapshot
    parts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the parent's identity (see SnapshotRoot.id); None for the first snapshot and for
    #: snapshots written before history was chained
    parent_id: str | None = None
    #: this snapshot's identity, known once it was read or written
    id: str = ""
    #: names the writing device had before it was renamed
    formerly: tuple[str, ...] = ()

    def part_names(self) -> set[str]:
        return {name for names in self.parts.values() for name in names}


@dataclass(frozen=True)
class SnapshotRoot:
    """A snapshot's authenticated root, without its file list: enough to follow history.

    `id` is the SHA-256 of the sealed bytes as stored. Only a holder of the key can seal, so
    a root naming its parent's id names exactly one parent: history is a hash chain."""

    seq: int
    id: str
    parent: int | None
    parent_id: str | None
    device: str
    time: float
    body: dict[str, Any]


def snapshot_id(sealed: bytes) -> str:
    return hashlib.sha256(sealed).hexdigest()


def manifest_group(path: str) -> str:
    """The manifest group of a path: its folder cut to two levels (a project's folder,
    `agents`, `skills/<name>`), or "" for the files at the top."""
    return "/".join(path.split("/")[:-1][:2])


def _grouped(files: dict[str, FileEntry]) -> dict[str, dict[str, FileEntry]]:
    groups: dict[str, dict[str, FileEntry]] = {}
    for path, entry in files.items():
        groups.setdefault(manifest_group(path), {})[path] = entry
    return groups


def piece_of(path: str, pieces: int) -> int:
    """Which of a group's pieces lists a path: a stable hash, so a path stays in its piece
    from push to push and a change rewrites only that piece."""
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") % pieces


def piece_count(files: int, before: int | None) -> int:
    """How many pieces a group of that many files is split into: a power of two giving
    about PIECE_FILES files each. The count it had before is kept while it is within a
    factor of two of that, so a group growing or shrinking by a file does not move every
    path to another piece."""
    wanted = 1
    while wanted * PIECE_FILES < files:
        wanted *= 2
    if before is not None and wanted // 2 <= before <= wanted * 2:
        return before
    return wanted


def _pieces(files: dict[str, FileEntry], pieces: int) -> list[dict[str, FileEntry]]:
    split: list[dict[str, FileEntry]] = [{} for _ in range(pieces)]
    for path, entry in files.items():
        split[piece_of(path, pieces)][path] = entry
    return split


@dataclass(frozen=True)
class PruneMark:
    """Packs found unreferenced at `time`; deleted by a prune run a grace period later."""

    name: str
    time: float
    packs: frozenset[str]


@dataclass(frozen=True)
class BlobLocation:
    pack: str
    offset: int
    length: int


def _encode_json(obj: Any) -> bytes:
    text = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    return compression.pack(text, padded=True)


def _decode_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(compression.unpack(data, what))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CorruptionError(f"{what} is not valid JSON") from None


class Repository:
    """An opened repository: a store plus the keys and config that make sense of it."""

    def __init__(
        self,
        store: ObjectStore | None,
        keys: crypto.KeyRing,
        config: RepoConfig,
        open_store: Callable[[], ObjectStore] | None = None,
    ) -> None:
        self._store = store
        self._open_store = open_store
        self._opening = threading.Lock()
        self._open_error: Exception | None = None
        self._background = False
        self._closed = False
        self.keys = keys
        self.config = config
        self.uploaded_bytes = 0
        self.downloaded_bytes = 0
        #: how many objects may travel at once, for stores that are thread-safe
        self.transfers = 1
        #: where manifest parts are kept as fetched (sealed, so a cached copy is checked like
        #: a download): a push need not download the list it wrote
        self.cache_dir: Path | None = None
        self._newest_seen = 0
        self._counter_lock = threading.Lock()

    @classmethod
    def deferred(
        cls, open_store: Callable[[], ObjectStore], keys: crypto.KeyRing, config_body: Any
    ) -> Repository:
        """A repository known from this machine's cache: the store is opened, and checked to
        still hold this repository, only when first needed (a no-op push never needs it)."""
        return cls(None, keys, _parse_config(config_body), open_store)

    @property
    def store(self) -> ObjectStore:
        with self._opening:
            if self._store is None:
                if self._open_error is not None:
                    raise self._open_error
                assert self._open_store is not None
                self._store = self._connect(self._open_store)
        return self._store

    def _connect(self, open_store: Callable[[], ObjectStore]) -> ObjectStore:
        store = open_store()
        try:
            stored = Repository.open(store, self.keys).config
            found = stored.repo_id
            if found == self.config.repo_id:
                self.config = stored  # upgraded by another machine since it was cached
            if found != self.config.repo_id:
                raise ConfigError(
                    f"{store.display} now holds a different repository than the one this "
                    "machine joined; run `claude-sync init --force` to join it"
                )
        except BaseException:
            store.close()
            raise
        return store

    def open_in_background(self) -> None:
        """Start opening the store now, for a caller that will need it soon (a push that
        found changes: importing a cloud SDK and the first request overlap with hashing).
        A failure is kept and raised where the store is first needed."""
        if self._store is not None or self._open_store is None or self._background:
            return
        self._background = True

        def connect() -> None:
            with self._opening:
                if self._store is None and not self._closed:
                    try:
                        self._store = self._connect(self._open_store)  # type: ignore[arg-type]
                    except Exception as exc:  # raised where the store is needed
                        self._open_error = exc

        threading.Thread(target=connect, daemon=True).start()

    def close(self) -> None:
        # Waits for an open still running in the background: nothing it starts (a git fetch
        # in the shared cache) may outlive the machine-wide lock the caller holds.
        with self._opening:
            self._closed = True
            if self._store is not None:
                self._store.close()

    @property
    def parallel(self) -> int:
        """Transfers at once: 1 for stores whose requests must not overlap."""
        return max(1, self.transfers) if self.store.parallel_safe else 1

    def config_body(self) -> dict[str, Any]:
        return _config_body(self.config)

    def _put(self, name: str, data: bytes) -> bool:
        created = self.store.put_if_absent(name, data)
        if created:
            with self._counter_lock:
                self.uploaded_bytes += len(data)
        return created

    def write_pack(self, name: str, data: bytes) -> bool:
        """Upload a sealed pack (see PackWriter); False when it was there already."""
        return self._put(name, data)

    def _get(self, name: str) -> bytes:
        data = self.store.get(name)
        with self._counter_lock:
            self.downloaded_bytes += len(data)
        return data

    def read_packs(
        self,
        packs: dict[str, dict[str, BlobLocation]],
        sink: Callable[[str, bytes], None],
        damaged: Callable[[str, SyncError], None] | None = None,
    ) -> None:
        """Hand every wanted blob of many packs to sink, `parallel` packs at a time. Each
        worker holds one pack and one blob at a time, so memory stays bounded. With
        `damaged`, a pack that is damaged or missing is reported there and the others are
        still read; without it, it fails the whole read."""

        def one(item: tuple[str, dict[str, BlobLocation]]) -> None:
            try:
                for blob_id, plain in self.iter_pack(*item):
                    sink(blob_id, plain)
            except (CorruptionError, ObjectNotFoundError) as exc:
                if damaged is None:
                    raise
                damaged(item[0], exc)

        self._each(one, list(packs.items()), PACKS_IN_MEMORY)

    def _each(self, fn: Callable[[T], R], items: list[T], most: int = 1 << 16) -> list[R]:
        """fn over items, `parallel` (and at most `most`) at a time; the first error is
        re-raised."""
        workers = min(self.parallel, most)
        if workers <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))

    # -- creation and opening -------------------------------------------------------------

    @staticmethod
    def exists(store: ObjectStore) -> bool:
        return bool(store.list(KEYS_PREFIX)) or bool(store.list(CONFIG_NAME))

    @classmethod
    def create(cls, store: ObjectStore, passphrase: str | None, label: str = "") -> Repository:
        """A new repository with a fresh master key; a passphrase key object if one is given."""
        master = crypto.random_key()
        keys = crypto.KeyRing(master)
        config = RepoConfig(
            repo_id=os.urandom(16).hex(),
            chunker=ChunkerParams(
                min_size=128 * 1024,
                avg_size=512 * 1024,
                max_size=2 * 1024 * 1024,
                # A secret gear seed, so each repository cuts a file at its own places (a weak
                # key, XORed into a public table: SECURITY.md).
                seed=int.from_bytes(os.urandom(8), "big") % (2**63 - 1) + 1,
            ),
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        repo = cls(store, keys, config)
        # The config goes first: a repository is usable once any key object exists, and a
        # key object without its config would look like a damaged repository.
        body = _config_body(config)
        if not store.put_if_absent(CONFIG_NAME, keys.seal_master(CONFIG_NAME, _encode_json(body))):
            raise ConfigError(f"{store.display} already holds a repository")
        if passphrase is not None:
            keys.identity = repo.add_key(passphrase, label)
        return repo

    @classmethod
    def open(cls, store: ObjectStore, master: bytes | crypto.KeyRing) -> Repository:
        """Open with a master key, or with the keys a machine holds (then the key epochs it
        learns are added to them)."""
        keys = master if isinstance(master, crypto.KeyRing) else crypto.KeyRing(master)
        try:
            sealed = store.get(CONFIG_NAME)
        except ObjectNotFoundError:
            sealed = cls._finish_upgrade(store, keys)
        try:
            plain = keys.open(CONFIG_NAME, sealed)
        except CorruptionError:
            raise WrongKeyError(
                "the key does not open this repository (wrong key, or the config object is damaged)"
            ) from None
        repo = cls(store, keys, _parse_config(_decode_json(plain, "the config object")))
        epochs.refresh(store, keys)
        return repo

    @staticmethod
    def _finish_upgrade(store: ObjectStore, keys: crypto.KeyRing) -> bytes:
        """The config of a repository whose upgrade stopped between removing the old config
        and writing the new one: whoever opens it next completes the upgrade."""
        try:
            body = keys.open(UPGRADE_NAME, store.get(UPGRADE_NAME))
        except ObjectNotFoundError:
            # An unmounted drive is a failure to reach the repository, not a wrong setting.
            if (gone := store.missing()) is not None:
                raise BackendError(f"cannot reach the repository: {gone}") from None
            raise ConfigError(
                f"{store.display} holds no claude-sync repository (wrong place, or not reachable?)"
            ) from None
        store.put_if_absent(CONFIG_NAME, keys.seal_master(CONFIG_NAME, body))
        return store.get(CONFIG_NAME)

    def upgrade(self, version: int = REPO_FORMAT) -> bool:
        """Rewrite the config at that format; False when it already was at least. The new
        config is stored aside first, so a crash in between is completed by the next open."""
        current = _parse_config(
            _decode_json(self.keys.open(CONFIG_NAME, self.store.get(CONFIG_NAME)), "the config")
        )
        if current.version >= version:
            self.config = current
            return False
        upgraded = RepoConfig(current.repo_id, current.chunker, current.created, version)
        body = _encode_json(_config_body(upgraded))
        self.store.delete(UPGRADE_NAME)
        self.store.put_if_absent(UPGRADE_NAME, self.keys.seal_master(UPGRADE_NAME, body))
        self.store.delete(CONFIG_NAME)
        self._finish_upgrade(self.store, self.keys)
        self.store.delete(UPGRADE_NAME)
        self.config = upgraded
        return True

    @classmethod
    def unlock(cls, store: ObjectStore, passphrase: str) -> Repository:
        names = sorted(store.list(KEYS_PREFIX))
        if not names:
            if store.list(CONFIG_NAME):
                raise ConfigError(
                    "this repository has no passphrase keys: join it with --recovery-key"
                )
            raise ConfigError(f"{store.display} is not a claude-sync repository")
        found = cls._match_key(store, names, passphrase)
        if found is None:
            raise WrongKeyError("wrong passphrase for this repository")
        return cls.open(store, _machine_keys(*found))

    @classmethod
    def recover(cls, store: ObjectStore, text: str) -> Repository:
        """Open with a recovery key: a csr1 key is the master key (it opens no key epoch),
        a csr2 key opens its own key object."""
        prefix, secret = crypto.parse_recovery_key(text)
        if prefix == crypto.RECOVERY_PREFIX:
            try:
                return cls.open(store, secret)
            except RevokedError:
                raise RevokedError(
                    "that csr1 recovery key predates the repository's key epochs: it opens "
                    "only data pushed before the first `key remove`; make a new one with "
                    "`claude-sync key export` on a machine that is set up"
                ) from None
        name = KEYS_PREFIX + crypto.recovery_key_name(secret)
        found = cls._match_key(store, [name], secret)
        if found is None:
            raise WrongKeyError("that recovery key was removed or belongs to another repository")
        return cls.open(store, _machine_keys(*found))

    @staticmethod
    def _match_key(
        store: ObjectStore, names: list[str], secret: str | bytes
    ) -> tuple[str, bytes, bytes | None] | None:
        """(name, master key, identity) of the first key object the secret opens."""
        for name in names:
            try:
                obj = json.loads(store.get(name))
            except (ValueError, ObjectNotFoundError):
                continue
            if not isinstance(obj, dict):
                continue
            try:
                return name, *crypto.unwrap_master(obj, secret, name)
            except (WrongKeyError, CorruptionError):
                continue
        return None

    def key_opened_by(self, passphrase: str) -> str:
        found = self._match_key(self.store, sorted(self.store.list(KEYS_PREFIX)), passphrase)
        if found is None or found[1] != self.keys.master:
            raise WrongKeyError("that passphrase opens no key of this repository")
        return found[0]

    def add_key(
        self, secret: str | bytes, label: str = "", name: str | None = None
    ) -> tuple[str, bytes]:
        """A key object for a passphrase (or a recovery key's secret); returns its name and
        X25519 identity. It receives the current key epoch and every later one."""
        name = name or KEYS_PREFIX + os.urandom(16).hex()
        private, public = crypto.new_identity()
        obj = crypto.wrap_master(self.keys.master, secret, name, private)
        obj["recipient"] = epochs.recipient_fields(self.keys, name, public)
        grant = epochs.grant(self.keys, name, public)
        if grant is not None:
            obj["grant"] = grant
        # The label may name a person or machine: readable only with the master key.
        obj["label"] = crypto.b64(self.keys.seal_master(name + "/label", label.encode()))
        obj["created"] = int(time.time())
        if not self._put(name, json.dumps(obj, sort_keys=True).encode()):
            raise ConfigError(f"key {name[len(KEYS_PREFIX) :]} already exists")
        return name, private

    def add_recovery_key(self) -> str:
        """A new recovery key (csr2): the secret of a key object of its own, so it follows
        key epochs and `key remove` revokes it like any other key."""
        secret = crypto.random_key()
        self.add_key(secret, "recovery key", KEYS_PREFIX + crypto.recovery_key_name(secret))
        return crypto.recovery_key(secret)

    def list_keys(self) -> list[tuple[str, str, int]]:
        """(id, label, created) of every key object."""
        keys = []
        for name in sorted(self.store.list(KEYS_PREFIX)):
            try:
                obj = json.loads(self._get(name))
                sealed = crypto.unb64(obj.get("label", ""), name) if obj.get("label") else b""
                label = self.keys.open(name + "/label", sealed).decode() if sealed else ""
                created = int(obj.get("created", 0))
            except (ValueError, AttributeError, CorruptionError, UnicodeDecodeError):
                label, created = "(damaged key object)", 0
            keys.append((name[len(KEYS_PREFIX) :], label, created))
        return keys

    def remove_key(self, key_id: str) -> list[str]:
        """Revoke a key: a new key epoch for the others, then delete its key object. Returns
        the ids of remaining keys too old to receive the new epoch (they are cut off too)."""
        names = self.store.list(KEYS_PREFIX)
        name = KEYS_PREFIX + key_id
        if name not in names:
            raise ConfigError(f"no key {key_id} in this repository (see `claude-sync key list`)")
        if len(names) == 1:
            raise ConfigError("refusing to remove the last key: add another one first")
        return self._revoke(name, names)

    def change_passphrase(self, old: str, ask_new: Callable[[], str]) -> list[str]:
        """A new key object (new identity) for the new passphrase, then the old one revoked:
        restoring the old key object opens nothing written after. The new passphrase is
        asked for only once the old one opened a key: nobody types one in vain."""
        old_name = self.key_opened_by(old)
        new = ask_new()
        labels = {k: label for k, label, _ in self.list_keys()}
        new_name, private = self.add_key(new, labels.get(old_name[len(KEYS_PREFIX) :], ""))
        if self.keys.identity is None or self.keys.identity[0] == old_name:
            self.keys.identity = (new_name, private)
        return self._revoke(old_name, self.store.list(KEYS_PREFIX))

    def _revoke(self, name: str, names: list[str]) -> list[str]:
        recipients: dict[str, bytes] = {}
        stale = []
        current = epochs.current_recipients(self.store, self.keys)
        for other in sorted(n for n in names if n != name):
            try:
                obj = json.loads(self._get(other))
            except (ValueError, ObjectNotFoundError):
                obj = None
            public = epochs.verified_recipient(self.keys, other, obj, current)
            if public is None:
                stale.append(other[len(KEYS_PREFIX) :])
            else:
                recipients[other] = public
        if not recipients:
            raise ConfigError(
                "no remaining key could open the new key epoch (keys made before claude-sync "
                "0.4 cannot): add a key with `claude-sync key add` first"
            )
        self.upgrade(EPOCH_FORMAT)
        epochs.start(self.store, self.keys, recipients, self.head_seq() or 0)
        self.store.delete(name)
        return stale

    # -- snapshots --------------------------------------------------------------------------

    def snapshot_seqs(self, start_after: str = "") -> list[int]:
        seqs = []
        for name in self.store.list(SNAPSHOTS_PREFIX, start_after):
            match = _SNAPSHOT_NAME.fullmatch(name)
            if match:
                seqs.append(int(match.group(1)))
        return sorted(seqs)

    def head_seq(self, seen: int = 0) -> int | None:
        """The newest snapshot's number. Given one this machine has seen, only names from
        it on are listed (where the store can): one request, however long the history. When
        none is there any more (older data served, or pruned), everything is listed."""
        if seen > 1:
            seqs = self.snapshot_seqs(snapshot_name(seen - 1))
            if seqs:
                return seqs[-1]
        seqs = self.snapshot_seqs()
        return seqs[-1] if seqs else None

    def load_root(self, seq: int) -> SnapshotRoot:
        """A snapshot's root, always read from the store (a few hundred bytes; a number can
        come back with other content after a rollback or a prune) and authenticated."""
        name = snapshot_name(seq)
        sealed = self._get(name)
        obj = _decode_json(self.keys.open(name, sealed), f"snapshot {seq}")
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
                not isinstance(parent_id, str) or not _HEX64.fullmatch(parent_id)
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

    def snapshot(self, root: SnapshotRoot, cached_ok: bool = True) -> Snapshot:
        """The whole snapshot of an already authenticated root."""
        obj, seq, what = root.body, root.seq, f"snapshot {root.seq}"
        try:
            parts: dict[str, tuple[str, ...]] = {}
            if obj["version"] == 1:
                files = {str(p): FileEntry.from_json(e, what) for p, e in obj["files"].items()}
            else:
                parts = {
                    str(group): _piece_names(names, obj["version"], what)
                    for group, names in obj["parts"].items()
                }
                files = self._load_parts(parts, what, cached_ok)
            _check_paths(files, what)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            raise CorruptionError(f"{what} is malformed") from None
        snapshot = Snapshot(
            seq, root.parent, root.device, root.time, files, parts, root.parent_id, root.id
        )
        self._evict(snapshot)
        return snapshot

    def _load_parts(
        self, parts: dict[str, tuple[str, ...]], what: str, cached_ok: bool
    ) -> dict[str, FileEntry]:
        def load(name: str) -> tuple[str, Any]:
            try:
                body = _decode_json(self._open_object(name, cached_ok), f"{what}'s manifest")
            except ObjectNotFoundError:
                raise CorruptionError(f"{what} needs a manifest part that is missing") from None
            if body["version"] not in PART_VERSIONS:
                raise CorruptionError(f"{what} has a manifest part of an unknown format")
            return name, body["groups"]

        names = sorted({name for pieces in parts.values() for name in pieces})
        loaded = dict(self._each(load, names))
        files: dict[str, FileEntry] = {}
        for group, pieces in parts.items():
            for piece, name in enumerate(pieces):
                for path, entry in loaded[name][group].items():
                    path = str(path)
                    if manifest_group(path) != group:
                        raise CorruptionError(f"{what} lists a file in the wrong manifest part")
                    # A part may also hold other pieces of the group (written by the same
                    # push) or pieces no snapshot uses any more: each piece is taken from
                    # the part its snapshot names for it.
                    if piece_of(path, len(pieces)) == piece:
                        files[path] = FileEntry.from_json(entry, what)
        return files

    def write_snapshot(self, snapshot: Snapshot, base: Snapshot | None = None) -> bool:
        """Create-only: False when another machine took this sequence number first.

        The file list is split into groups (manifest_group), and in a repository of format
        5 a big group into pieces (piece_of); pieces unchanged since base keep base's
        manifest part, the changed ones go into one new part: a push uploads only the part
        of the list that changed."""
        split = self.config.version >= SPLIT_FORMAT
        old = _grouped(base.files) if base is not None else {}
        old_parts = base.parts if base is not None else {}
        parts: dict[str, list[str | None]] = {}
        changed: dict[str, dict[str, FileEntry]] = {}
        for group, files in _grouped(snapshot.files).items():
            before = old_parts.get(group)
            count = piece_count(len(files), len(before) if before else None) if split else 1
            kept = _pieces(old.get(group, {}), count) if before and len(before) == count else []
            parts[group] = []
            for piece, listed in enumerate(_pieces(files, count)):
                if kept and kept[piece] == listed:
                    parts[group].append(before[piece])  # type: ignore[index]
                else:
                    parts[group].append(None)
                    changed.setdefault(group, {}).update(listed)
        part = MANIFEST_PREFIX + os.urandom(32).hex()
        if changed:
            listing = {
                group: {path: e.to_json() for path, e in sorted(files.items())}
                for group, files in sorted(changed.items())
            }
            body = {"version": SNAPSHOT_VERSION, "groups": listing}
            sealed = self.keys.seal(part, _encode_json(body))
            self._put(part, sealed)
            self._cache_object(part, sealed)
        pieces = {g: tuple(n or part for n in names) for g, names in sorted(parts.items())}
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
        sealed = self.keys.seal(name, _encode_json(root))
        if not self._put(name, sealed):
            return False
        snapshot.parts = pieces
        snapshot.id = snapshot_id(sealed)
        self._evict(snapshot)
        return True

    # -- the local cache of immutable objects ---------------------------------------------

    def _cache_path(self, name: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.config.repo_id}-{name.replace('/', '-')}"

    def _open_object(self, name: str, cached_ok: bool) -> bytes:
        """A manifest part's plaintext, from the cache (checked like a download) or the
        store; what is downloaded is cached."""
        path = self._cache_path(name)
        if cached_ok and path is not None:
            try:
                return self.keys.open(name, path.read_bytes())
            except (OSError, CorruptionError):
                pass  # not cached, or a damaged copy: fetch it
        sealed = self._get(name)
        plain = self.keys.open(name, sealed)
        self._cache_object(name, sealed)
        return plain

    def _cache_object(self, name: str, sealed: bytes) -> None:
        """The cache only saves requests: failing to write it is not an error."""
        path = self._cache_path(name)
        if path is None:
            return
        with contextlib.suppress(OSError):
            write_private(path, sealed)

    def _evict(self, current: Snapshot) -> None:
        """Once the newest snapshot this process has seen is loaded or written, keep only
        the manifest parts it uses."""
        if self.cache_dir is None or current.seq < self._newest_seen:
            return
        self._newest_seen = current.seq
        used = {self._cache_path(name) for name in current.part_names()}
        with contextlib.suppress(OSError):
            for part in self.cache_dir.glob(f"{self.config.repo_id}-{MANIFEST_PREFIX[:-1]}-*"):
                if part not in used:
                    part.unlink(missing_ok=True)

    # -- indexes --------------------------------------------------------------------------

    def index_names(self) -> list[str]:
        return [
            n for n in self.store.list(INDEX_PREFIX) if _HEX64.fullmatch(n[len(INDEX_PREFIX) :])
        ]

    def load_index(self, name: str) -> dict[str, BlobLocation]:
        obj = _decode_json(self.keys.open(name, self._get(name)), f"index {name}")
        locations: dict[str, BlobLocation] = {}
        try:
            if obj["version"] != FORMAT_VERSION:
                raise CorruptionError(f"index {name} has an unknown format version")
            for pack, blobs in obj["packs"].items():
                if not re.fullmatch(r"data/[0-9a-f]{2}/[0-9a-f]{64}", pack):
                    raise CorruptionError(f"index {name} names an invalid pack")
                for blob_id, offset, length in blobs:
                    if not _HEX64.fullmatch(blob_id) or int(offset) < 0 or int(length) <= 0:
                        raise CorruptionError(f"index {name} has an invalid entry")
                    locations[blob_id] = BlobLocation(pack, int(offset), int(length))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            raise CorruptionError(f"index {name} is malformed") from None
        return locations

    def write_index(self, packs: dict[str, list[tuple[str, int, int]]]) -> str:
        name = INDEX_PREFIX + os.urandom(32).hex()
        body = {
            "version": FORMAT_VERSION,
            "packs": {p: [list(b) for b in bl] for p, bl in packs.items()},
        }
        self._put(name, self.keys.seal(name, _encode_json(body)))
        return name

    # -- prune marks ----------------------------------------------------------------------

    def marks(self) -> list[PruneMark]:
        found = []
        for name in self.store.list(PRUNE_PREFIX):
            if not _HEX64.fullmatch(name[len(PRUNE_PREFIX) :]):
                continue
            obj = _decode_json(self.keys.open(name, self._get(name)), f"prune mark {name}")
            try:
                found.append(PruneMark(name, float(obj["time"]), frozenset(map(str, obj["packs"]))))
            except (KeyError, TypeError, ValueError, OverflowError):
                raise CorruptionError(f"prune mark {name} is malformed") from None
        return found

    def pack_names(self) -> set[str]:
        return set(self.store.list(DATA_PREFIX))

    def has_object(self, name: str) -> bool:
        return name in self.store.list(name)

    def delete_objects(self, names: list[str]) -> None:
        """Remove objects (snapshots, indexes, packs, marks); missing ones are no error."""
        self.store.delete_many(names)

    def sizes(self, prefix: str) -> dict[str, int]:
        """Size of every object under prefix, from one listing (nothing is downloaded)."""
        return {info.name: info.size for info in self.store.list_info(prefix)}

    def mark_ages(self) -> dict[str, float] | None:
        """Seconds since each prune mark was written, by the storage's clock alone: a probe
        object written now is compared with the marks' times of writing, so no machine's
        clock enters. None where the storage keeps no time (Git)."""
        if any(info.modified is None for info in self.store.list_info(PRUNE_PREFIX)):
            return None
        probe = f"{PRUNE_PREFIX}probe-{os.urandom(16).hex()}"  # marks() skips the name
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
        name = PRUNE_PREFIX + os.urandom(32).hex()
        body = {"version": FORMAT_VERSION, "time": time.time(), "packs": sorted(packs)}
        self._put(name, self.keys.seal(name, _encode_json(body)))
        return name

    # -- forgotten history ------------------------------------------------------------------

    def forgotten(self) -> dict[str, tuple[int, int | None, str | None]]:
        """id -> (seq, parent, parent id) of every snapshot prune deleted: a machine that
        last saw one of them can still check that the head descends from it."""
        links: dict[str, tuple[int, int | None, str | None]] = {}
        for name in self.store.list(FORGOTTEN_PREFIX):
            if not _HEX64.fullmatch(name[len(FORGOTTEN_PREFIX) :]):
                continue
            obj = _decode_json(self.keys.open(name, self._get(name)), f"history record {name}")
            try:
                for seq, ident, parent, parent_id in obj["links"]:
                    if not _HEX64.fullmatch(ident) or not (
                        parent_id is None or _HEX64.fullmatch(parent_id)
                    ):
                        raise CorruptionError(f"history record {name} is malformed")
                    links[ident] = (int(seq), None if parent is None else int(parent), parent_id)
            except (KeyError, TypeError, ValueError, OverflowError):
                raise CorruptionError(f"history record {name} is malformed") from None
        return links

    def write_forgotten(self, roots: Iterable[SnapshotRoot]) -> None:
        links = [[r.seq, r.id, r.parent, r.parent_id] for r in roots]
        if links:
            name = FORGOTTEN_PREFIX + os.urandom(32).hex()
            body = {"version": FORMAT_VERSION, "links": links}
            self._put(name, self.keys.seal(name, _encode_json(body)))

    # -- packs ----------------------------------------------------------------------------

    def pack_header(self, pack: str) -> dict[str, BlobLocation]:
        """Where the blobs of a pack are, from the pack itself (to rebuild lost indexes)."""
        data = self._get(pack)
        if hashlib.sha256(data).hexdigest() != pack.rsplit("/", 1)[-1]:
            raise CorruptionError(f"pack {pack} is damaged (content does not match its name)")
        if len(data) < 4:
            raise CorruptionError(f"pack {pack} is too short")
        (size,) = struct.unpack("<I", data[-4:])
        if size > len(data) - 4:
            raise CorruptionError(f"pack {pack} has a damaged header")
        header = self.keys.open("pack-header", data[-4 - size : -4])
        entries = _decode_json(header, f"the header of pack {pack}")
        try:
            found = {
                str(b): BlobLocation(pack, int(offset), int(length))
                for b, offset, length in entries
            }
        except (TypeError, ValueError, OverflowError):
            raise CorruptionError(f"pack {pack} has a malformed header") from None
        if any(
            not _HEX64.fullmatch(b) or loc.offset < 0 or loc.offset + loc.length > len(data)
            for b, loc in found.items()
        ):
            raise CorruptionError(f"pack {pack} has an invalid header")
        return found

    def read_pack(self, pack: str, wanted: dict[str, BlobLocation]) -> dict[str, bytes]:
        return dict(self.iter_pack(pack, wanted))

    def iter_pack(self, pack: str, wanted: dict[str, BlobLocation]) -> Iterator[tuple[str, bytes]]:
        """Download a pack, check it is the pack its name promises, and open the wanted blobs."""
        data = self._get(pack)
        if hashlib.sha256(data).hexdigest() != pack.rsplit("/", 1)[-1]:
            raise CorruptionError(f"pack {pack} is damaged (content does not match its name)")
        view = memoryview(data)
        for blob_id, loc in wanted.items():
            sealed = view[loc.offset : loc.offset + loc.length]
            if len(sealed) != loc.length:
                raise CorruptionError(f"pack {pack} is shorter than its index says")
            plain = compression.unpack(
                self.keys.open(_blob_aad(blob_id), sealed), f"blob in {pack}"
            )
            if self.keys.blob_id(plain) != blob_id:
                raise CorruptionError(f"a blob in {pack} does not match its id")
            yield blob_id, plain


def _blob_aad(blob_id: str) -> str:
    return "blob/" + blob_id


class PackWriter:
    """Gathers sealed blobs into packs of about PACK_TARGET_SIZE and uploads each when full.

    A pack is the sealed blobs back to back, then a sealed header listing them, then the
    header's length as 4 little-endian bytes, so packs can be re-indexed from themselves.
    """

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.sealed: list[bytes] = []  # joined once per pack: no growing buffer to copy
        self.size = 0
        self.entries: list[tuple[str, int, int]] = []
        self.written: dict[str, list[tuple[str, int, int]]] = {}
        self.pending: set[str] = set()
        # Compressing is most of a push's work: blobs are compressed and sealed on every
        # core, in order, with a bounded number in flight so memory stays bounded.
        workers = os.cpu_count() or 1
        self._sealer = ThreadPoolExecutor(max_workers=workers)
        self._sealing: collections.deque[tuple[str, Future[bytes]]] = collections.deque()
        self._max_sealing = 2 * workers
        # Packs upload in the background while the next one fills, at most `transfers` at once.
        self._parallel = min(repo.parallel, PACKS_IN_MEMORY)
        self._pool = ThreadPoolExecutor(max_workers=self._parallel) if self._parallel > 1 else None
        self._uploads: list[Future[bool]] = []

    def close(self) -> None:
        self._sealer.shutdown(wait=True, cancel_futures=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _wait(self, in_flight: int) -> None:
        while len(self._uploads) > in_flight:
            self._uploads.pop(0).result()

    def add(self, blob_id: str, plaintext: bytes | memoryview) -> None:
        if blob_id in self.pending:
            return
        self.pending.add(blob_id)
        self._sealing.append((blob_id, self._sealer.submit(self._seal, blob_id, plaintext)))
        self._collect(self._max_sealing)

    def _seal(self, blob_id: str, plaintext: bytes | memoryview) -> bytes:
        return self.repo.keys.seal(_blob_aad(blob_id), compression.pack(plaintext, padded=True))

    def _collect(self, in_flight: int) -> None:
        """Append sealed blobs, oldest first, until at most in_flight are left."""
        while len(self._sealing) > in_flight:
            blob_id, future = self._sealing.popleft()
            sealed = future.result()
            self.entries.append((blob_id, self.size, len(sealed)))
            self.sealed.append(sealed)
            self.size += len(sealed)
            if self.size >= PACK_TARGET_SIZE:
                self._flush()

    def _flush(self) -> None:
        if not self.entries:
            return
        header = self.repo.keys.seal("pack-header", _encode_json(self.entries))
        data = b"".join([*self.sealed, header, struct.pack("<I", len(header))])
        name = pack_name(hashlib.sha256(data).hexdigest())
        if self._pool is None:
            self.repo.write_pack(name, data)
        else:
            self._wait(self._parallel - 1)
            self._uploads.append(self._pool.submit(self.repo.write_pack, name, data))
        self.written[name] = self.entries
        self.sealed = []
        self.size = 0
        self.entries = []

    def finish(self) -> tuple[str, dict[str, BlobLocation]] | None:
        """Upload the last pack and an index of the packs written since the last finish."""
        self._collect(0)
        self._flush()
        self._wait(0)
        if not self.written:
            return None
        name = self.repo.write_index(self.written)
        locations = {
            blob: BlobLocation(pack, offset, length)
            for pack, entries in self.written.items()
            for blob, offset, length in entries
        }
        self.written = {}
        return name, locations


def _piece_names(names: Any, version: int, what: str) -> tuple[str, ...]:
    """A group's part names in a snapshot root: one name, or (version 3) a list of them,
    one per piece, whose length is a power of two."""
    if isinstance(names, str):
        pieces: tuple[Any, ...] = (names,)
    elif isinstance(names, list) and version >= SPLIT_SNAPSHOT_VERSION:
        pieces = tuple(names)
    else:
        raise CorruptionError(f"{what} names an invalid manifest part")
    if (
        not pieces
        or len(pieces) & (len(pieces) - 1)
        or any(not isinstance(n, str) or not _MANIFEST_NAME.fullmatch(n) for n in pieces)
    ):
        raise CorruptionError(f"{what} names an invalid manifest part")
    return pieces


def _check_paths(files: dict[str, FileEntry], what: str) -> None:
    """Only paths some resource type claims can be in a snapshot: anything else (a credential
    file, a plugin cache, `..`) was put there to be written where it must not be."""
    for path in files:
        if resources.type_of(path) is None:
            raise CorruptionError(
                f"{what} lists a path no synced type claims ({path!r}); refusing it"
            )


def _config_body(config: RepoConfig) -> dict[str, Any]:
    return {
        "version": config.version,
        "repo_id": config.repo_id,
        "created": config.created,
        "chunker": dict(config.chunker.__dict__),
    }


def _parse_config(obj: Any) -> RepoConfig:
    try:
        if obj["version"] not in REPO_FORMATS:
            raise ConfigError(
                f"this repository uses format version {obj['version']}; "
                f"this claude-sync reads versions {REPO_FORMATS}: upgrade claude-sync"
            )
        chunker = obj["chunker"]
        params = ChunkerParams(
            min_size=int(chunker["min_size"]),
            avg_size=int(chunker["avg_size"]),
            max_size=int(chunker["max_size"]),
            seed=int(chunker["seed"]),
        )
        if not (64 <= params.min_size <= params.avg_size <= params.max_size <= 16 * 1024 * 1024):
            raise CorruptionError("the config object has invalid chunker parameters")
        if not 1 <= params.seed < 2**63:
            raise CorruptionError("the config object has invalid chunker parameters")
        return RepoConfig(
            repo_id=str(obj["repo_id"]),
            chunker=params,
            created=str(obj["created"]),
            version=int(obj["version"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CorruptionError("the config object is malformed") from None


def _machine_keys(name: str, master: bytes, identity: bytes | None) -> crypto.KeyRing:
    return crypto.KeyRing(master, identity=None if identity is None else (name, identity))


def group_by_pack(
    locations: Iterable[tuple[str, BlobLocation]],
) -> dict[str, dict[str, BlobLocation]]:
    packs: dict[str, dict[str, BlobLocation]] = {}
    for blob_id, loc in locations:
        packs.setdefault(loc.pack, {})[blob_id] = loc
    return packs
