"""The place a remote names, before a repository is opened there: what setting a machine up
(`init` and its wizard) and `doctor` ask of it. Set-up asks a Place, everything else a
Repository: no module outside this package holds a store (tests/test_store_boundary.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from claude_sync import crypto
from claude_sync.errors import ConfigError
from claude_sync.repository import Repository
from claude_sync.repository.format import CONFIG_NAME, KEYS_PREFIX
from claude_sync.store import RemoteOptions, local_folder, open_store
from claude_sync.store.base import ObjectStore


class Place:
    """An opened remote, whether or not it holds a repository; closed on leaving a `with`."""

    def __init__(self, remote: str, options: RemoteOptions | None = None) -> None:
        self._store = open_store(remote, options)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._store.close()

    @property
    def display(self) -> str:
        """The remote as the user typed it, safe to print (no credentials)."""
        return self._store.display

    @property
    def folder(self) -> Path | None:
        """The folder a folder remote names (set-up offers to create a missing one); None for
        a bucket or Git."""
        return self._store.local_folder

    # -- what is here -----------------------------------------------------------------------

    def holds_repository(self) -> bool:
        """A key object or the config: a repository to join (maybe a damaged one)."""
        return bool(self._store.list(KEYS_PREFIX)) or bool(self._store.list(CONFIG_NAME))

    def holds_config(self) -> bool:
        """The config object is there: what `doctor` takes for a repository still in place."""
        return CONFIG_NAME in self._store.list(CONFIG_NAME)

    def has_passphrase_keys(self) -> bool:
        """False for a repository made without a passphrase: a recovery key joins it."""
        return bool(self._store.list(KEYS_PREFIX))

    def check_empty(self) -> None:
        """Refuse to create a repository where other objects already are."""
        if self._store.list(""):
            raise ConfigError(
                f"{self.display} is not empty and holds no claude-sync repository; "
                "choose an empty or new place"
            )

    def missing(self) -> str | None:
        """Why the place is gone (an unmounted drive) when a listing cannot tell; None when it
        is there or cannot be told."""
        return self._store.missing()

    # -- before creating --------------------------------------------------------------------

    def prepare(self, create: bool) -> None:
        """Make the place (folder, bucket) when it is missing and `create` allows, and check
        that it is usable (S3/GCS: honours create-only writes)."""
        self._store.prepare(create)

    def probe_writes(self) -> bool:
        """Write and remove a probe object: True when a second create-only write was refused,
        as it must be for machines to take turns. Raises SyncError when nothing can be
        written."""
        return self._store.probe_writes()

    @property
    def write_probe(self) -> str:
        """What probe_writes() proves here, for `doctor`."""
        return self._store.write_probe

    # -- the repository here ----------------------------------------------------------------

    def create(self, passphrase: str | None, label: str = "") -> Repository:
        """A new repository; see Repository.create."""
        return Repository.create(self._store, passphrase, label)

    def unlock(self, passphrase: str) -> Repository:
        return Repository.unlock(self._store, passphrase)

    def recover(self, recovery_key: str) -> Repository:
        return Repository.recover(self._store, recovery_key)

    def open(self, keys: crypto.KeyRing) -> Repository:
        """The repository here, with a machine's keys. It uses this place's connection: done
        with it when the place is closed."""
        return Repository.open(self._store, keys)

    # -- taking it away ---------------------------------------------------------------------

    def remove_new_repository(self) -> bool:
        """Undo a repository this run is creating (interrupted): its config and key objects,
        and the empty folders below the place. False, with nothing removed, when anything
        else is here: then it is not only what this run wrote."""
        names = self._store.list("")
        if not all(n == CONFIG_NAME or n.startswith(KEYS_PREFIX) for n in names):
            return False
        self._store.delete_many(names)
        self._remove_empty_folders(keep_root=True)
        return True

    def remove_everything(self) -> None:
        """Delete every object here, then the place's folder once empty (an abandoned
        repository)."""
        self._store.delete_many(self._store.list(""))
        self._remove_empty_folders(keep_root=False)

    def _remove_empty_folders(self, keep_root: bool) -> None:
        root = self.folder
        if root is None:
            return
        for dirpath, _, _ in sorted(os.walk(root), reverse=True):
            if not (keep_root and Path(dirpath) == root):
                with contextlib.suppress(OSError):  # only empty folders go
                    Path(dirpath).rmdir()


def open_repository(
    remote: str, options: RemoteOptions, keys: crypto.KeyRing, cached_config: Any = None
) -> Repository:
    """The repository a machine joined, opened with its keys. Known from the machine's cache
    (`cached_config`, the config's body), the remote is reached, and checked to still hold
    that repository, only when first needed; otherwise now."""

    def connect() -> ObjectStore:
        return open_store(remote, options)

    if cached_config is not None:
        return Repository.deferred(connect, keys, cached_config, local_folder(remote))
    store = connect()
    try:
        return Repository.open(store, keys)
    except BaseException:
        store.close()
        raise
