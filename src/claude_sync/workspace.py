"""A machine's claude-sync set-up: joining or creating a repository, and opening it for work."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from claude_sync import config, crypto
from claude_sync.engine import Engine, Reporter
from claude_sync.errors import ConfigError, SyncError
from claude_sync.passphrase import read_passphrase
from claude_sync.pathmap import PathMapper
from claude_sync.repository import Repository
from claude_sync.resources import Selection, select
from claude_sync.state import State
from claude_sync.store import RemoteOptions, normalize_remote, open_store
from claude_sync.store.base import ObjectStore, redact

LOCK_TIMEOUT_ENV = "CLAUDE_SYNC_LOCK_TIMEOUT"


@dataclass
class Locations:
    claude_dir: Path
    config_dir: Path

    @classmethod
    def from_options(cls, claude_dir: str | None, config_dir: str | None) -> Locations:
        return cls(config.claude_dir(claude_dir), config.config_dir(config_dir))


@dataclass
class InitOutcome:
    created: bool
    remote: str
    repo_id: str


def init(
    where: Locations,
    remote: str | None,
    *,
    passphrase_file: str | None,
    recovery_key: str | None,
    force: bool,
    options: RemoteOptions,
    device: str | None,
) -> InitOutcome:
    """Create a repository on an empty remote or join an existing one; write nothing on failure."""
    refuse_if_set_up(where, force)
    remote = normalize_remote(remote or config.default_remote())
    options.cache_dir = where.config_dir / "cache"
    store = open_store(remote, options)
    try:
        if Repository.exists(store):
            created = False
            if recovery_key:
                repo = Repository.open(store, crypto.parse_recovery_key(recovery_key))
            else:
                repo = Repository.unlock(store, read_passphrase(passphrase_file, confirm=False))
        else:
            if recovery_key:
                raise ConfigError(f"{remote} holds no repository to join with a recovery key")
            check_empty(store)
            passphrase = read_passphrase(passphrase_file, confirm=True)
            store.prepare(create=options.create_bucket)
            repo = Repository.create(store, passphrase, device or socket.gethostname())
            created = True
    finally:
        store.close()
    save_setup(where, remote, options, repo, device)
    return InitOutcome(created, remote, repo.config.repo_id)


def refuse_if_set_up(where: Locations, force: bool) -> None:
    """`init` never silently replaces a machine's set-up (and so its key)."""
    if config.is_set_up(where.config_dir) and not force:
        current = config.load_settings(where.config_dir).remote
        raise ConfigError(
            f"this machine is already set up (remote {redact(current)}); "
            "use --force to set it up again"
        )


def save_setup(
    where: Locations, remote: str, options: RemoteOptions, repo: Repository, device: str | None
) -> None:
    """The last step of `init`: this machine's config and key, written only on success."""
    settings = config.Settings(
        remote=remote,
        repo_id=repo.config.repo_id,
        endpoint_url=options.endpoint_url,
        git_branch=options.git_branch,
    )
    if device:
        settings.device = device
    _reset_state_if_other_repo(where.config_dir, repo.config.repo_id)
    config.save_master_key(
        where.config_dir, repo.config.repo_id, repo.keys.master, repo.config_body()
    )
    config.save_settings(where.config_dir, settings)


def check_empty(store: ObjectStore) -> None:
    if store.list(""):
        raise ConfigError(
            f"{store.display} is not empty and holds no claude-sync repository; "
            "choose an empty or new place"
        )


def _reset_state_if_other_repo(config_dir: Path, repo_id: str) -> None:
    """The merge base of one repository means nothing for another."""
    if not config.is_set_up(config_dir):
        return
    try:
        same = config.load_settings(config_dir).repo_id == repo_id
    except ConfigError:
        same = False
    if not same:
        for name in (config.STATE_FILE, config.STATE_FILE + "-wal", config.STATE_FILE + "-shm"):
            (config_dir / name).unlink(missing_ok=True)
        shutil.rmtree(config_dir / "staging", ignore_errors=True)


@dataclass
class Workspace:
    where: Locations
    settings: config.Settings
    repo: Repository
    state: State

    def selection(self, names: list[str] | tuple[str, ...] = ()) -> Selection:
        """The named types, or every enabled one, narrowed by the config's globs."""
        s = self.settings
        return select(list(names), s.types, tuple(s.include), tuple(s.exclude))

    def engine(self, reporter: Reporter | None = None, allow_rollback: bool = False) -> Engine:
        engine = Engine(
            self.where.claude_dir,
            self.repo,
            self.state,
            self.settings.device,
            self.where.config_dir,
            reporter,
            PathMapper(Path.home(), self.settings.path_maps),
        )
        engine.allow_rollback = allow_rollback
        return engine


@contextmanager
def open_workspace(where: Locations) -> Iterator[Workspace]:
    """Open the configured repository with the local key, holding the machine-wide lock."""
    settings = config.load_settings(where.config_dir)
    master = config.load_master_key(where.config_dir, settings.repo_id)
    with _lock(where.config_dir):
        options = RemoteOptions(
            endpoint_url=settings.endpoint_url,
            git_branch=settings.git_branch,
            cache_dir=where.config_dir / "cache",
            transfers=int(os.environ.get("CLAUDE_SYNC_TRANSFERS", "8")),
        )
        repo = _repository(where, settings, master, options)
        try:
            repo.transfers = options.transfers
            repo.cache_dir = where.config_dir / "cache" / "objects"
            state = State(where.config_dir / config.STATE_FILE)
            try:
                yield Workspace(where, settings, repo, state)
            finally:
                state.close()
        finally:
            repo.close()


def _repository(
    where: Locations, settings: config.Settings, master: bytes, options: RemoteOptions
) -> Repository:
    def connect() -> ObjectStore:
        return open_store(settings.remote, options)

    cached = config.load_repo_config(where.config_dir)
    if cached is not None:
        return Repository.deferred(connect, master, cached)
    store = connect()
    try:
        repo = Repository.open(store, master)
    except BaseException:
        store.close()
        raise
    if repo.config.repo_id != settings.repo_id:
        store.close()
        raise ConfigError(
            f"{redact(settings.remote)} now holds a different repository than the one this "
            "machine joined; run `claude-sync init --force` to join it"
        )
    config.save_master_key(where.config_dir, settings.repo_id, master, repo.config_body())
    return repo


@contextmanager
def _lock(config_dir: Path) -> Iterator[None]:
    """One claude-sync at a time per machine: hooks of parallel sessions queue up here."""
    timeout = float(os.environ.get(LOCK_TIMEOUT_ENV, "120"))
    deadline = time.monotonic() + timeout
    with open(config_dir / config.LOCK_FILE, "a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SyncError(
                        "another claude-sync is still running on this machine"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
