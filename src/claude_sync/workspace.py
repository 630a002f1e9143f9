"""A machine's claude-sync set-up: joining or creating a repository, and opening it for work."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import click

from claude_sync import config, crypto, settings_trust
from claude_sync.engine import Engine, Reporter
from claude_sync.errors import ConfigError, SyncError, WrongKeyError
from claude_sync.passphrase import in_environment, read_passphrase
from claude_sync.pathmap import PathMapper
from claude_sync.repository import RemoteOptions, Repository, normalize_remote
from claude_sync.repository.place import Place, open_repository
from claude_sync.resources import (
    UPGRADE_FIRST,
    ResourceType,
    Selection,
    select,
    waiting_for_upgrade,
)
from claude_sync.session_policy import SessionPolicy
from claude_sync.state import State
from claude_sync.terminal import redact

LOCK_TIMEOUT_ENV = "CLAUDE_SYNC_LOCK_TIMEOUT"


@dataclass
class Locations:
    """Where one machine's claude-sync works: the Claude folder it syncs and its own
    config folder (settings, key, state)."""

    claude_dir: Path
    config_dir: Path

    @classmethod
    def from_options(cls, claude_dir: str | None, config_dir: str | None) -> Locations:
        """From the command-line options, each defaulting as `config` says."""
        return cls(config.claude_dir(claude_dir), config.config_dir(config_dir))


@dataclass
class InitOutcome:
    """What `init` did: joined or created the repository at `remote`."""

    created: bool
    remote: str
    repo_id: str
    #: the untouched repository the machine used before `init --force`, now removed
    removed: str | None = None


def init(
    where: Locations,
    remote: str | None,
    *,
    passphrase_file: str | None,
    recovery_key: str | None,
    force: bool,
    options: RemoteOptions,
    device: str | None,
    create: bool = False,
    confirm: Callable[[str], bool] | None = None,
) -> InitOutcome:
    """Create a repository on an empty remote or join an existing one; write nothing on failure.

    A repository is created at an explicitly given remote only where the place exists and is
    empty, or with `create` (or when `confirm`, asked on a terminal, says yes): a typo must not
    become a new repository. The default folder, with no remote given, is always fine."""
    given = remote is not None
    remote = normalize_remote(remote or config.default_remote())
    previous = refuse_if_set_up(where, force, remote if given else None)
    device = machine_name(where, device)
    options.cache_dir = where.config_dir / "cache"
    options.create_bucket = options.create_bucket or create
    with Place(remote, options) as place:
        if place.holds_repository():
            created = False
            repo = place.recover(recovery_key) if recovery_key else _unlock(place, passphrase_file)
        else:
            if recovery_key:
                raise ConfigError(f"{remote} holds no repository to join with a recovery key")
            place.check_empty()
            if given and not create:
                check_place_exists(place, confirm)
            passphrase = read_passphrase(passphrase_file, confirm=True)
            place.prepare(create=options.create_bucket)
            repo = place.create(passphrase, device)
            created = True
    abandoned = _abandoned_first_repository(where, previous, remote)
    save_setup(where, remote, options, repo, device)
    removed = _remove_repository(abandoned) if abandoned else None
    return InitOutcome(created, remote, repo.config.repo_id, removed)


def _unlock(place: Place, passphrase_file: str | None) -> Repository:
    """A mistyped passphrase at a prompt is asked again (three tries in all)."""
    tries = 3
    while True:
        try:
            return place.unlock(read_passphrase(passphrase_file, confirm=False))
        except WrongKeyError as exc:
            tries -= 1
            typed = sys.stdin.isatty() and not passphrase_file and not in_environment()
            if not typed or tries == 0:
                raise
            click.echo(f"  {exc}; try again.", err=True)


def machine_name(where: Locations, given: str | None) -> str:
    """The name given, else the one this machine had (set up again with --force, it is still
    the same machine in the history), else a new one."""
    if given:
        return given
    if config.is_set_up(where.config_dir):
        with contextlib.suppress(ConfigError):
            return config.load_settings(where.config_dir).device
    return default_device()


def default_device() -> str:
    """The host name and a short random tail: two machines that share a host name (cloned
    images, `localhost`) must not look like one device in the history."""
    return f"{socket.gethostname()}-{os.urandom(2).hex()}"


def check_place_exists(place: Place, confirm: Callable[[str], bool] | None) -> None:
    """A folder that is not there is a typo or an unmounted drive, unless the user says
    otherwise (`--create`, or yes on a terminal). Buckets and Git repositories are never
    made implicitly: their backends already refuse a missing one."""
    root = place.folder
    if root is None:
        return
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file, not a folder")
    if root.is_dir():
        return
    if confirm is not None and confirm(f"{root} does not exist. Create it, with a new repository?"):
        return
    raise ConfigError(
        f"{root} does not exist (a typo, or a drive that is not mounted?); to start a new "
        f"repository there, run `claude-sync init {root} --create`"
    )


def current_setup(where: Locations) -> config.Settings | None:
    """A set-up machine's settings (None: not set up, or they cannot be read): `init --force`
    without REMOTE joins that repository again, as the hints after `key passwd` or `key
    remove` say (it made a new one in the default folder)."""
    if not config.is_set_up(where.config_dir):
        return None
    try:
        return config.load_settings(where.config_dir)
    except ConfigError:
        return None


def refuse_if_set_up(where: Locations, force: bool, remote: str | None = None) -> str | None:
    """`init` never silently replaces a machine's set-up (and so its key). Returns the remote
    the machine used before (None when it was not set up)."""
    if not config.is_set_up(where.config_dir):
        return None
    try:
        current = config.load_settings(where.config_dir).remote
    except ConfigError:
        if force:
            return None
        raise
    if force:
        return current
    if remote is not None and remote == current:
        raise AlreadySetUp(f"this machine is already set up with {redact(current)}")
    raise ConfigError(
        f"this machine is already set up (remote {redact(current)}); use --force to set it up again"
    )


class AlreadySetUp(SyncError):
    """`init REMOTE` where the machine already syncs with REMOTE: nothing to do."""

    exit_code = 0


def _abandoned_first_repository(
    where: Locations, previous: str | None, remote: str
) -> Place | None:
    """The repository a machine made with the Quick start before it joined the real one:
    the default folder, holding this machine's key, one key object and at most one snapshot
    by this machine. Anything else (another machine joined, more history) is left alone."""
    if previous is None or previous == remote or previous != config.default_remote():
        return None
    place = Place(previous)
    try:
        settings = config.load_settings(where.config_dir)
        repo = place.open(machine_keys(where.config_dir, settings.repo_id))
        seqs = repo.snapshot_seqs()
        untouched = (
            repo.config.repo_id == settings.repo_id
            and len(repo.list_keys()) <= 1
            and len(seqs) <= 1
            and all(repo.load_snapshot(s).device == settings.device for s in seqs)
        )
    except SyncError:
        untouched = False
    if not untouched:
        place.close()
        return None
    return place


def _remove_repository(place: Place) -> str | None:
    """Delete every object of an abandoned repository, and its folder when empty."""
    try:
        place.remove_everything()
    except SyncError:
        return None
    finally:
        place.close()
    return place.display


def save_setup(
    where: Locations, remote: str, options: RemoteOptions, repo: Repository, device: str
) -> None:
    """The last step of `init`: this machine's config and key, written only on success."""
    settings = config.Settings(
        remote=remote,
        repo_id=repo.config.repo_id,
        endpoint_url=options.endpoint_url,
        git_branch=options.git_branch,
    )
    settings.device = device
    _reset_state_if_other_repo(where.config_dir, repo.config.repo_id)
    save_keys(where.config_dir, repo)
    config.save_settings(where.config_dir, settings)


