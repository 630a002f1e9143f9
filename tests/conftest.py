"""Shared fixtures: "machines" are separate HOME directories running the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import settings as hypothesis_settings

# Property tests: scripts/test.sh (what CI runs) selects "ci", where every run draws the
# same examples (a failure reproduces by running again, and a pass is not luck of the day);
# elsewhere each run explores new ones. Both print the reproduction blob of a failure.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("dev", print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def fresh_type_cache() -> Iterator[None]:
    """resources' folder check is memoised: a result cached by an earlier in-process test (or,
    under mutmut, by the unmutated run its workers fork from) would hide what the code decides
    now."""
    from claude_sync import resources

    resources._valid_folder.cache_clear()
    yield


# A suite started in the background by a shell (`… &`) inherits an ignored SIGINT, and so
# would every CLI it runs: the tests of what Ctrl-C does would see nothing happen. Python
# passes a handler on to a child as the default action, which is what a terminal gives.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

PASSPHRASE = "correct horse battery staple"
#: the day test transcripts were recorded: yesterday, so that pull's default window (sessions
#: updated within Claude Code's cleanupPeriodDays) always fetches them
DAY0 = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
# Variables that would let one test machine see another's settings.
_SCRUB = (
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_SYNC_CONFIG_DIR",
    "CLAUDE_SYNC_PASSPHRASE",
    "CLAUDE_SYNC_PASSPHRASE_FILE",
)


@dataclass
class Machine:
    """One simulated machine: its own HOME, running `python -m claude_sync` as a subprocess."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def claude(self) -> Path:
        return self.home / ".claude"

    @property
    def config_dir(self) -> Path:
        return self.home / ".config" / "claude-sync"

    def environ(self, passphrase: str | None = PASSPHRASE) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env["HOME"] = str(self.home)
        # Tests prune with --grace 0 to see a mark swept in one run (tests/test_prune_safety.py
        # checks the real minimum).
        env["CLAUDE_SYNC_MIN_GRACE"] = "0"
        env.update(self.env)
        if passphrase is not None:
            env["CLAUDE_SYNC_PASSPHRASE"] = passphrase
        return env

    def run(
        self,
        *args: str,
        check: bool = True,
        passphrase: str | None = PASSPHRASE,
        timeout: float = 120,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "claude_sync", *args],
            env=self.environ(passphrase),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"claude-sync {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def on_terminal(self, *args: str) -> Any:
        """The real CLI on a pseudo-terminal (a pexpect child), as a user at a terminal
        runs it."""
        import pexpect

        return pexpect.spawn(
            sys.executable,
            ["-m", "claude_sync", *args],
            env=self.environ() | {"TERM": "dumb", "COLUMNS": "200"},
            cwd=str(self.home),
            encoding="utf-8",
            timeout=60,
        )

    def answer(self, question: str, reply: str, *args: str) -> tuple[str, int]:
        """Run the CLI on a terminal until it asks question (a pattern), reply; returns what
        it printed before the question, and its exit status."""
        import pexpect

        child = self.on_terminal(*args)
        child.expect(question)
        shown = child.before
        child.sendline(reply)
        child.expect(pexpect.EOF)
        child.close()
        return shown, child.exitstatus

    def says_before_pulling(self, conflicts: list[str]) -> None:
        """`status` and `pull --dry-run` name the conflicts a pull would leave (exit 3) and
        write nothing."""
        before = snapshot_tree(self.claude)
        assert self.json("status", expect=3)["conflicts"] == conflicts
        assert self.json("pull", "--dry-run", expect=3)["conflicts"] == conflicts
        assert snapshot_tree(self.claude) == before

    def join_trusting(self, repo_dir: Path) -> None:
        """Join the repository and take what another machine pushed, code included (the
        `settings-commands` opt-in for that first pull only)."""
        self.run("init", str(repo_dir))
        self.run("types", "--enable", "settings-commands")
        self.run("pull")
        self.run("types", "--disable", "settings-commands")

    def run_after(
        self, code: str, *args: str, prefix: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        """The real CLI with a few lines of set-up code before it (a patch, a check at
        exit), or behind a command prefix (another user)."""
        program = f"{code}\nimport sys\nsys.argv = ['claude-sync', *sys.argv[1:]]\n"
        program += "from claude_sync.cli import main\nmain()\n"
        return subprocess.run(
            [*prefix, sys.executable, "-c", program, *args],
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.home,
        )

    def start(self, *args: str, **popen: Any) -> subprocess.Popen[str]:
        """claude-sync running in the background (to be stopped, killed or raced); popen:
        Popen's arguments, over these."""
        options: dict[str, Any] = {
            "env": self.environ(),
            "cwd": self.home,
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.PIPE,
            "stderr": subprocess.PIPE,
            "text": True,
        }
        return subprocess.Popen([sys.executable, "-m", "claude_sync", *args], **options | popen)

    def spawn(
        self,
        *args: str,
        passphrase: str | None = PASSPHRASE,
        term: str = "xterm-256color",
        env: dict[str, str] | None = None,
    ) -> Any:
        """claude-sync on a pseudo-terminal (pexpect), as a person runs it; env: more
        variables (an EDITOR, say)."""
        import pexpect

        environ = self.environ(passphrase) | {"TERM": term, "COLUMNS": "200"} | (env or {})
        return pexpect.spawn(
            sys.executable,
            ["-m", "claude_sync", *args],
            env=environ,
            cwd=str(self.home),
            encoding="utf-8",
            timeout=60,
        )

    def json(self, *args: str, expect: int = 0) -> dict[str, object]:
        proc = self.run(*args, "--json", check=False)
        assert proc.returncode == expect, proc.stderr
        result: dict[str, object] = json.loads(proc.stdout)
        return result

    def write(self, rel: str, data: str | bytes, mtime: float | None = None) -> Path:
        path = self.claude / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def append(self, rel: str, data: str) -> None:
        with (self.claude / rel).open("a") as fh:
            fh.write(data)


@pytest.fixture
def make_machine(tmp_path: Path) -> Callable[[str], Machine]:
    def make(name: str) -> Machine:
        home = tmp_path / name
        home.mkdir()
        return Machine(home)

    return make


class Outcome(NamedTuple):
    """A command run in-process: unpacks as (exit_code, stdout, stderr)."""

    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli_inprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """claude-sync run by Click's test runner in this process, for tests of what a command
    prints and its exit code, where starting Python anew only costs time: help, argument and
    config errors, JSON shapes. Each call sees what Machine.run gives its subprocess (the
    machine's environment, HOME as working folder, a standard input that is no terminal)
    and a passphrase and consoles taken anew, as a new process would.

    Call it as `cli_inprocess(*args, machine=m, passphrase=..., stdin=...)`; without a
    machine, it runs on a fresh HOME of its own. Tests of what only a real process shows
    (signals, terminals, hooks, child processes, the environment it hands on) use Machine.run.
    """
    from click.testing import CliRunner

    from claude_sync import passphrase as passphrases
    from claude_sync.cli import main, output

    def run(
        *args: str,
        machine: Machine | None = None,
        passphrase: str | None = PASSPHRASE,
        stdin: str = "",
    ) -> Outcome:
        if machine is None:
            home = tmp_path / "in-process"
            home.mkdir(exist_ok=True)
            machine = Machine(home)
        # A subprocess's output is a pipe: Click and Rich wrap at 80 columns unless told.
        env = {"COLUMNS": "80"} | machine.environ(passphrase)
        with monkeypatch.context() as mp:
            for var in set(os.environ) - set(env):
                mp.delenv(var)
            for var, value in env.items():
                mp.setenv(var, value)
            mp.chdir(machine.home)
            mp.setattr(passphrases, "_taken", {})
            mp.setattr(output.out, "_console", None)
            mp.setattr(output.err, "_console", None)
            result = CliRunner().invoke(
                main,
                args,
                input=stdin,
                prog_name="python -m claude_sync",
                catch_exceptions=False,
                # The runner forces help to 80 columns; a process wraps it as Click's
                # HelpFormatter does, to the terminal's columns (at most 80) less 2.
                terminal_width=max(min(int(env["COLUMNS"]), 80) - 2, 50),
            )
        return Outcome(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """An empty folder the user made for a new repository (init never makes a typo one)."""
    path = tmp_path / "repository"
    path.mkdir()
    return path


@pytest.fixture
def machines(make_machine: Callable[[str], Machine]) -> Iterator[tuple[Machine, Machine]]:
    yield make_machine("a"), make_machine("b")


def transcript(session: str, n: int, start: int = 0, cwd: str = "/home/ann/code/app") -> str:
    """n JSONL records of a realistic-looking Claude Code session."""
    lines = []
    for i in range(start, start + n):
        lines.append(
            json.dumps(
                {
                    "uuid": f"{session}-{i:05d}",
                    "parentUuid": f"{session}-{i - 1:05d}" if i else None,
                    "sessionId": session,
                    "timestamp": f"{DAY0}T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
                    "cwd": cwd,
                    "type": "user" if i % 2 == 0 else "assistant",
                    "message": {"role": "user", "content": f"message {i} " + "lorem ipsum " * 20},
                }
            )
        )
    return "".join(line + "\n" for line in lines)


def snapshot_tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root with its bytes and mtime (ns), for byte-exact comparisons."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            files[path.relative_to(root).as_posix()] = (path.read_bytes(), path.stat().st_mtime_ns)
    return files
