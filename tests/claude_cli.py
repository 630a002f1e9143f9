"""The real Claude Code CLI (npm @anthropic-ai/claude-code), installed by scripts/test.sh into
.cache/claude-cli, run offline: tests use it where it, not our reading of its files, judges."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

CLAUDE_BIN = Path(__file__).resolve().parent.parent / ".cache/claude-cli/node_modules/.bin/claude"


def claude_bin() -> Path:
    """The installed CLI; its absence is a broken install (scripts/test.sh installs it)."""
    if not CLAUDE_BIN.exists():
        pytest.fail(f"the Claude Code CLI is missing at {CLAUDE_BIN}: run scripts/test.sh")
    return CLAUDE_BIN


def offline_prefix() -> list[str]:
    """A command prefix that runs a program with no network; skips where namespaces are
    unavailable (the only reason to skip)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed: cannot run the Claude CLI offline")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"network namespaces are unavailable here: {probe.stderr.decode().strip()}")
    return [unshare, "-n"]


def run_claude(
    *args: str,
    home: Path,
    cwd: Path,
    timeout: float = 30,
    env: dict[str, str] | None = None,
    until: Callable[[], bool] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`claude ARGS` offline, as the user whose HOME is home, in cwd. A command that waits on
    the network is cut at timeout (returncode -9 or 124 then, output so far kept), or once
    `until` says it got as far as it can (see resumed)."""
    environ = {"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "dumb"}
    environ.update(env or {})
    cmd = [*offline_prefix(), "timeout", "-s", "KILL", str(timeout), str(claude_bin()), *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=environ, stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        while until is not None and proc.poll() is None and not until():
            time.sleep(0.05)
        if proc.poll() is None and until is not None:
            proc.terminate()  # (timeout hands it on to Claude Code)
        returncode = proc.wait()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, returncode, out.read(), err.read())


def resumed(home: Path, session: str) -> Callable[[], bool]:
    """Whether Claude Code, run as the user whose HOME is home, has taken up that session
    (since asked first): it lists the sessions it runs in ~/.claude/sessions/<pid>.json
    (2.1.197: at once, then it waits on the network; the entry goes when it stops), and a
    session it could not find is never listed."""
    seen = False

    def taken() -> bool:
        nonlocal seen
        for listed in (home / ".claude" / "sessions").glob("*.json"):
            try:
                seen = seen or json.loads(listed.read_text()).get("sessionId") == session
            except (OSError, ValueError):
                continue  # being written, or gone
        return seen

    return taken