def _reset_state_if_other_repo(config_dir: Path, repo_id: str) -> None:
    """The merge base of one repository means nothing for another."""
    if not config.is_set_up(config_dir):
        return
    try:
        same = config.load_settings(config_dir).repo_id == repo_id
    except ConfigError:
        same = False
    if not same:
        for path in config.state_files(config_dir):
            path.unlink(missing_ok=True)
        shutil.rmtree(config_dir / "staging", ignore_errors=True)


@dataclass
class Workspace:
    """One opened repository with this machine's settings and state, under the machine-wide
    lock (see `open_workspace`): what every syncing command works on."""

    where: Locations
    settings: config.Settings
    repo: Repository
    state: State

    def selection(self, names: list[str] | tuple[str, ...] = ()) -> Selection:
        """The named types, or every enabled one, narrowed by the config's globs. A type
        the repository's format cannot hold yet is left out (named, it is an error): a
        snapshot listing its files would be refused whole by the older claude-sync that
        the format still admits."""
        s = self.settings
        sel = select(list(names), s.types, tuple(s.include), tuple(s.exclude))
        later = waiting_for_upgrade(sel.types, self.repo.config.version)
        if later and names:
            # Named, so to be synced now: the repository says its format (upgraded since
            # this machine looked?), or that it cannot be reached.
            self.repo.connect()
            later = waiting_for_upgrade(sel.types, self.repo.config.version)
            if later:
                raise ConfigError(UPGRADE_FIRST.format(later[0].name))
        return replace(sel, types=tuple(t for t in sel.types if t not in later))

    def waiting_types(self, anywhere: bool = False) -> tuple[ResourceType, ...]:
        """The enabled types with files here (anywhere: or not) that the repository's
        format cannot hold yet (`selection` leaves them out)."""
        enabled = select([], self.settings.types).types
        return tuple(
            t
            for t in waiting_for_upgrade(enabled, self.repo.config.version)
            if anywhere
            or any((self.where.claude_dir / name).exists() for name in (*t.folders, *t.files))
        )

    def engine(self, reporter: Reporter | None = None, allow_rollback: bool = False) -> Engine:
        """An engine set up by this machine's settings (path maps, session window, trust)."""
        engine = Engine(
            self.where.claude_dir,
            self.repo,
            self.state,
            self.settings.device,
            self.where.config_dir,
            reporter,
            PathMapper(
                Path.home(),
                self.settings.path_maps,
                moved=self.settings.moved_sessions,
                projects=str(self.where.claude_dir / "projects"),
            ),
        )
        engine.allow_rollback = allow_rollback
        engine.former_names = tuple(self.settings.former_names)
        engine.window_setting = self.settings.session_window
        engine.sessions = SessionPolicy.for_machine(engine.window_setting, self.where.claude_dir)
        engine.trust_code = self.settings.types.get(settings_trust.TRUST_TYPE, False)
        engine.take_selection(self.selection())
        return engine


