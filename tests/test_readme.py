"""The README is the manual: every command in its ```sh blocks runs here, as written.

Each `## Section` of the README that shows `claude-sync` commands has an exercise below that
sets the scene (machines, files, conflicts) in a sandboxed HOME and runs the section's
commands through bash, with a `claude-sync` on PATH, exactly as printed. Only these stand-ins
are substituted (whole words only), because the README names places that do not exist here:

    /mnt/shared/claude-sync  -> a folder remote in the sandbox
    /tmp/claude-as-of-12     -> a folder in the sandbox (tests must not write to /tmp itself)
    4b6f…-session-id         -> the id of a session in the sandbox
    ID                       -> the id of a key just added

A command added to the README without an exercise, or an exercise for a command the README no
longer shows, fails the test. The quick-start commands install software and run the whole
suite; they are checked for presence (and CI for running the test command), not run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import DAY0, Machine, transcript
from processes import stop, wait_for_line

from claude_sync.pathmap import encode

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
QUICK_START = (
    "bash scripts/install.sh",
    "bash scripts/test.sh",
)
NEW_PASSPHRASE = "ann desktop passphrase"
SESSION = "4b6f1c2e-0d7a-4e55-9a0c-5f1e2d3c4b5a"
_BLOCK = re.compile(r"^## (?P<section>.+?)$|^```sh\n(?P<body>.*?)^```$", re.M | re.S)


def readme_commands() -> dict[str, list[str]]:
    """Section title -> the commands of its ```sh blocks (comments cut off), in order."""
    sections: dict[str, list[str]] = {}
    section = ""
    for m in _BLOCK.finditer(README.read_text()):
        if m["section"]:
            section = m["section"]
            continue
        for line in m["body"].splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                sections.setdefault(section, []).append(command)
    return sections


@dataclass
class Sandbox:
    """A HOME with a folder remote next to it, and the README's commands run through bash."""

    root: Path
    section: list[str]
    values: dict[str, str] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.me = self.machine("home")
        self.shared = self.root / "shared"
        self.shared.mkdir()
        self.bin = self.root / "bin"
        self.bin.mkdir()
        shim = self.bin / "claude-sync"
        shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m claude_sync "$@"\n')
        shim.chmod(0o755)
        self.values |= {
            "/mnt/shared/claude-sync": str(self.shared),
            "/tmp/claude-as-of-12": str(self.me.home / "claude-as-of-12"),
        }

    def machine(self, name: str) -> Machine:
        home = self.root / name
        home.mkdir()
        return Machine(home)

    def other(self) -> Machine:
        """A second machine on the same remote, set up outside the README's commands."""
        other = self.machine("other")
        other.run("init", str(self.shared))
        return other

    def as_written(self, command: str) -> str:
        for placeholder, value in self.values.items():
            command = re.sub(rf"(?<!\S){re.escape(placeholder)}(?!\S)", value, command)
        return command

    def readme(
        self, command: str, expect: int = 0, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        assert command in self.section, f"the README no longer shows `{command}` here"
        self.ran.append(command)
        environ = self.me.environ() | {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}
        proc = subprocess.run(
            ["bash", "-c", self.as_written(command)],
            env=environ | env,
            cwd=cwd or self.me.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == expect, f"`{command}`\n{proc.stdout}\n{proc.stderr}"
        return proc


# -- one exercise per README section ----------------------------------------------------------


def every_day(sb: Sandbox) -> None:
    sb.me.run("init", str(sb.shared))
    sb.me.write("agents/reviewer.md", "be kind\n")
    assert "pushed 1 file " in sb.readme("claude-sync push").stdout
    other = sb.other()
    other.write("commands/deploy.md", "ship it\n")
    other.run("push")
    assert "pulled 1 file " in sb.readme("claude-sync pull").stdout
    sb.me.write("agents/reviewer.md", "be kind, twice\n")
    assert "pushed 1 file " in sb.readme("claude-sync sync").stdout
    assert "Everything is up to date." in sb.readme("claude-sync status").stdout


def second_machine(sb: Sandbox) -> None:
    first = sb.machine("first")
    first.write("agents/reviewer.md", "be kind\n")
    first.run("init", str(sb.shared))
    first.run("push")
    sb.me.write("commands/deploy.md", "ship it\n")
    joined = sb.readme("claude-sync init /mnt/shared/claude-sync --sync").stdout
    assert "Joined" in joined and "pulled 1 file " in joined and "pushed 1 file " in joined
    assert (sb.me.claude / "agents/reviewer.md").read_text() == "be kind\n"
    first.run("pull")
    assert (first.claude / "commands/deploy.md").read_text() == "ship it\n"


def selective_sync(sb: Sandbox) -> None:
    sb.me.run("init", str(sb.shared))
    assert "sessions" in sb.readme("claude-sync types").stdout
    sb.readme("claude-sync types --enable todos --disable history")
    types = json.loads((sb.me.config_dir / "config.json").read_text())["types"]
    assert types == {"todos": True, "history": False}
    out = sb.readme("claude-sync types --exclude 'projects/*/tool-results/*'").stdout
    assert "exclude: projects/*/tool-results/*" in out
    assert "exclude:" not in sb.readme("claude-sync types --clear-globs").stdout


def resume_anywhere(sb: Sandbox) -> None:
    sb.me.run("init", str(sb.shared))
    assert f"{sb.me.home}/work -> work" in sb.readme("claude-sync map ~/work work").stdout
    assert f"{sb.me.home}/src -> work" in sb.readme("claude-sync map ~/src work").stdout
    assert "projects/@work-api" in sb.readme("claude-sync where ~/src/api").stdout
    every_conversation(sb)


def every_conversation(sb: Sandbox) -> None:
    """The catalog and `resume`, with a session pushed from a Mac whose home differs."""
    mac = Machine(sb.root / "mac" / "Users" / "ann")
    app = sb.me.home / "code" / "app"
    (sb.me.home / "scratch").mkdir()
    app.mkdir(parents=True)
    session = "3f2a9c1e-0d7a-4e55-9a0c-5f1e2d3c4b5a"
    prompt = {"type": "user", "sessionId": session, "cwd": str(mac.home / "code" / "app")}
    lines = [
        prompt | {"timestamp": f"{DAY0}T10:00:00Z", "message": {"content": "fix the login bug"}},
        prompt | {"timestamp": f"{DAY0}T10:01:00Z", "message": {"content": "KeyError: 'user'"}},
    ]
    folder = encode(str(mac.home / "code" / "app"))
    mac.write(f"projects/{folder}/{session}.jsonl", "".join(json.dumps(r) + "\n" for r in lines))
    mac.run("init", str(sb.shared), "--device", "ann-mac")
    mac.run("push")
    assert session in sb.readme("claude-sync sessions").stdout
    assert session in sb.readme("claude-sync sessions --here --limit 10", cwd=app).stdout
    assert "fix the login bug" in sb.readme("claude-sync sessions --grep login").stdout
    assert session in sb.readme("claude-sync sessions --grep 'KeyError' --content").stdout
    listed = json.loads(sb.readme("claude-sync sessions --device ann-mac --json").stdout)
    assert listed[0]["id"] == session and listed[0]["project"] == str(app)
    # A stand-in for Claude Code that says where it was started and with what.
    fake = sb.bin / "claude"
    fake.write_text('#!/bin/sh\necho "$(pwd) $*"\n')
    fake.chmod(0o755)
    assert sb.readme("claude-sync resume 3f2a").stdout.strip() == f"{app} --resume {session}"
    printed = sb.readme("claude-sync resume 3f2a --print").stdout.strip()
    assert printed == f"cd {app} && claude --resume {session}"
    elsewhere = sb.readme("claude-sync resume 3f2a --cwd ~/scratch").stdout
    assert elsewhere.strip() == f"{sb.me.home / 'scratch'} --resume {session}"
    assert "90d" in sb.readme("claude-sync config sessions.window 90d").stdout


def automatic_sync(sb: Sandbox) -> None:
    sb.me.run("init", str(sb.shared))
    settings = sb.me.claude / "settings.json"
    sb.readme("claude-sync install")
    assert "session-start" in settings.read_text()
    app = sb.me.home / "code" / "app"
    app.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(app)], check=True)
    sb.readme("claude-sync install --project .", cwd=app)
    assert "session-end" in (app / ".claude" / "settings.json").read_text()
    sb.readme("claude-sync install --uninstall")
    assert "session-start" not in settings.read_text()
    sb.readme("claude-sync install --git-hooks ~/code/app")
    assert "claude-sync" in (app / ".git" / "hooks" / "pre-commit").read_text()
    sb.readme("claude-sync install")
    out = sb.readme("claude-sync install --plugin").stdout
    assert "claude plugin install claude-sync@claude-sync" in out
    assert "session-start" not in settings.read_text()
    watch_until_ctrl_c(sb)


def watch_until_ctrl_c(sb: Sandbox) -> None:
    """`watch` runs in the foreground: start it, wait for its banner, stop it as Ctrl-C does."""
    command = "claude-sync watch"
    assert command in sb.section
    sb.ran.append(command)
    environ = sb.me.environ() | {"PATH": f"{sb.bin}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        env=environ,
        cwd=sb.me.home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(proc, "Watching")  # printed once Ctrl-C stops it cleanly
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        stop(proc)  # a hung watcher must not outlive the test
    assert proc.returncode == 0, err
    assert "Stopped." in out


def conflicts(sb: Sandbox) -> None:
    sb.me.write("agents/reviewer.md", "line 1\n")
    sb.me.run("init", str(sb.shared))
    sb.me.run("push")
    other = sb.other()
    other.run("pull")

    def clash(theirs: str, mine: str) -> None:
        other.write("agents/reviewer.md", theirs)
        other.run("push")
        sb.me.write("agents/reviewer.md", mine)

    clash("theirs 1\n", "mine 1\n")
    assert sb.me.run("pull", check=False).returncode == 3
    assert "agents/reviewer.md" in sb.readme("claude-sync conflicts").stdout
    sb.readme("claude-sync resolve agents/reviewer.md --take local")
    assert (sb.me.claude / "agents/reviewer.md").read_text() == "mine 1\n"
    other.run("pull")
    clash("theirs 2\n", "mine 2\n")
    sb.readme("claude-sync sync --strategy remote")
    assert (sb.me.claude / "agents/reviewer.md").read_text() == "theirs 2\n"
    other.write("commands/deploy.md", "ship it\n")
    other.run("push")
    assert "commands/deploy.md" in sb.readme("claude-sync pull --verbose").stdout


def history(sb: Sandbox) -> None:
    sb.me.run("init", str(sb.shared))
    for i in range(1, 14):  # snapshots 1..13: the README restores number 12
        sb.me.write("agents/reviewer.md", f"version {i}\n")
        sb.me.run("push")
    assert "13" in sb.readme("claude-sync log").stdout
    assert "(this machine)" in sb.readme("claude-sync devices").stdout
    sb.readme("claude-sync restore agents/reviewer.md --snapshot 12")
    assert (sb.me.claude / "agents/reviewer.md").read_text() == "version 12\n"
    sb.readme("claude-sync restore --snapshot 12 --target /tmp/claude-as-of-12")
    target = sb.me.home / "claude-as-of-12" / "agents" / "reviewer.md"
    assert target.read_text() == "version 12\n"
    assert "No problems found in the indexes" in sb.readme("claude-sync verify").stdout
    assert "No problems found." in sb.readme("claude-sync verify --read-data").stdout
    assert "uploaded 0 missing or damaged blobs" in sb.readme("claude-sync repair").stdout
    assert "already uses format" in sb.readme("claude-sync upgrade").stdout
    assert "✗" not in sb.readme("claude-sync doctor").stdout
    pruned = sb.readme("claude-sync prune --keep-last 10 --keep-within 30d").stdout
    assert "Removed 0 snapshots" in pruned  # all 13 are younger than 30 days
    sb.me.run("prune", "--keep-last", "10", "--grace", "0")
    assert len(sb.me.json("log")["snapshots"]) == 10


def keys(sb: Sandbox) -> None:
    sb.me.run("init", str(sb.shared))
    assert sb.readme("claude-sync key export").stdout.startswith("csr2-")
    new = {"CLAUDE_SYNC_NEW_PASSPHRASE": NEW_PASSPHRASE}
    sb.readme("claude-sync key add --label ann-desktop", **new)
    listing = sb.readme("claude-sync key list").stdout
    key_id = next(line.split()[0] for line in listing.splitlines() if "ann-desktop" in line)
    sb.readme("claude-sync key passwd", **new)
    sb.values["ID"] = key_id
    assert f"Removed key {key_id}" in sb.readme("claude-sync key remove ID").stdout
    joiner = sb.machine("joiner")
    joiner.run("init", str(sb.shared), passphrase=NEW_PASSPHRASE)
    assert joiner.run("init", str(sb.shared), "--force", check=False).returncode != 0


def sharing(sb: Sandbox) -> None:
    folder = "-" + str(sb.me.home / "code" / "app").strip("/").replace("/", "-")
    session = sb.me.write(f"projects/{folder}/{SESSION}.jsonl", transcript(SESSION, 3))
    original = session.read_bytes()
    sb.values["4b6f…-session-id"] = SESSION
    sb.readme("claude-sync export 4b6f…-session-id session.tar.gz")
    assert (sb.me.home / "session.tar.gz").exists()
    session.unlink()
    sb.readme("claude-sync import session.tar.gz")
    assert session.read_bytes() == original


def plugins_and_mcp(sb: Sandbox) -> None:
    sb.me.run("init", str(sb.shared))
    sb.me.write(
        "plugins/installed_plugins.json",
        json.dumps({"version": 2, "plugins": {"x@y": [{"scope": "user", "installPath": "/"}]}}),
    )
    assert "Every plugin" in sb.readme("claude-sync plugins").stdout
    assert "Every plugin" in sb.readme("claude-sync plugins --install").stdout
    (sb.me.home / ".claude.json").write_text('{"mcpServers": {"s": {"command": "x"}}}')
    sb.readme("claude-sync types --enable mcp")
    assert sb.me.json("push")["pushed"] == [
        "claude-sync/mcp-servers.json",
        "plugins/installed_plugins.json",
    ]


EXERCISES: dict[str, Callable[[Sandbox], None]] = {
    "Every day": every_day,
    "A second machine": second_machine,
    "Selective sync": selective_sync,
    "Resume anywhere": resume_anywhere,
    "Automatic sync": automatic_sync,
    "Plugins and MCP servers": plugins_and_mcp,
    "Conflicts and deletions": conflicts,
    "History, restore and checks": history,
    "Keys": keys,
    "Sharing one session": sharing,
}


@pytest.mark.parametrize("title", list(EXERCISES))
def test_readme_section_runs_as_written(title: str, tmp_path: Path) -> None:
    commands = readme_commands().get(title)
    assert commands, f"the README has no section {title!r} with commands any more"
    sb = Sandbox(tmp_path, commands)
    EXERCISES[title](sb)
    missed = [c for c in commands if c not in sb.ran]
    assert not missed, f"README commands in {title!r} that no test runs: {missed}"


def test_every_readme_command_is_exercised() -> None:
    for title, commands in readme_commands().items():
        if title == "Quick start":
            assert tuple(commands) == QUICK_START, commands
            continue
        assert title in EXERCISES, f"README section {title!r} shows commands nobody runs"
        others = [c for c in commands if not c.startswith("claude-sync ")]
        assert not others, f"commands in {title!r} that are not claude-sync: {others}"


def test_quick_start_commands_appear_once_and_ci_runs_the_tests() -> None:
    lines = [c for commands in readme_commands().values() for c in commands]
    for command in QUICK_START:
        assert lines.count(command) == 1, command
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


@pytest.fixture(scope="module")
def installer_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtualenv with pip and the dependencies, shared by the installer runs below so
    that each `scripts/install.sh` only reinstalls the project (offline, in seconds)."""
    venv = tmp_path_factory.mktemp("installer") / "venv"
    uv = [sys.executable, "-m", "uv"]
    subprocess.run([*uv, "venv", "-q", "--seed", str(venv)], check=True)
    subprocess.run(
        [*uv, "pip", "install", "-q", "--python", str(venv / "bin/python"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return venv


def test_installer_sets_up_the_first_and_the_second_machine(tmp_path: Path, installer_venv):
    """`bash scripts/install.sh` on the first machine, `bash scripts/install.sh REMOTE` on the
    next, with no terminal: each ends synced, and a second run only syncs."""

    def install(m: Machine, *args: str, expect: int = 0) -> str:
        data = m.home / ".local/share/claude-sync"
        data.mkdir(parents=True, exist_ok=True)
        if not (data / "venv").exists():
            (data / "venv").symlink_to(installer_venv)
        proc = subprocess.run(
            ["bash", str(ROOT / "scripts/install.sh"), *args],
            env=m.environ(),
            cwd=m.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == expect, f"{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    first, second = Machine(tmp_path / "first"), Machine(tmp_path / "second")
    first.home.mkdir()
    second.home.mkdir()
    first.write("agents/reviewer.md", "be kind\n")
    out = install(first)
    assert "Created a new encrypted repository" in out and "pushed 1 file " in out
    assert "Next:" not in out
    repo = first.home / ".local/share/claude-sync/repository"
    second.write("commands/deploy.md", "ship it\n")
    out = install(second, str(repo))
    assert "Joined" in out and "pulled 1 file " in out and "pushed 1 file " in out
    assert (second.claude / "agents/reviewer.md").read_text() == "be kind\n"
    assert not (second.home / ".local/share/claude-sync/repository").exists()
    out = install(second)
    assert "already set up: syncing" in out and "Everything is up to date." in out
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = install(second, str(elsewhere), expect=2)
    assert "--force" in out and not list(elsewhere.iterdir())
