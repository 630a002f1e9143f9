"""The real Claude Code CLI (npm @anthropic-ai/claude-code), installed by scripts/test.sh into
.cache/claude-cli, run offline: tests use it where it, not our reading of its files, judges."""

from __future__ import annotations

import shutil
import subprocess
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
    *args: str, home: Path, cwd: Path, timeout: float = 30, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`claude ARGS` offline, as the user whose HOME is home, in cwd. A command that waits on
    the network is cut at timeout (returncode -9 or 124 then, output so far kept)."""
    environ = {"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "dumb"}
    environ.update(env or {})
    cmd = [*offline_prefix(), "timeout", "-s", "KILL", str(timeout), str(claude_bin()), *args]
    return subprocess.run(
        cmd, cwd=cwd, env=environ, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
