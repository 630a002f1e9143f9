"""The three tools under test and how each maps the benchmark's scenarios to commands.

| scenario    | claude-sync              | restic                       | rclone (crypt)          |
|-------------|--------------------------|------------------------------|-------------------------|
| push        | push                     | backup --compression auto    | sync SRC crypt:         |
| no-op push  | push                     | backup                       | sync                    |
| append push | push                     | backup                       | sync                    |
| fresh pull  | init (join) + pull --all | restore latest (empty cache) | copy crypt: DEST        |
| status      | status                   | backup --dry-run             | sync --dry-run          |
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PASSPHRASE = "benchmark passphrase: correct horse battery staple"
_SCRUB = (
    "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME",
    "CLAUDE_CONFIG_DIR", "CLAUDE_SYNC_CONFIG_DIR", "CLAUDE_SYNC_PASSPHRASE",
    "CLAUDE_SYNC_PASSPHRASE_FILE", "RESTIC_REPOSITORY", "RESTIC_PASSWORD", "RCLONE_CONFIG",
    "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_CA_BUNDLE",  # rclone fails on it with its own transport; the servers are plain http
    # Installed Python programs run from compiled bytecode; without it every run of
    # claude-sync would compile its modules again (~0.2 s), which no user pays.
    "PYTHONDONTWRITEBYTECODE",
)  # fmt: skip


@dataclass
class Command:
    args: list[str]
    env: dict[str, str]
    cwd: Path


@dataclass
class Place:
    """Where one tool keeps its repository on one backend."""

    kind: str  # folder | s3
    path: Path | None = None  # folder backend
    bucket: str = ""  # s3 backend
    endpoint: str = ""
    creds: dict[str, str] | None = None


def base_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


class Tool:
    """A tool working on one source HOME (with .claude) and one place."""

    name = ""

    def __init__(self, src_home: Path, place: Place, work: Path) -> None:
        self.src_home = src_home
        self.place = place
        self.work = work / self.name
        self.work.mkdir(parents=True, exist_ok=True)

    @property
    def claude(self) -> Path:
        return self.src_home / ".claude"

    def warm_up(self) -> list[Command]:
        """Run once before anything is measured."""
        return []

    def program(self) -> list[Path]:
        """The files the tool runs from (read into the page cache before a warm scenario,
        see measure.warm)."""
        found = shutil.which(self.name)
        return [Path(found)] if found else []

    def setup(self) -> list[Command]:
        raise NotImplementedError

    def push(self) -> list[Command]:
        raise NotImplementedError

    def status(self) -> list[Command]:
        raise NotImplementedError

    def pull(self, fresh: Path) -> list[Command]:
        raise NotImplementedError


class ClaudeSync(Tool):
    name = "claude-sync"

    def _env(self, home: Path, config_dir: Path) -> dict[str, str]:
        extra = {
            "CLAUDE_SYNC_PASSPHRASE": PASSPHRASE,
            "CLAUDE_SYNC_CONFIG_DIR": str(config_dir),
            # An installed claude-sync has bytecode (pip compiles it); a venv made by uv, or
            # PYTHONDONTWRITEBYTECODE, would make every run compile botocore & co. (~0.7 s).
            "PYTHONPYCACHEPREFIX": str(self.work.parent.parent / "pycache"),
        }
        env = base_env(home, {**extra, **(self.place.creds or {})})
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def warm_up(self) -> list[Command]:
        """Import every module once so that their bytecode is cached, as after an install."""
        code = (
            "import pkgutil, importlib, claude_sync, botocore.session\n"
            "for m in pkgutil.walk_packages(claude_sync.__path__, 'claude_sync.'):\n"
            "    m.name.endswith('__main__') or importlib.import_module(m.name)"
        )
        env = self._env(self.src_home, self.work / "config")
        return [Command([sys.executable, "-c", code], env, self.work)]

    def program(self) -> list[Path]:
        """Its bytecode, the compiled modules it loads, and botocore's S3 model: a push that
        sends something imports the SDK, which nothing else the bench runs reads."""
        files = [self.work.parent.parent / "pycache"]
        for package in ("cryptography", "zstandard", "blake3", "pyfastcdc", "botocore"):
            spec = importlib.util.find_spec(package)
            if spec and spec.origin:
                folder = Path(spec.origin).parent
                files += folder.rglob("*.so")
                if package == "botocore":
                    files += [*(folder / "data").glob("*.json"), folder / "data" / "s3"]
        return files

    def _cmd(self, home: Path, config_dir: Path, *args: str) -> Command:
        argv = [sys.executable, "-m", "claude_sync", *args]
        return Command(argv, self._env(home, config_dir), home)

    def _remote(self) -> list[str]:
        if self.place.kind == "folder":
            return [str(self.place.path)]
        return [f"s3://{self.place.bucket}", "--endpoint-url", self.place.endpoint]

    def setup(self) -> list[Command]:
        # --create: the repository's folder is not there yet (init refuses a typo'd place).
        return [self._cmd(self.src_home, self.work / "config", "init", *self._remote(), "--create")]

    def push(self) -> list[Command]:
        return [self._cmd(self.src_home, self.work / "config", "push", "--json")]

    def status(self) -> list[Command]:
        return [self._cmd(self.src_home, self.work / "config", "status", "--json")]

    def pull(self, fresh: Path) -> list[Command]:
        config = fresh / ".config" / "claude-sync"
        return [
            self._cmd(fresh, config, "init", *self._remote()),
            # the user's own machine, restoring all (as restic does): settings keys that run
            # code are taken, not held back for `resolve`
            self._cmd(fresh, config, "types", "--enable", "settings-commands"),
            # everything, like the peers (a plain pull fetches only recent sessions)
            self._cmd(fresh, config, "pull", "--all", "--json"),
        ]


class Restic(Tool):
    name = "restic"

    def _env(self, home: Path) -> dict[str, str]:
        if self.place.kind == "folder":
            repo = str(self.place.path)
        else:
            repo = f"s3:{self.place.endpoint}/{self.place.bucket}"
        extra = {"RESTIC_REPOSITORY": repo, "RESTIC_PASSWORD": PASSPHRASE}
        return base_env(home, {**extra, **(self.place.creds or {})})

    def _cmd(self, home: Path, *args: str) -> Command:
        return Command(["restic", "-q", *args], self._env(home), home)

    def setup(self) -> list[Command]:
        return [self._cmd(self.work, "init", "--repository-version", "2")]

    def push(self) -> list[Command]:
        return [self._cmd(self.work, "backup", "--compression", "auto", str(self.claude))]

    def status(self) -> list[Command]:
        return [self._cmd(self.work, "backup", "--dry-run", str(self.claude))]

    def pull(self, fresh: Path) -> list[Command]:
        # A fresh machine: its own HOME, so an empty ~/.cache/restic.
        return [self._cmd(fresh, "restore", "latest", "--target", str(fresh / "restored"))]


def rclone_obscure(password: str) -> str:
    out = subprocess.run(["rclone", "obscure", password], capture_output=True, text=True)
    out.check_returncode()
    return out.stdout.strip()


class Rclone(Tool):
    name = "rclone"

    def __init__(self, src_home: Path, place: Place, work: Path) -> None:
        super().__init__(src_home, place, work)
        self.obscured = rclone_obscure(PASSPHRASE)

    def _env(self, home: Path) -> dict[str, str]:
        extra = {
            "RCLONE_CONFIG": str(self.work / "rclone.conf"),  # need not exist
            "RCLONE_CONFIG_BENCHCRYPT_TYPE": "crypt",
            "RCLONE_CONFIG_BENCHCRYPT_PASSWORD": self.obscured,
        }
        if self.place.kind == "folder":
            extra["RCLONE_CONFIG_BENCHCRYPT_REMOTE"] = str(self.place.path)
        else:
            creds = self.place.creds or {}
            extra |= {
                "RCLONE_CONFIG_BENCHCRYPT_REMOTE": f"benchs3:{self.place.bucket}",
                "RCLONE_CONFIG_BENCHS3_TYPE": "s3",
                "RCLONE_CONFIG_BENCHS3_PROVIDER": "Other",
                "RCLONE_CONFIG_BENCHS3_ENDPOINT": self.place.endpoint,
                "RCLONE_CONFIG_BENCHS3_REGION": "us-east-1",
                "RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID": creds.get("AWS_ACCESS_KEY_ID", ""),
                "RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY": creds.get("AWS_SECRET_ACCESS_KEY", ""),
            }
        return base_env(home, extra)

    def _cmd(self, home: Path, *args: str) -> Command:
        return Command(["rclone", *args], self._env(home), home)

    def setup(self) -> list[Command]:
        return []

    def push(self) -> list[Command]:
        return [self._cmd(self.work, "sync", str(self.claude), "benchcrypt:")]

    def status(self) -> list[Command]:
        return [self._cmd(self.work, "sync", "--dry-run", str(self.claude), "benchcrypt:")]

    def pull(self, fresh: Path) -> list[Command]:
        return [self._cmd(fresh, "copy", "benchcrypt:", str(fresh / "restored"))]


TOOLS: dict[str, type[Tool]] = {t.name: t for t in (ClaudeSync, Restic, Rclone)}
