"""The repository (docs/FORMAT.md): keys, config, packs, indexes and snapshots on a store.

Every object but the key objects and key epochs is sealed, with the master key or, once key
epochs exist (epochs.py), with the newest epoch's data key; the name an object is stored
under is its associated data. The package turns those objects into Python values and back,
and validates everything it decodes: a hostile backend gets clean errors, never a crash.

The rest of claude-sync never holds a store: it works on a Repository, and setting a machine
up works on the `place.Place` a remote names (with `RemoteOptions` and `normalize_remote`,
re-exported from claude_sync.store); object names are built from `Handle`s.

One concept a module: `format` (versions, names, the config, JSON bodies, manifest pieces),
`access` (reaching the store), `keys` and `epochs`, `snapshots` (with the manifest `cache`),
`packs` (packs, indexes, PackWriter), `marks` (prune marks), `place` (a remote before a
repository is opened there). Repository composes them and holds what spans them: creating,
opening, upgrading, revoking a key.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claude_sync import crypto
from claude_sync.chunking import ChunkerParams
from claude_sync.errors import (
    BackendError,
    ConfigError,
    CorruptionError,
    ObjectNotFoundError,
    RevokedError,
    WrongKeyError,
)
from claude_sync.meanwhile import meanwhile
from claude_sync.model import BlobLocation, FileEntry, Snapshot, SnapshotRoot
from claude_sync.repository import epochs
from claude_sync.repository.file_list import ChangedFiles, StoredFiles
from claude_sync.repository.format import (
    BLAKE3_FORMAT,
    CHAINED_FORMAT,
    CONFIG_NAME,
    DATA_PREFIX,
    EPOCH_FORMAT,
    FORGOTTEN_PREFIX,
    FORMAT_VERSION,
    IDENTITY_FORMAT,
    INDEX_PREFIX,
    KEYS_PREFIX,
    MANIFEST_PREFIX,
    PART_FILES,
    PIECE_FILES,
    PRUNE_PREFIX,
    REPO_FORMAT,
    REPO_FORMATS,
    SNAPSHOT_VERSION,
    SNAPSHOTS_PREFIX,
    SPLIT_FORMAT,
    SPLIT_SNAPSHOT_VERSION,
    TYPES_FORMAT,
    UPGRADE_NAME,
    RepoConfig,
    config_body,
    decode_json,
    encode_json,
    key_id_of,
    key_name,
    manifest_group,
    pack_name,
    parse_config,
    piece_count,
    piece_of,
    snapshot_id,
    snapshot_name,
)
from claude_sync.repository.keys import KeyObjects, machine_keys
from claude_sync.repository.marks import PruneMark, PruneMarks
from claude_sync.repository.packs import (
    PACK_TARGET_SIZE,
    PACKS_IN_MEMORY,
    Packs,
    PackWriter,
    group_by_pack,
)
from claude_sync.repository.snapshots import Snapshots
from claude_sync.store import RemoteOptions, normalize_remote
from claude_sync.store.base import ObjectStore
from claude_sync.store.handle import Handle, ObjectKind

__all__ = [
    "BLAKE3_FORMAT",
    "CHAINED_FORMAT",
    "CONFIG_NAME",
    "DATA_PREFIX",
    "EPOCH_FORMAT",
    "FORGOTTEN_PREFIX",
    "FORMAT_VERSION",
    "IDENTITY_FORMAT",
    "INDEX_PREFIX",
    "KEYS_PREFIX",
    "MANIFEST_PREFIX",
    "PACKS_IN_MEMORY",
    "PACK_TARGET_SIZE",
    "PART_FILES",
    "PIECE_FILES",
    "PRUNE_PREFIX",
    "REPO_FORMAT",
    "REPO_FORMATS",
    "SNAPSHOTS_PREFIX",
    "SNAPSHOT_VERSION",
    "SPLIT_FORMAT",
    "SPLIT_SNAPSHOT_VERSION",
    "TYPES_FORMAT",
    "BlobLocation",
    "ChangedFiles",
    "ChunkerParams",
    "FileEntry",
    "Glance",
    "Handle",
    "ObjectKind",
    "PackWriter",
    "PruneMark",
    "RemoteOptions",
    "RepoConfig",
    "Repository",
    "Snapshot",
    "SnapshotRoot",
    "StoredFiles",
    "group_by_pack",
    "key_name",
    "manifest_group",
    "normalize_remote",
    "pack_name",
    "piece_count",
    "piece_of",
    "snapshot_id",
    "snapshot_name",
]


#: Repository.glance's answer: the newest snapshot (number, tag), and whether the key epochs
#: listed are those this machine holds
Glance = tuple[tuple[int, str | None] | None, bool]


class Repository(KeyObjects, Snapshots, Packs, PruneMarks):
    """An opened repository: a store plus the keys and config that make sense of it."""

    @classmethod
    def deferred(
        cls,
        open_store: Callable[[], ObjectStore],
        keys: crypto.KeyRing,
        config_body: Any,
        folder: Path | None = None,
    ) -> Repository:
        """A repository known from this machine's cache: the store is opened, and checked to
        still hold this repository, only when first needed (a no-op push never needs it).
        folder: where a folder store will be, so check_place can look without opening it."""
        repo = cls(None, keys, parse_config(config_body), open_store)
        repo.folder = folder
        return repo

    def glance(self, seen: int) -> Glance | None:
        """The newest snapshot (number and tag, see `newest`), and whether the storage lists
        exactly the key epochs this machine holds: two listings at once, on the store not
        yet checked (`glance_store`). What a machine that kept the head's root as it last
        read it needs to know that it still may use it (see claude_sync.kept_head). None
        where the store gives no tags: the look would save nothing."""
        store = self.glance_store()
        if not store.tagged:
            return None
        if self.epochs_known:  # the store was checked in this run (a push opens it early)
            return self.newest_in(store, seen), True
        held = meanwhile(lambda: epochs.unchanged(store, self.keys), store.parallel_safe)
        newest = self.newest_in(store, seen)
        self.epochs_known = held()
        return newest, self.epochs_known

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
        body = config_body(config)
        if not store.put_if_absent(CONFIG_NAME, keys.seal_master(CONFIG_NAME, encode_json(body))):
            raise ConfigError(f"{store.display} already holds a repository")
        if passphrase is not None:
            keys.identity = repo.add_key(passphrase, label)
        return repo

    @classmethod
    def open(
        cls, store: ObjectStore, master: bytes | crypto.KeyRing, epochs_known: bool = False
    ) -> Repository:
        """Open with a master key, or with the keys a machine holds (then the key epochs it
        learns are added to them); epochs_known: they were listed just now (a glance)."""
        keys = master if isinstance(master, crypto.KeyRing) else crypto.KeyRing(master)
        # The key epochs are listed while the config is read: a request's wait less.
        listed = (
            None
            if epochs_known
            else meanwhile(lambda: epochs.listed_numbers(store), store.parallel_safe)
        )
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
        repo = cls(store, keys, parse_config(decode_json(plain, "the config object")))
        if listed is not None:
            epochs.refresh(store, keys, numbers=listed())
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

    def check_config(self) -> None:
        """That the storage still holds this repository's config (a machine opens the
        repository with its own copy): an error when it was emptied or replaced."""
        try:
            sealed = self.store.get(CONFIG_NAME)
        except ObjectNotFoundError:
            raise ConfigError(f"{self.store.display} holds no claude-sync repository") from None
        decode_json(self.keys.open(CONFIG_NAME, sealed), "the config object")

    def upgrade(self, version: int = REPO_FORMAT) -> bool:
        """Rewrite the config at that format; False when it already was at least. The new
        config is stored aside first, so a crash in between is completed by the next open."""
        current = parse_config(
            decode_json(self.keys.open(CONFIG_NAME, self.store.get(CONFIG_NAME)), "the config")
        )
        if current.version >= version:
            self.config = current
            return False
        upgraded = RepoConfig(current.repo_id, current.chunker, current.created, version)
        body = encode_json(config_body(upgraded))
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
            raise WrongKeyError(
                "wrong passphrase for this repository (if you are sure of it, its key object "
                "may be damaged: `claude-sync verify` on a machine already set up says so)"
            )
        return cls.open(store, machine_keys(*found))

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
        name = key_name(crypto.recovery_key_name(secret))
        found = cls._match_key(store, [name], secret)
        if found is None:
            raise WrongKeyError("that recovery key was removed or belongs to another repository")
        return cls.open(store, machine_keys(*found))

    def remove_key(self, key_id: str) -> list[str]:
        """Revoke a key: a new key epoch for the others, then delete its key object. Returns
        the ids of remaining keys too old to receive the new epoch (they are cut off too)."""
        names = self.store.list(KEYS_PREFIX)
        name = key_name(key_id)
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
        new_name, private = self.add_key(new, labels.get(key_id_of(old_name), ""))
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
                stale.append(key_id_of(other))
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
