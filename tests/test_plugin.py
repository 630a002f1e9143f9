"""claude-sync as a Claude Code plugin, judged by the real Claude Code CLI (offline)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from claude_cli import claude_bin, offline_prefix, run_claude
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


#: Claude Code 2.1.332's validator calls a third party's plugin named "claude-…" reserved (it
#: installs and runs all the same: the tests below). Renaming the plugin takes a way to move
#: the machines that enabled `claude-sync@claude-sync`, whose hooks would stop unsaid.
RESERVED_NAME = re.compile(r'(plugins\[0\]\.)?name: Plugin name "claude-sync" is reserved')


def test_repository_is_a_valid_marketplace_and_plugin(tmp_path):
    for target in (REPO, REPO / "plugin"):
        proc = run_claude("plugin", "validate", "--strict", str(target), home=tmp_path, cwd=REPO)
        said = proc.stdout + proc.stderr
        if proc.returncode and RESERVED_NAME.search(said):
            assert "Found 1 error" in said, said  # that one alone
            continue
        assert proc.returncode == 0, said
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


def copy_marketplace(m: Machine) -> Path:
    """This repository's marketplace, checked out under the machine's home."""
    target = m.home / "code" / "claude-sync"
    for part in (".claude-plugin", "plugin"):
        shutil.copytree(REPO / part, target / part)
    return target


def offline_claude_path(tmp_path: Path) -> str:
    """A PATH whose `claude` is the real CLI, run offline like run_claude does."""
    bin_dir = tmp_path / "claude-bin"
    bin_dir.mkdir()
    shim = bin_dir / "claude"
    prefix = " ".join(shlex.quote(a) for a in offline_prefix())
    shim.write_text(f'#!/bin/sh\nexec {prefix} {shlex.quote(str(claude_bin()))} "$@"\n')
    shim.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def test_plugins_follow_the_user_with_paths_mapped(machines, repo_dir, tmp_path):
    a, b = machines
    market_a = copy_marketplace(a)
    claude(a, "plugin", "marketplace", "add", str(market_a))
    claude(a, "plugin", "install", "claude-sync@claude-sync")
    b.claude.mkdir()
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    # enabledPlugins and extraKnownMarketplaces can run code, and so can where the manifests
    # say the plugins' code is: b agrees to them.
    assert sorted(b.json("pull", expect=3)["conflicts"]) == [
        "plugins/installed_plugins.json",
        "plugins/known_marketplaces.json",
        "settings.json",
    ]
    b.run("resolve", "settings.json", "--take", "remote")
    b.run("resolve", "plugins", "--take", "remote")
    installed = json.loads((b.claude / "plugins/installed_plugins.json").read_text())
    entry = installed["plugins"]["claude-sync@claude-sync"][0]
    assert entry["installPath"].startswith(f"{b.claude}/plugins/cache/")
    known = json.loads((b.claude / "plugins/known_marketplaces.json").read_text())
    market_b = b.home / "code" / "claude-sync"
    assert known["claude-sync"]["source"]["path"] == str(market_b)

    # Neither the marketplace (a folder under the home) nor the plugin is here yet.
    add = f"claude plugin marketplace add {market_b}"
    install = "claude plugin install claude-sync@claude-sync"
    status = b.run("status").stdout
    assert f"missing marketplace claude-sync: {add}" in status
    assert f"missing plugin claude-sync@claude-sync: {install}" in status
    missing = b.json("status")["missing_plugins"]
    assert [m["command"] for m in missing] == [add, install]
    doctor = b.run("doctor", check=False)
    assert doctor.returncode == 1 and f"fix: {add}; {install}" in doctor.stdout

    # The user checks the marketplace out in the same place under the home: only the
    # plugin is left to install, which `plugins --install` does with the real CLI.
    copy_marketplace(b)
    assert [m["command"] for m in b.json("status")["missing_plugins"]] == [install]
    b.env["PATH"] = offline_claude_path(tmp_path)
    out = b.run("plugins", "--install").stdout
    assert f"✓ {install}" in out
    assert "SessionStart, SessionEnd" in claude(b, "plugin", "details", "claude-sync").stdout
    assert "Every plugin and marketplace listed is installed" in b.run("plugins").stdout
    assert "missing" not in b.run("status").stdout
    # A's own files kept A's paths.
    a_installed = json.loads((a.claude / "plugins/installed_plugins.json").read_text())
    assert a_installed["plugins"]["claude-sync@claude-sync"][0]["installPath"].startswith(
        str(a.claude)
    )


def test_plugins_install_without_claude_is_a_clear_error(make_machine):
    m = make_machine("m")
    m.write(
        "plugins/installed_plugins.json",
        json.dumps({"version": 2, "plugins": {"x@y": [{"scope": "user", "installPath": "/no"}]}}),
    )
    m.env["PATH"] = "/usr/bin:/bin"
    proc = m.run("plugins", "--install", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the `claude` command is not on PATH")


def test_real_claude_session_runs_the_plugin_hooks(machines, repo_dir, tmp_path):
    """`claude -p` offline still starts and ends a session: the plugin's SessionStart hook
    pulls, its SessionEnd hook pushes the session, through this checkout's claude-sync."""
    a, b = machines
    a.write("CLAUDE.md", "from a\n")
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    install_plugin(b)
    env = {"PATH": claude_sync_path(tmp_path), "ANTHROPIC_API_KEY": "sk-ant-test-not-a-key"}
    work = b.home / "code" / "app"
    work.mkdir(parents=True)
    log = b.config_dir / "hooks.log"

    def logged(what: str) -> bool:
        return log.exists() and what in log.read_text()

    # Offline, `claude -p` waits on the network: once the SessionStart hook has pulled, stop
    # it as a user does (SIGTERM), which ends the session and so runs the SessionEnd hooks.
    run_claude(
        "-p",
        "hi",
        home=b.home,
        cwd=work,
        env=env,
        timeout=60,
        until=lambda: logged("session-start:"),
    )
    assert (b.claude / "CLAUDE.md").read_text() == "from a\n"
    assert "session-start: pushed 0, pulled 1" in log.read_text()
    assert "session-end:" in log.read_text()
