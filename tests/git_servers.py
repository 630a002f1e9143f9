"""Real git servers on 127.0.0.1 for the git backend's tests: a path, `git daemon`, and sshd."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from processes import free_port, stop

SSHD = Path("/usr/sbin/sshd")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"{what} exited early: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on port {port}")


def git(*args: str | Path, cwd: Path | None = None) -> str:
    out = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, check=True, capture_output=True, text=True
    )
    return out.stdout


def bare_repo(path: Path, branch: str = "main") -> Path:
    git("init", "-q", "--bare", "-b", branch, path)
    return path


@dataclass
class GitServer:
    """Bare repositories under `root`, reachable through one transport."""

    transport: str
    root: Path
    url_base: str
    #: What a machine needs in its environment to reach the server (GIT_SSH_COMMAND).
    env: dict[str, str] = field(default_factory=dict)

    def create(self, name: str, branch: str = "main") -> str:
        """A new empty bare repository; returns its claude-sync remote."""
        bare_repo(self.root / name, branch)
        return self.remote(name)

    def remote(self, name: str) -> str:
        return f"git+{self.url_base}/{name}"

    def path(self, name: str) -> Path:
        return self.root / name


@contextmanager
def git_daemon(root: Path) -> Iterator[int]:
    port = free_port()
    # The daemon itself, not `git daemon`: the wrapper runs it as a child, which outlived
    # the wrapper when the wrapper was stopped (two left listening after a day's runs).
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    proc = subprocess.Popen(
        [
            str(Path(exec_path) / "git-daemon"),
            "--reuseaddr",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={root}",
            "--export-all",
            "--enable=receive-pack",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, proc, "git daemon")
        yield port
    finally:
        stop(proc)


@dataclass
class SshKeys:
    port: int
    key: Path
    wrong_key: Path
    user: str

    def ssh_command(self, key: Path | None = None) -> str:
        # BatchMode: never ask for a password on a terminal the test may have.
        return (
            f"ssh -i {key or self.key} -o IdentitiesOnly=yes -o BatchMode=yes "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
            "-o KexAlgorithms=curve25519-sha256"  # the post-quantum default costs 80 ms a call
        )


def _keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)], check=True
    )
    return path


@contextmanager
def sshd(tmp: Path) -> Iterator[SshKeys]:
    """An sshd on 127.0.0.1 that lets the current user in with a throwaway key."""
    tmp.mkdir(parents=True, exist_ok=True)
    host_key = _keygen(tmp / "host_key")
    key = _keygen(tmp / "client_key")
    wrong = _keygen(tmp / "wrong_key")
    (tmp / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
    port = free_port()
    cfg = tmp / "sshd_config"
    cfg.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nPidFile {tmp / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel ERROR\n"
    )
    # sshd insists on its privilege-separation directory even in debug mode.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, proc, "sshd")
        yield SshKeys(port, key, wrong, getpass.getuser())
    finally:
        stop(proc)


def sshd_missing() -> str | None:
    """Why the ssh tests cannot run here, or None."""
    if not SSHD.exists():
        return "openssh-server is not installed (apt-get install openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "the ssh client is not installed (apt-get install openssh-client)"
    if not Path("/run/sshd").is_dir() and not os.access("/run", os.W_OK):
        return "sshd needs /run/sshd, which this user cannot create"
    return None


@contextmanager
def git_server(transport: str, tmp: Path) -> Iterator[GitServer]:
    root = tmp / "git-server"
    root.mkdir()
    if transport == "file":
        yield GitServer("file", root, f"file://{root}")
    elif transport == "daemon":
        with git_daemon(root) as port:
            yield GitServer("daemon", root, f"git://127.0.0.1:{port}")
    elif transport == "ssh":
        with sshd(tmp / "sshd") as keys:
            env = {"GIT_SSH_COMMAND": keys.ssh_command()}
            yield GitServer("ssh", root, f"ssh://{keys.user}@127.0.0.1:{keys.port}{root}", env)
    else:
        raise ValueError(transport)
