"""Where things live (docs/CLI.md "Locations") and claude-sync's own config and key files."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from claude_sync.durable import write_private
from claude_sync.errors import ConfigError
from claude_sync.pathmap import LABEL

CONFIG_FILE = "config.json"
KEY_FILE = "key"
STATE_FILE = "state.db"
LOCK_FILE = "lock"
CONFIG_VERSION = 1


def _given_folder(option: str | None, variable: str) -> Path | None:
    """The folder an option names, else the one an environment variable names, if any."""
    given = option or os.environ.get(variable)
    return Path(given).expanduser() if given else None


def claude_dir(option: str | None) -> Path:
    return _given_folder(option, "CLAUDE_CONFIG_DIR") or Path.home() / ".claude"


def state_file(config_dir: Path, claude_dir: Path) -> Path:
    """The sync state (stat cache, merge bases, conflicts) of one Claude folder, keyed by its
    real path: a second folder (CLAUDE_CONFIG_DIR) is a new, empty side, never the old one."""
    key = hashlib.sha256(os.fsencode(os.path.realpath(claude_dir))).hexdigest()[:16]
    path = config_dir / f"state-{key}.db"
    legacy = config_dir / STATE_FILE
    if not path.exists() and legacy.exists():
        # Before states were keyed, the only one belonged to the folder in use.
        for suffix in ("-wal", "-shm", ""):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{legacy}{suffix}", f"{path}{suffix}")
    return path


def state_files(config_dir: Path) -> list[Path]:
    """Every Claude folder's state, with SQLite's side files."""
    return sorted(config_dir.glob("state*.db*"))


def config_dir(option: str | None) -> Path:
    given = _given_folder(option, "CLAUDE_SYNC_CONFIG_DIR")
    return given if given is not None else default_config_dir()


def default_config_dir() -> Path:
    """The config folder when neither the option nor the variable names one."""
    import platformdirs  # only here: it costs more to import than a no-op push takes

    return Path(platformdirs.user_config_dir("claude-sync", appauthor=False))


def default_remote() -> str:
    """The embedded default: a folder in the user's data directory, no account needed."""
    import platformdirs

    return str(Path(platformdirs.user_data_dir("claude-sync", appauthor=False)) / "repository")


@dataclass
class Settings:
    remote: str
    repo_id: str
    device: str = field(default_factory=socket.gethostname)
    endpoint_url: str | None = None
    git_branch: str | None = None
    types: dict[str, bool] = field(default_factory=dict)
    #: local project directory -> label shared by the machines that map it
    path_maps: dict[str, str] = field(default_factory=dict)
    #: glob patterns on logical paths narrowing what is synced
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    #: how recently updated a session must be for pull to fetch it: a duration or "all";
    #: None: Claude Code's cleanupPeriodDays here
    session_window: str | None = None
    #: names this machine pushed under before `devices --rename`
    former_names: list[str] = field(default_factory=list)
    #: session id -> [local folder, logical folder]: sessions `resume --cwd` placed elsewhere
    moved_sessions: dict[str, list[str]] = field(default_factory=dict)


def parse_duration(text: str | None) -> float | None:
    """`90d`, `12h`, `30m`, `45s` or plain seconds."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        return float(number) * units[unit]
    except ValueError:
        raise ConfigError(f"not a duration: {text!r} (e.g. 30d, 12h, 90m)") from None


def is_set_up(directory: Path) -> bool:
    return (directory / CONFIG_FILE).exists()


def load_settings(directory: Path) -> Settings:
    path = directory / CONFIG_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("this machine is not set up: run `claude-sync init` first") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict) or raw.get("version") != CONFIG_VERSION:
        raise ConfigError(f"{path} is not a claude-sync {CONFIG_VERSION} config file")
    try:
        types = raw.get("types", {})
        maps = raw.get("path_maps", {})
        if not isinstance(types, dict) or not isinstance(maps, dict):
            raise TypeError
        for label in maps.values():
            if not isinstance(label, str) or not LABEL.fullmatch(label):
                raise ConfigError(f"{path}: path map labels are letters and digits only: {label!r}")
        if not isinstance(raw["remote"], str) or not raw["remote"]:
            raise ConfigError(
                f'{path}: "remote" must name a remote: run `claude-sync init --force`'
            )
        return Settings(
            remote=raw["remote"],
            repo_id=str(raw["repo_id"]),
            device=str(raw.get("device") or socket.gethostname()),
            endpoint_url=raw.get("endpoint_url"),
            git_branch=raw.get("git_branch"),
            types={str(k): bool(v) for k, v in types.items()},
            path_maps={str(k): str(v) for k, v in maps.items()},
            include=_strings(raw.get("include", []), path),
            exclude=_strings(raw.get("exclude", []), path),
            session_window=_optional_string(raw.get("session_window"), path),
            former_names=[str(n) for n in raw.get("former_names") or [] if isinstance(n, str)],
            # [folder here, logical folder], and since 0.2 the directory it was placed for
            moved_sessions={
                str(k): [str(part) for part in v]
                for k, v in (raw.get("moved_sessions") or {}).items()
                if isinstance(v, list) and len(v) in (2, 3)
            },
        )
    except (KeyError, TypeError):
        raise ConfigError(f"{path} is malformed: run `claude-sync init --force`") from None


def _strings(value: object, path: Path) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: include and exclude are lists of glob patterns")
    return list(value)


def _optional_string(value: object, path: Path) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{path}: session_window is a duration such as 90d, or all")
    return value


def save_settings(directory: Path, settings: Settings) -> None:
    body = {"version": CONFIG_VERSION, **asdict(settings)}
    write_private(directory / CONFIG_FILE, (json.dumps(body, indent=2) + "\n").encode())


def save_master_key(
    directory: Path,
    repo_id: str,
    master: bytes,
    repo_config: dict[str, object] | None = None,
    held: dict[str, object] | None = None,
) -> None:
    """The key, and the repository's config so daily commands need not fetch it; `held` is
    the rest of what this machine holds (its key object's identity, the key epochs' keys:
    crypto.KeyRing.held), so it follows key epochs without a passphrase."""
    body: dict[str, object] = {"repo_id": repo_id, "master_key": base64.b64encode(master).decode()}
    if repo_config is not None:
        body["repo_config"] = repo_config
    if held is not None:
        body["held"] = held
    write_private(directory / KEY_FILE, json.dumps(body).encode())


def load_held_keys(directory: Path) -> dict[str, object]:
    """What save_master_key kept as `held`; empty for key files older than key epochs."""
    try:
        held = json.loads((directory / KEY_FILE).read_text()).get("held")
    except (OSError, ValueError, AttributeError):
        return {}
    return held if isinstance(held, dict) else {}


def load_repo_config(directory: Path) -> object | None:
    try:
        return json.loads((directory / KEY_FILE).read_text()).get("repo_config")
    except (OSError, ValueError, AttributeError):
        return None


def load_master_key(directory: Path, repo_id: str) -> bytes:
    path = directory / KEY_FILE
    try:
        raw = json.loads(path.read_text())
        master = base64.b64decode(raw["master_key"], validate=True)
    except FileNotFoundError:
        raise ConfigError(
            f"the key file {path} is missing: run `claude-sync init --force` to join again"
        ) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"the key file {path} is damaged: run `claude-sync init --force`"
        ) from None
    if raw.get("repo_id") != repo_id or len(master) != 32:
        raise ConfigError(f"the key file {path} belongs to another repository")
    return master
