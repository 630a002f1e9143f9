"""`claude-sync doctor`: check the set-up end to end and say how to fix what is wrong.

Each check is independent where it can be: a missing config still lets the Claude Code folder
and hooks be looked at. Nothing here changes the repository, except a probe object that is
created and deleted again to prove the remote takes (create-only) writes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from claude_sync import config, crypto, hook_install, plugins
from claude_sync.errors import SyncError, WrongKeyError
from claude_sync.head import HISTORY_ALARM
from claude_sync.repository import RemoteOptions, Repository
from claude_sync.repository.place import Place
from claude_sync.resources import TYPES, waiting_for_upgrade
from claude_sync.state import State
from claude_sync.terminal import redact
from claude_sync.workspace import Locations, machine_keys

#: A newest snapshot further in the future than this means some machine's clock is wrong.
MAX_SKEW = 300.0
REINIT = "run `claude-sync init --force REMOTE` to set this machine up again"
_HOOK = re.compile(r"claude[-_]sync hook session-(start|end)\b")


@dataclass
class Check:
    """One line of `doctor`'s report: what was checked, whether it passed, and how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def run(where: Locations) -> list[Check]:
    """Every check, in the order shown; a failed one does not stop those that do not
    depend on it."""
    checks: list[Check] = []
    settings = _settings(where, checks)
    if settings is not None:
        keys = _key(where, settings, checks)
        with _opened(where, settings, checks) as place:
            if place is not None:
                _writes(place, checks)
                repo = _repository(place, settings, keys, checks)
                if repo is not None:
                    checks.append(_format(repo, settings, where))
                    checks.append(_clock(repo))
        checks += _local_state(where)
        checks.append(_history(where))
    checks.append(_claude_dir(where))
    checks.append(_hooks(where))
    checks.append(_plugins(where))
    return checks


def _format(repo: Repository, settings: config.Settings, where: Locations) -> Check:
    """Passes for a repository not upgraded yet (what a machine still running an older
    claude-sync needs; the types it leaves out are named), not for one whose format went
    back from what this machine saw (every syncing command refuses it)."""
    cached = config.load_repo_config(where.config_dir)
    seen = cached.get("version") if isinstance(cached, dict) else None
    if isinstance(seen, int) and repo.config.version < seen:
        return Check(
            "repository format",
            False,
            f"format {repo.config.version}, older than the format {seen} this machine saw: "
            "its config was replaced by an older copy",
            "once you know the repository holds your data, run `claude-sync upgrade`",
        )
    enabled = tuple(t for t in TYPES if settings.types.get(t.name, t.default))
    waiting = [t.name for t in waiting_for_upgrade(enabled, repo.config.version)]
    if not waiting:
        return Check("repository format", True, f"format {repo.config.version}")
    return Check(
        "repository format",
        True,
        f"format {repo.config.version}: {', '.join(waiting)} not synced until "
        "`claude-sync upgrade` (once every machine runs this claude-sync)",
    )


def _settings(where: Locations, checks: list[Check]) -> config.Settings | None:
    try:
        settings = config.load_settings(where.config_dir)
    except SyncError as exc:
        checks.append(Check("config", False, str(exc), "run `claude-sync init` (or --force)"))
        return None
    checks.append(Check("config", True, f"{where.config_dir} (remote {redact(settings.remote)})"))
    return settings


def _key(where: Locations, settings: config.Settings, checks: list[Check]) -> crypto.KeyRing | None:
    try:
        keys = machine_keys(where.config_dir, settings.repo_id)
    except SyncError as exc:
        checks.append(Check("key", False, str(exc), REINIT))
        return None
    checks.append(Check("key", True, f"present for repository {settings.repo_id[:12]}"))
    return keys


@contextmanager
def _opened(
    where: Locations, settings: config.Settings, checks: list[Check]
) -> Iterator[Place | None]:
    """The remote, when it answers a listing of the repository's config object."""
    options = RemoteOptions(
        endpoint_url=settings.endpoint_url,
        git_branch=settings.git_branch,
        cache_dir=where.config_dir / "cache",
    )
    name = "remote reachable"
    try:
        place = Place(settings.remote, options)
    except SyncError as exc:
        checks.append(Check(name, False, str(exc), "check the remote's address and credentials"))
        yield None
        return
    try:
        if gone := place.missing():
            raise SyncError(gone)
        holds = place.holds_config()
    except SyncError as exc:
        checks.append(Check(name, False, str(exc), f"make the remote reachable, or {REINIT}"))
        yield None
    else:
        if not holds:
            checks.append(
                Check(name, False, f"{place.display} holds no repository (emptied?)", REINIT)
            )
            yield None
        else:
            checks.append(Check(name, True, place.display))
            yield place
    finally:
        place.close()


def _writes(place: Place, checks: list[Check]) -> None:
    try:
        honoured = place.probe_writes()
    except SyncError as exc:
        checks.append(Check("remote writable", False, str(exc), "grant write access"))
        return
    checks.append(Check("remote writable", True, place.write_probe))
    checks.append(
        Check(
            "conditional writes",
            honoured,
            "create-only writes are honoured"
            if honoured
            else "an existing object was "
            "overwritten: two machines could overwrite each other's snapshots",
            "" if honoured else "use a server that supports If-None-Match / preconditions",
        )
    )


