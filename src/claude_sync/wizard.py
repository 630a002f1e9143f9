"""The interactive `init`: `claude-sync init` with no remote, on a terminal.

It asks which storage to use and only that provider's questions, checks that the place is
reachable and usable, and then either joins the repository found there (passphrase only) or
creates a new one (passphrase, or a recovery key alone). Nothing is written anywhere before the
last step, so Ctrl-C at any question leaves no trace; a Ctrl-C while the repository is being
created removes what was created.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import click

from claude_sync import config, crypto
from claude_sync.errors import ConfigError, SyncError, WrongKeyError
from claude_sync.passphrase import in_environment, read_passphrase, require_strong, weakness
from claude_sync.repository import RemoteOptions, Repository, normalize_remote
from claude_sync.repository.place import Place
from claude_sync.terminal import redact
from claude_sync.workspace import (
    InitOutcome,
    Locations,
    machine_name,
    refuse_if_set_up,
    save_setup,
)

T = TypeVar("T")

PROVIDERS = (
    ("default", "The default folder on this machine (no account needed)"),
    ("folder", "A folder (this disk, or a shared or synced drive)"),
    ("git", "A Git repository (GitHub, GitLab, your own server...)"),
    ("s3", "Amazon S3"),
    ("s3-compatible", "An S3-compatible server (MinIO, SeaweedFS, Wasabi, Backblaze B2...)"),
    ("r2", "Cloudflare R2"),
    ("gs", "Google Cloud Storage"),
)
DEFAULT_PREFIX = "claude"
MIN_PASSPHRASE = 8
# `git@host:owner/repo.git`, the form Git hosts show: same as ssh://git@host/owner/repo.git.
_SCP_LIKE = re.compile(r"(?P<user>[^@/:\s]+@)?(?P<host>[^/:\s]+):(?P<path>[^/\s].*)")


@dataclass
class Choice:
    """Where the repository lives, as the user chose it (a remote and how to reach it)."""

    remote: str
    options: RemoteOptions = field(default_factory=RemoteOptions)

    def init_command(self, recovery_key: str | None = None) -> str:
        """What to type on the next machine to join."""
        words = ["claude-sync", "init", redact(self.remote)]
        if self.options.endpoint_url:
            words += ["--endpoint-url", self.options.endpoint_url]
        if self.options.git_branch:
            words += ["--git-branch", self.options.git_branch]
        if recovery_key:
            words += ["--recovery-key", recovery_key]
        return shlex.join([*words, "--sync"])


def run(where: Locations, *, force: bool, device: str | None, hint: bool = True) -> InitOutcome:
    """Interactive `init`: ask where the repository lives and check it, then join or create
    it. Nothing is written anywhere until the last step."""
    refuse_if_set_up(where, force)
    say("Set up claude-sync on this machine. Press Ctrl-C at any time to stop: nothing is")
    say("written anywhere until the last step.\n")
    # Checks work in a throw-away cache (the git backend clones there) so that the config
    # folder comes to exist only when the set-up is complete.
    with tempfile.TemporaryDirectory(prefix="claude-sync-wizard-") as cache:
        while True:
            choice = ask_place()
            choice.options.cache_dir = Path(cache)
            try:
                return _set_up(where, choice, device, hint)
            except _TryAgain as exc:
                say(f"error: {exc}\nLet's choose the storage again.\n")


class _TryAgain(Exception):
    """The chosen place cannot be used: back to the provider menu."""


def _set_up(where: Locations, choice: Choice, device: str | None, hint: bool) -> InitOutcome:
    say(f"Checking {redact(choice.remote)} ...")
    with _open(choice) as place:
        if _holds_repository(place, choice):
            return _join(where, choice, place, device, hint)
        return _create(where, choice, place, device, hint)


def _open(choice: Choice) -> Place:
    try:
        return Place(choice.remote, choice.options)
    except SyncError as exc:
        raise _TryAgain(str(exc)) from None


def _holds_repository(place: Place, choice: Choice) -> bool:
    """Reachable? Then: a repository to join, or room for a new one (maybe a new bucket)."""
    try:
        if place.holds_repository():
            return True
        place.check_empty()
    except ConfigError as exc:
        if "bucket" not in str(exc) or "does not exist" not in str(exc):
            raise _TryAgain(str(exc)) from None
        if not click.confirm(f"{str(exc).split(';')[0]}. Create it at the end?", default=True):
            raise _TryAgain("the bucket does not exist") from None
        choice.options.create_bucket = True
    except SyncError as exc:
        raise _TryAgain(str(exc)) from None
    return False


# -- the questions ----------------------------------------------------------------------------


def say(text: str = "") -> None:
    """One line of the wizard's conversation on stdout."""
    click.echo(text)


def ask(prompt: str, parse: Callable[[str], T], default: str | None = None) -> T:
    """Ask until parse() accepts the answer; its ConfigError explains what is wrong."""
    while True:
        answer: str = click.prompt(prompt, default=default, show_default=default is not None)
        try:
            return parse(answer.strip())
        except ConfigError as exc:
            say(f"  {exc}")