@contextmanager
def open_workspace(where: Locations, reaching: bool = False) -> Iterator[Workspace]:
    """Open the configured repository with the local key, holding the machine-wide lock.
    reaching: the command reads the repository's head in any case (pull, sync, status)."""
    settings = config.load_settings(where.config_dir)
    with machine_lock(where.config_dir):
        keys = machine_keys(where.config_dir, settings.repo_id)
        options = RemoteOptions(
            endpoint_url=settings.endpoint_url,
            git_branch=settings.git_branch,
            cache_dir=where.config_dir / "cache",
            transfers=int(os.environ.get("CLAUDE_SYNC_TRANSFERS", "8")),
        )
        repo = _repository(where, settings, keys, options)
        held = keys.held()
        known_format = repo.config.version
        try:
            repo.transfers = options.transfers
            repo.cache_dir = where.config_dir / "cache" / "objects"
            with _state(where) as state:
                workspace = Workspace(where, settings, repo, state)
                if workspace.waiting_types(anywhere=reaching):
                    # Files here, or maybe there, that the repository's format, as this
                    # machine last saw it, cannot hold: another machine may have upgraded
                    # it since. (Not reached, the command goes on as that format admits,
                    # and fails where it needs the repository.)
                    repo.connect(keep_failure=True)
                try:
                    yield workspace
                finally:
                    # Learned a key epoch, or started one; or found the repository
                    # upgraded by another machine (the next run syncs what it admits).
                    if keys.held() != held or repo.config.version != known_format:
                        save_keys(where.config_dir, repo)
        finally:
            repo.close()


@contextmanager
def open_state(where: Locations) -> Iterator[State]:
    """This machine's sync state alone (the conflicts pulls left), holding the machine-wide
    lock: for a command that needs neither the key nor the repository."""
    config.load_settings(where.config_dir)  # a machine not set up has none
    with machine_lock(where.config_dir), _state(where) as state:
        yield state


@contextmanager
def _state(where: Locations) -> Iterator[State]:
    state = State(config.state_file(where.config_dir, where.claude_dir))
    try:
        yield state
    finally:
        state.close()


def _repository(
    where: Locations, settings: config.Settings, keys: crypto.KeyRing, options: RemoteOptions
) -> Repository:
    cached = config.load_repo_config(where.config_dir)
    repo = open_repository(settings.remote, options, keys, cached)
    if cached is not None:
        return repo
    if repo.config.repo_id != settings.repo_id:
        repo.close()
        raise ConfigError(
            f"{redact(settings.remote)} now holds a different repository than the one this "
            "machine joined; run `claude-sync init --force` to join it"
        )
    save_keys(where.config_dir, repo)
    return repo


def machine_keys(config_dir: Path, repo_id: str) -> crypto.KeyRing:
    """The keys this machine holds: the master key and what it needs to follow key epochs."""
    master = config.load_master_key(config_dir, repo_id)
    return crypto.KeyRing.from_held(master, config.load_held_keys(config_dir))


def save_keys(config_dir: Path, repo: Repository) -> None:
    """Keep the repository's keys on this machine, so later commands need no passphrase."""
    config.save_master_key(
        config_dir, repo.config.repo_id, repo.keys.master, repo.config_body(), repo.keys.held()
    )


@contextmanager
def machine_lock(config_dir: Path) -> Iterator[None]:
    """One claude-sync at a time per machine: hooks of parallel sessions queue up here."""
    from filelock import FileLock, Timeout  # here: only commands that sync pay its import

    lock = FileLock(config_dir / config.LOCK_FILE)
    try:
        lock.acquire(timeout=float(os.environ.get(LOCK_TIMEOUT_ENV, "120")), poll_interval=0.1)
    except Timeout:
        raise SyncError("another claude-sync is still running on this machine") from None
    try:
        yield
    finally:
        lock.release()