def _repository(
    place: Place,
    settings: config.Settings,
    keys: crypto.KeyRing | None,
    checks: list[Check],
) -> Repository | None:
    name = "key matches repository"
    if keys is None:
        return None
    try:
        repo = place.open(keys)
    except WrongKeyError as exc:
        # The same for a key that never matched and a config object damaged since.
        checks.append(
            Check(
                name,
                False,
                f"the local key does not open it: {exc}",
                "if this machine synced with it before, its `config` object is damaged: "
                f"restore that object from a backup of the storage; else {REINIT}",
            )
        )
        return None
    except SyncError as exc:
        checks.append(Check(name, False, f"the local key does not open it: {exc}", REINIT))
        return None
    if repo.config.repo_id != settings.repo_id:
        checks.append(Check(name, False, "the remote holds another repository now", REINIT))
        return None
    checks.append(Check(name, True, f"repository {repo.config.repo_id[:12]} opens"))
    return repo


def _clock(repo: Repository) -> Check:
    """A snapshot stamped in the future: this clock (or the pushing machine's) is off."""
    try:
        seq = repo.head_seq()
        if seq is None:
            return Check("clock", True, "no snapshot yet to compare with")
        snapshot = repo.load_root(seq)
    except SyncError as exc:
        return Check(
            "clock",
            False,
            f"cannot read the newest snapshot: {exc}",
            "run `claude-sync repair` (`repair --forget-damaged` for a snapshot nobody can "
            "read), then `claude-sync sync --allow-rollback` on the machines that had it",
        )
    ahead = snapshot.time - time.time()
    if ahead > MAX_SKEW:
        return Check(
            "clock",
            False,
            f"the newest snapshot ({seq}, from {snapshot.device}) is {_ago(-ahead)} in the future",
            f"set the clock right here or on {snapshot.device} (e.g. enable NTP)",
        )
    return Check("clock", True, f"newest snapshot {seq} from {snapshot.device}, {_ago(ahead)} ago")


def _local_state(where: Locations) -> list[Check]:
    path = config.state_file(where.config_dir, where.claude_dir)
    if not path.exists():
        return [Check("last sync", True, "never (no pull or push yet)")]
    try:
        state = State(path)
    except SyncError as exc:
        return [Check("local state", False, str(exc), REINIT)]
    try:
        meta = {d: state.get_meta(f"last_{d}") for d in ("pull", "push")}
        conflicts = state.conflicts()
    finally:
        state.close()
    last = ", ".join(f"{d} {_when(v)}" for d, v in meta.items())
    if not conflicts:
        return [Check("last sync", True, last), Check("conflicts", True, "none unresolved")]
    first = sorted(conflicts)[0]
    return [
        Check("last sync", True, last),
        Check(
            "conflicts",
            False,
            f"{len(conflicts)} unresolved: {', '.join(sorted(conflicts))}",
            f"see `claude-sync conflicts`, then `claude-sync resolve {first} --take local` "
            "(or remote, or both)",
        ),
    ]


def _history(where: Locations) -> Check:
    """A rollback or fork found by a sync in the background is kept until a sync passes."""
    try:
        alarm = (where.config_dir / HISTORY_ALARM).read_text()
    except (OSError, UnicodeDecodeError):
        return Check("history", True, "the repository continues the history seen here")
    return Check(
        "history",
        False,
        alarm,
        "check the storage (a restored backup? two copies?); `claude-sync sync` tells when it "
        "is right again, `claude-sync sync --allow-rollback` accepts it keeping local changes",
    )


def _claude_dir(where: Locations) -> Check:
    if where.claude_dir.is_dir():
        return Check("Claude Code folder", True, str(where.claude_dir))
    return Check(
        "Claude Code folder",
        False,
        f"{where.claude_dir} does not exist",
        "run Claude Code once, or point --claude-dir / CLAUDE_CONFIG_DIR at its folder",
    )


def _hooks(where: Locations) -> Check:
    """Informational: automatic sync is optional."""
    path = where.claude_dir / "settings.json"
    try:
        text = path.read_text()
    except OSError:
        text = ""
    found = {m.group(1) for m in _HOOK.finditer(text)}
    if found and hook_install.has_unsafe_hooks(path):
        return Check(
            "hooks",
            False,
            f"the hooks in {path} run `python -m claude_sync`, which imports a `claude_sync` "
            "folder of the project they run in",
            "run `claude-sync install` again (its hooks run `python -P -m claude_sync`)",
        )
    pid = plugins.self_plugin(where.claude_dir)
    if pid and found:
        return Check(
            "hooks",
            False,
            f"both the claude-sync plugin ({pid}) and hooks in {path}",
            "run `claude-sync install --plugin` to keep only the plugin",
        )
    if pid:
        return Check("hooks", True, f"the claude-sync plugin ({pid}) runs them (automatic sync)")
    if found == {"start", "end"}:
        return Check("hooks", True, f"installed in {path} (automatic sync)")
    return Check(
        "hooks",
        True,
        f"not installed{' (partly)' if found else ''}: sync runs when you run it; "
        "`claude-sync install` syncs on each Claude Code session",
    )


def _plugins(where: Locations) -> Check:
    missing = plugins.missing(where.claude_dir)
    if not missing:
        return Check("plugins", True, "every plugin and marketplace listed is installed")
    names = ", ".join(f"{m.kind} {m.name}" for m in missing)
    return Check(
        "plugins",
        False,
        f"listed but missing here: {names}",
        "; ".join(m.shell for m in missing) + " (or `claude-sync plugins --install`)",
    )


def _when(stamp: str | None) -> str:
    if not stamp:
        return "never"
    return f"{_ago(time.time() - float(stamp))} ago"


def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} seconds"