def ask_place() -> Choice:
    """Ask which storage provider, then where in it (each answer checked as it is given)."""
    say("Where should the encrypted repository live?")
    for number, (_, label) in enumerate(PROVIDERS, 1):
        say(f"  {number}) {label}")
        if number == 1:
            say(f"     {config.default_remote()}")
    choice: int = click.prompt(
        "Choose a storage provider", type=click.IntRange(1, len(PROVIDERS)), default=1
    )
    kind = PROVIDERS[choice - 1][0]
    return QUESTIONS[kind]()


def _folder() -> Choice:
    def parse(text: str) -> str:
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path} is a file, not a folder")
        return normalize_remote(str(path))

    return Choice(ask("Folder", parse, default=config.default_remote()))


def _git() -> Choice:
    remote = ask("Git repository URL (e.g. git@github.com:you/claude-vault.git)", git_remote)
    branch = ask("Branch (empty: the repository's default)", _branch, default="")
    return Choice(remote, RemoteOptions(git_branch=branch or None))


def git_remote(text: str) -> str:
    """Accept what Git hosts show (`git@host:path`, `https://…`) and local paths, too."""
    if not text:
        raise ConfigError("give the repository's URL")
    if text.startswith("git+"):
        return normalize_remote(text)
    if text.startswith("/") or text.startswith("~"):
        return normalize_remote("git+file://" + str(Path(text).expanduser()))
    if "://" not in text and (m := _SCP_LIKE.fullmatch(text)):
        return normalize_remote(f"git+ssh://{m['user'] or ''}{m['host']}/{m['path']}")
    return normalize_remote("git+" + text)


def _branch(text: str) -> str:
    if text and (text.startswith(("-", "/")) or any(c in text for c in " ~^:?*[\\")):
        raise ConfigError(f"{text!r} is not a valid branch name")
    return text


def _bucket_place(scheme: str, account: str = "", options: RemoteOptions | None = None) -> Choice:
    head = f"{scheme}://{account + '/' if account else ''}"
    bucket = ask("Bucket", lambda b: _validated(head + b, b))
    prefix = ask(
        "Folder inside the bucket (empty: the whole bucket)",
        lambda p: _validated(head + bucket + ("/" + p.strip("/") if p.strip("/") else ""), p),
        default=DEFAULT_PREFIX,
    )
    remote = head + bucket + ("/" + prefix.strip("/") if prefix.strip("/") else "")
    return Choice(normalize_remote(remote), options or RemoteOptions())


def _validated(remote: str, answer: str) -> str:
    if not answer and remote.endswith("://"):
        raise ConfigError("give a bucket name")
    normalize_remote(remote)
    return answer


def _s3() -> Choice:
    say("Credentials come from the AWS SDK's usual chain (AWS_PROFILE, the environment, SSO,")
    say("an instance role); claude-sync never stores them.")
    return _bucket_place("s3")


def _s3_compatible() -> Choice:
    endpoint = ask("Endpoint URL (e.g. https://s3.eu-central-003.backblazeb2.com)", endpoint_url)
    return _bucket_place("s3", options=RemoteOptions(endpoint_url=endpoint))


