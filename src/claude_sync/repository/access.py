"""How the repository reaches its store: opened at once or only when first needed, objects
counted as they travel, and work spread over the transfers a store allows. Every part of
Repository (keys, snapshots, packs, prune marks) reads and writes through this one class."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self, TypeVar

from claude_sync import crypto
from claude_sync.errors import BackendError, ConfigError, HistoryError
from claude_sync.repository.format import (
    BLAKE3_FORMAT,
    IDENTITY_FORMAT,
    RepoConfig,
    config_body,
)
from claude_sync.store.base import ObjectStore
from claude_sync.store.handle import Handle, ObjectKind

T = TypeVar("T")
R = TypeVar("R")


class StoreAccess(ABC):
    """A store plus the keys and config that make sense of it."""

    def __init__(
        self,
        store: ObjectStore | None,
        keys: crypto.KeyRing,
        config: RepoConfig,
        open_store: Callable[[], ObjectStore] | None = None,
    ) -> None:
        self._store = store
        self._open_store = open_store
        #: opened but not yet checked (see `glance_store`): `_connect` takes it over
        self._bare: ObjectStore | None = None
        #: the key epochs the storage lists are those this machine holds, as a glance or the
        #: check of the store found in this run: neither need list them again
        self.epochs_known = False
        self._opening = threading.Lock()
        self._open_error: Exception | None = None
        self._background = False
        self._closed = False
        self.keys = keys
        self._config = config
        keys.keyed_blake3 = config.version >= BLAKE3_FORMAT
        keys.file_ids_blake3 = config.version >= IDENTITY_FORMAT
        self.uploaded_bytes = 0
        self.downloaded_bytes = 0
        #: how many objects may travel at once, for stores that are thread-safe
        self.transfers = 1
        self._counter_lock = threading.Lock()
        #: the folder of a folder store not opened yet (see Repository.deferred)
        self.folder: Path | None = None
        #: a stored config of an older format than this machine's copy is taken (`upgrade`
        #: writes it anew); otherwise refused
        self.older_format_ok = False

    @property
    def config(self) -> RepoConfig:
        return self._config

    @config.setter
    def config(self, config: RepoConfig) -> None:
        # The config's format decides how blobs are named (docs/FORMAT.md §4): the keys that
        # name them must follow it, also after an upgrade.
        self._config = config
        self.keys.keyed_blake3 = config.version >= BLAKE3_FORMAT
        self.keys.file_ids_blake3 = config.version >= IDENTITY_FORMAT

    @classmethod
    @abstractmethod
    def open(
        cls, store: ObjectStore, master: bytes | crypto.KeyRing, epochs_known: bool = False
    ) -> Self:
        """Open the repository a store holds (Repository.open)."""

    @property
    def store(self) -> ObjectStore:
        with self._opening:
            if self._store is None:
                if self._open_error is not None:
                    raise self._open_error
                self._store = self._connect()
        return self._store

    def connect(self, keep_failure: bool = False) -> None:
        """Open the store and check it now (see `store`). keep_failure: a failure is raised
        where the store is first needed, not here, and not tried again."""
        if keep_failure:
            self._open_keeping_failure()
        else:
            self.store  # noqa: B018 - the property opens and checks it

    def _open_keeping_failure(self) -> None:
        with self._opening:
            if self._store is None and self._open_error is None and not self._closed:
                try:
                    self._store = self._connect()
                except Exception as exc:  # raised where the store is needed
                    self._open_error = exc

    def glance_store(self) -> ObjectStore:
        """The store opened without the checks `store` makes (its config, the key epochs):
        for a look at a few names that a machine can trust without them (Head.root)."""
        with self._opening:
            if self._store is not None:
                return self._store
            if self._bare is None:
                assert self._open_store is not None
                self._bare = self._open_store()
            return self._bare

    def _connect(self) -> ObjectStore:
        store, self._bare = self._bare, None
        if store is None:
            assert self._open_store is not None
            store = self._open_store()
        try:
            stored = self.open(store, self.keys, self.epochs_known).config
            found = stored.repo_id
            if found == self.config.repo_id:
                if stored.version < self.config.version and not self.older_format_ok:
                    # Older readers would be let in again, to refuse what this format holds.
                    raise HistoryError(
                        f"the repository's config says format {stored.version}, older than "
                        f"the format {self.config.version} this machine saw: it was replaced "
                        "by an older copy (a storage serving an old state, or a backup put "
                        "back); once you know the repository holds your data, "
                        "`claude-sync upgrade` writes the format back"
                    )
                self.config = stored  # upgraded by another machine since it was cached
            if found != self.config.repo_id:
                raise ConfigError(
                    f"{store.display} now holds a different repository than the one this "
                    "machine joined; run `claude-sync init --force` to join it"
                )
        except BaseException:
            store.close()
            raise
        self.epochs_known = True
        return store

    def check_place(self) -> None:
        """Raise BackendError when the repository's folder is gone (an unmounted drive),
        which a push with nothing to send would otherwise not notice. No request is made:
        other stores are not checked."""
        folder = self.folder if self._store is None else self._store.local_folder
        if folder is not None and not folder.is_dir():
            raise BackendError(
                f"cannot reach the repository: the folder {folder} does not exist "
                "(unmounted or deleted?)"
            )

    def open_in_background(self) -> None:
        """Start opening the store now, for a caller that will need it soon (a push that
        found changes: importing a cloud SDK and the first request overlap with hashing).
        A failure is kept and raised where the store is first needed."""
        if self._store is not None or self._open_store is None or self._background:
            return
        self._background = True
        threading.Thread(target=self._open_keeping_failure, daemon=True).start()

    def close(self) -> None:
        # Waits for an open still running in the background: nothing it starts (a git fetch
        # in the shared cache) may outlive the machine-wide lock the caller holds.
        with self._opening:
            self._closed = True
            for store in (self._store, self._bare):
                if store is not None:
                    store.close()

    @property
    def parallel(self) -> int:
        """Transfers at once: 1 for stores whose requests must not overlap."""
        return max(1, self.transfers) if self.store.parallel_safe else 1

    def config_body(self) -> dict[str, Any]:
        return config_body(self.config)

    def _put(self, name: str, data: bytes) -> bool:
        created = self.store.put_if_absent(name, data)
        if created:
            with self._counter_lock:
                self.uploaded_bytes += len(data)
        return created

    def _get(self, name: str) -> bytes:
        data = self.store.get(name)
        with self._counter_lock:
            self.downloaded_bytes += len(data)
        return data

    def _get_pieces(self, name: str) -> Generator[bytes, None, None]:
        for piece in self.store.get_pieces(name):
            with self._counter_lock:
                self.downloaded_bytes += len(piece)
            yield piece

    def _get_range(self, name: str, offset: int, length: int) -> bytes:
        data = self.store.get_range(name, offset, length)
        with self._counter_lock:
            self.downloaded_bytes += len(data)
        return data

    def _each(self, fn: Callable[[T], R], items: list[T], most: int = 1 << 16) -> list[R]:
        """fn over items, `parallel` (and at most `most`) at a time; the first error is
        re-raised."""
        workers = min(self.parallel, most)
        if workers <= 1 or len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, items))

    # -- any object -----------------------------------------------------------------------

    def _handles(self, kind: ObjectKind, start_after: str = "") -> list[Handle]:
        """The objects of a kind; other names under its prefix (probes, strays) are skipped."""
        found = (Handle.parse_as(kind, n) for n in self.store.list(kind.prefix, start_after))
        return [handle for handle in found if handle is not None]

    def has_object(self, name: str) -> bool:
        return name in self.store.list(name)

    def missing_objects(self, names: Iterable[str]) -> set[str]:
        """Those of names the store does not hold, looked up `parallel` at a time (a push
        checks each pack it leans on: one request each)."""
        ordered = sorted(set(names))
        found = self._each(self.has_object, ordered)
        return {name for name, here in zip(ordered, found, strict=True) if not here}

    def delete_objects(self, names: list[str]) -> None:
        """Remove objects (snapshots, indexes, packs, marks); missing ones are no error."""
        self.store.delete_many(names)

    def sizes(self, prefix: str) -> dict[str, int]:
        """Size of every object under prefix, from one listing (nothing is downloaded)."""
        return {info.name: info.size for info in self.store.list_info(prefix)}
