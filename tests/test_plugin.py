"""claude-sync as a Claude Code plugin, judged by the real Claude Code CLI (offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from claude_cli import run_claude
from conftest import Machine

REPO = Path(__file__).resolve().parent.parent
RUN_HOOK = REPO / "plugin" / "hooks" / "run-hook.sh"


def claude(m: Machine, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_claude(*args, home=m.home, cwd=m.home, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def install_plugin(m: Machine) -> None:
    claude(m, "plugin", "marketplace", "add", str(REPO))
    claude(m, "plugin", "install", "claude-sync@claude-sync")


def test_repository_is_a_valid_marketplace_and_plugin(tmp_path):
    for target in (REPO, REPO / "plugin"):
        proc = run_claude("plugin", "validate", "--strict", str(target), home=tmp_path, cwd=REPO)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Validation passed" in proc.stdout


def test_plugin_installs_with_both_hooks_and_commands(make_machine):
    m = make_machine("m")
    install_plugin(m)
    details = claude(m, "plugin", "details", "claude-sync").stdout
    assert "SessionStart, SessionEnd" in details
    for command in ("sync", "sync-status", "sessions"):
        assert command in details
    hooks = json.loads((REPO / "plugin/hooks/hooks.json").read_text())["hooks"]
    for event, verb in (("SessionStart", "session-start"), ("SessionEnd", "session-end")):
        assert hooks[event][0]["hooks"][0]["command"].endswith(f'run-hook.sh" {verb}')


def test_settings_hooks_and_plugin_never_both(make_machine, repo_dir):
    m = make_machine("m")
    m.run("init", str(repo_dir))
    m.run("install")
    install_plugin(m)
    assert m.run("doctor", check=False).returncode == 1  # both: doctor says which to drop
    refused = m.run("install", check=False)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: the claude-sync plugin (claude-sync@claude-sync)")
    out = m.run("install", "--plugin").stdout
    assert "Hooks removed" in out and "plugin is installed (claude-sync@claude-sync)" in out
    settings = json.loads((m.claude / "settings.json").read_text())
    assert "hooks" not in settings
    assert settings["enabledPlugins"] == {"claude-sync@claude-sync": True}
    assert "the claude-sync plugin (claude-sync@claude-sync) runs them" in m.run("doctor").stdout
    # Disabled, the plugin no longer counts: settings.json hooks are allowed again.
    claude(m, "plugin", "disable", "claude-sync@claude-sync")
    m.run("install")


def run_hook(m: Machine, event: str, path: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The plugin's hook command as Claude Code runs it: sh, the event JSON on stdin."""
    env = m.environ() | {"PATH": path, "CLAUDE_PLUGIN_DATA": str(data_dir)}
    payload = json.dumps({"hook_event_name": event, "session_id": "x", "cwd": str(m.home)})
    return subprocess.run(
        ["sh", str(RUN_HOOK), event],
        input=payload,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=m.home,
    )


def hint(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["systemMessage"] if proc.stdout.strip() else ""


def test_plugin_hook_without_claude_sync_says_once_how_to_set_up(make_machine, tmp_path):
    m = make_machine("m")
    data = tmp_path / "plugin-data"
    assert "`claude-sync` is on PATH" in hint(run_hook(m, "session-start", "/usr/bin:/bin", data))
    assert hint(run_hook(m, "session-start", "/usr/bin:/bin", data)) == ""
    assert hint(run_hook(m, "session-end", "/usr/bin:/bin", data)) == ""


def claude_sync_path(tmp_path: Path) -> str:
    """A PATH with a `claude-sync` of this checkout on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "claude-sync"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m claude_sync "$@"\n')
    shim.chmod(0o755)
    return f"{bin_dir}{os.pathsep}/usr/bin:/bin"


def test_plugin_hook_not_set_up_says_once_then_syncs(machines, repo_dir, tmp_path):
    a, b = machines
    path, data = claude_sync_path(tmp_path), tmp_path / "plugin-data"
    assert "not set up, so" in hint(run_hook(b, "session-start", path, data))
    assert hint(run_hook(b, "session-start", path, data)) == ""
    a.write("CLAUDE.md", "from a\n")
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    assert hint(run_hook(b, "session-start", path, data)) == ""
    assert (b.claude / "CLAUDE.md").read_text() == "from a\n"
    # With settings.json hooks as well, the plugin's hook leaves the work to them.
    a.write("CLAUDE.md", "changed on a\n")
    a.run("push")
    b.run("install")
    assert hint(run_hook(b, "session-start", path, data)) == ""
    assert (b.claude / "CLAUDE.md").read_text() == "from a\n"