def endpoint_url(text: str) -> str:
    """Parse an S3-compatible endpoint URL (http or https with a host), without trailing `/`."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.split("/")[0]:
        raise ConfigError("an endpoint URL looks like https://host[:port]")
    return text.rstrip("/")


def _r2() -> Choice:
    say("Use an R2 API token's key pair as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.")
    account = ask("Cloudflare account id", lambda a: _validated(f"r2://{a}/bucket", a))
    return _bucket_place("r2", account)


def _gs() -> Choice:
    say("Credentials come from Application Default Credentials (gcloud auth")
    say("application-default login, or GOOGLE_APPLICATION_CREDENTIALS).")
    return _bucket_place("gs")


QUESTIONS: dict[str, Callable[[], Choice]] = {
    "default": lambda: Choice(config.default_remote()),
    "folder": _folder,
    "git": _git,
    "s3": _s3,
    "s3-compatible": _s3_compatible,
    "r2": _r2,
    "gs": _gs,
}


# -- joining ----------------------------------------------------------------------------------


def _join(
    where: Locations, choice: Choice, place: Place, device: str | None, hint: bool
) -> InitOutcome:
    say(f"{redact(choice.remote)} already holds a claude-sync repository: joining it.")
    repo = _unlock(place)
    save_setup(where, choice.remote, choice.options, repo, machine_name(where, device))
    say(f"\nJoined the repository at {redact(choice.remote)}.")
    if hint:
        say("Next: claude-sync pull")
    return InitOutcome(False, choice.remote, repo.config.repo_id)


def _unlock(place: Place) -> Repository:
    """The passphrase (re-asked when wrong), or the recovery key of a passphrase-less one."""
    env = _passphrase_from_environment()
    no_keys = not place.has_passphrase_keys()
    while True:
        try:
            if no_keys:
                text = click.prompt("This repository has no passphrase. Recovery key")
                return place.recover(text)
            if env is not None:
                return place.unlock(env)
            return place.unlock(click.prompt("Passphrase", hide_input=True))
        except WrongKeyError as exc:
            if env is not None:
                raise
            say(f"  {exc}; try again.")


def _passphrase_from_environment() -> str | None:
    """CLAUDE_SYNC_PASSPHRASE(_FILE) answer the passphrase question, as for a plain `init`
    (scripts/install.sh on a terminal relies on it)."""
    if in_environment():
        return read_passphrase(None, confirm=False)
    return None


# -- creating ---------------------------------------------------------------------------------


def _create(
    where: Locations, choice: Choice, place: Place, device: str | None, hint: bool
) -> InitOutcome:
    _confirm_new_folder(place, choice)
    say(f"{redact(choice.remote)} is empty: a new repository will be created there.")
    _check_usable(place, choice)
    passphrase = _choose_protection()
    name = machine_name(where, device)
    with _undo_on_interrupt(place, choice):
        # Makes the bucket (S3/GCS probe conditional writes again) or the folder.
        place.prepare(create=choice.options.create_bucket)
        repo = place.create(passphrase, name)
        recovery = None
        if passphrase is None:
            recovery = crypto.recovery_key(repo.keys.master, crypto.RECOVERY_PREFIX)
            _confirm_saved(recovery)
    save_setup(where, choice.remote, choice.options, repo, name)
    _summary(where, choice, recovery, hint)
    return InitOutcome(True, choice.remote, repo.config.repo_id)


def _confirm_new_folder(place: Place, choice: Choice) -> None:
    """A folder typed here that does not exist may be a typo or an unmounted drive."""
    folder = place.folder
    if folder is None or folder.exists():
        return
    if choice.remote == normalize_remote(config.default_remote()):
        return
    if not click.confirm(f"{folder} does not exist. Create it?", default=True):
        raise _TryAgain(f"{folder} does not exist")


def _check_usable(place: Place, choice: Choice) -> None:
    """Writable (and, for S3/GCS, honouring conditional writes) before anything is created.
    A bucket still to be made is checked when it is made, at the end."""
    try:
        if place.folder is not None:
            _check_folder_writable(place.folder)
        elif not choice.options.create_bucket:
            place.prepare(create=False)
    except SyncError as exc:
        raise _TryAgain(str(exc)) from None


def _check_folder_writable(root: Path) -> None:
    # The folder is made only at the end: check the nearest existing parent instead.
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write to {existing}")


def _choose_protection() -> str | None:
    say("\nProtect the repository with:")
    say("  1) a passphrase (you type it once on each new machine)")
    say("  2) no passphrase: show me a recovery key to keep instead")
    choice: int = click.prompt("Choose", type=click.IntRange(1, 2), default=1)
    if choice == 2:
        return None
    env = _passphrase_from_environment()
    if env is not None:
        require_strong(env)
        say("Using the passphrase from the environment.")
        return env
    return ask_new_passphrase()


def ask_new_passphrase() -> str:
    """Ask for a new passphrase (twice) until it is long and strong enough."""
    while True:
        text: str = click.prompt("New passphrase", hide_input=True, confirmation_prompt=True)
        problem = weakness(text) if len(text) >= MIN_PASSPHRASE else None
        if len(text) >= MIN_PASSPHRASE and problem is None:
            return text
        say(f"  {problem or f'Use at least {MIN_PASSPHRASE} characters (a few words are best).'}")


def _confirm_saved(recovery: str) -> None:
    say("\nYour recovery key (anyone holding it can read your synced data; without it the")
    say("data cannot be recovered). Store it like a password, e.g. in a password manager:\n")
    say(f"    {recovery}\n")
    tail = recovery[-6:]
    while True:
        answer: str = click.prompt("To confirm you saved it, type its last 6 characters")
        if answer.strip().upper() == tail.upper():
            return
        say("  That does not match the end of the key; look again.")


@contextmanager
def _undo_on_interrupt(place: Place, choice: Choice) -> Iterator[None]:
    """Ctrl-C while creating (or before the recovery key is confirmed): remove the repository
    objects written so far. Safe because the place was empty when the wizard checked it."""
    folder = place.folder
    made = _missing_parents(folder) if folder else []
    try:
        yield
    except (KeyboardInterrupt, click.Abort):
        _remove_new_repository(place, made)
        raise


def _missing_parents(path: Path) -> list[Path]:
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    return missing


def _remove_new_repository(place: Place, made: list[Path]) -> None:
    if not place.remove_new_repository():
        return  # not only what this run wrote: left alone
    for folder in made:  # the folder and parents this run created, deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


def _summary(where: Locations, choice: Choice, recovery: str | None, hint: bool) -> None:
    say(f"\nCreated a new encrypted repository at {redact(choice.remote)}.")
    say(f"  this machine's settings and key: {where.config_dir}")
    say(f"  Claude Code folder synced:       {where.claude_dir}")
    if recovery is None:
        say("  Keep the passphrase safe: without it (or `claude-sync key export`) the data")
        say("  cannot be recovered.")
    if hint:
        say("\nNext: claude-sync push")
    say("On your next machine run:")
    say(f"  {choice.init_command(recovery)}")
