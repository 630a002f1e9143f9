"""Opt-in type `mcp`: user-scope MCP servers follow the user, judged by the real Claude CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from claude_cli import run_claude
from conftest import Machine
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync import mcp
from claude_sync.errors import SyncError
from claude_sync.merge import merge_entries, merge_file


def claude(m: Machine, *args: str, env: dict[str, str] | None = None) -> str:
    proc = run_claude(*args, home=m.home, cwd=m.home, timeout=60, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def config(m: Machine) -> dict[str, object]:
    return json.loads((m.home / ".claude.json").read_text())


def without_servers(doc: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in doc.items() if k != "mcpServers"}


def set_up(m: Machine, repo: Path) -> None:
    m.run("init", str(repo))
    m.run("types", "--enable", "mcp")


def test_user_mcp_server_follows_the_user_and_nothing_else_changes(machines, repo_dir):
    a, b = machines
    claude(a, "mcp", "add", "-s", "user", "fs", "-e", "TOKEN=abc", "--", "srv", f"{a.home}/data")
    claude(b, "mcp", "add", "-s", "user", "local-only", "--", "other-server")
    a.claude.mkdir(exist_ok=True)
    b.claude.mkdir(exist_ok=True)
    a_before = (a.home / ".claude.json").read_bytes()
    b_before = config(b)
    set_up(a, repo_dir)
    pushed = a.json("push")
    assert pushed["pushed"] == ["claude-sync/mcp-servers.json"]
    assert (a.home / ".claude.json").read_bytes() == a_before

    set_up(b, repo_dir)
    b.run("sync")
    after = config(b)
    assert without_servers(after) == without_servers(b_before)
    assert after["mcpServers"]["fs"] == {
        "type": "stdio",
        "command": "srv",
        "args": [f"{b.home}/data"],  # home paths mapped like settings.json
        "env": {"TOKEN": "abc"},
    }
    assert "local-only" in after["mcpServers"]
    # The real CLI sees the server on B.
    assert "srv" in claude(b, "mcp", "get", "fs")

    # B's own server goes to A; a removal on A reaches B; A's other keys never move.
    a.run("pull")
    assert set(config(a)["mcpServers"]) == {"fs", "local-only"}
    assert without_servers(config(a)) == without_servers(json.loads(a_before))
    claude(a, "mcp", "remove", "-s", "user", "fs")
    a.run("push")
    b.run("pull")
    assert set(config(b)["mcpServers"]) == {"local-only"}
    assert without_servers(config(b)) == without_servers(b_before)


def test_one_server_changed_on_both_machines_is_a_conflict(machines, repo_dir):
    a, b = machines
    claude(a, "mcp", "add", "-s", "user", "fs", "--", "srv", "v1")
    a.claude.mkdir(exist_ok=True)
    b.claude.mkdir(exist_ok=True)
    set_up(a, repo_dir)
    a.run("push")
    set_up(b, repo_dir)
    b.run("pull")
    claude(a, "mcp", "remove", "-s", "user", "fs")
    claude(a, "mcp", "add", "-s", "user", "fs", "--", "srv", "from-a")
    claude(a, "mcp", "add", "-s", "user", "only-a", "--", "x")
    a.run("push")
    claude(b, "mcp", "remove", "-s", "user", "fs")
    claude(b, "mcp", "add", "-s", "user", "fs", "--", "srv", "from-b")
    result = b.json("sync", expect=3)
    assert result["conflicts"] == ["claude-sync/mcp-servers.json"]
    # Until settled, this machine keeps its own version of the server.
    assert config(b)["mcpServers"]["fs"]["args"] == ["from-b"]
    b.run("resolve", "claude-sync/mcp-servers.json", "--take", "remote")
    b.run("sync")
    assert config(b)["mcpServers"]["fs"]["args"] == ["from-a"]
    assert set(config(b)["mcpServers"]) == {"fs", "only-a"}


def test_claude_json_and_backups_are_never_synced_with_claude_config_dir(make_machine, repo_dir):
    m = make_machine("m")
    claude_dir = m.home / "cfg"
    env = {"CLAUDE_CONFIG_DIR": str(claude_dir)}
    claude(m, "mcp", "add", "-s", "user", "fs", "-e", "T=secret", "--", "srv", env=env)
    assert (claude_dir / ".claude.json").exists() and (claude_dir / "backups").is_dir()
    m.env.update(env)
    set_up(m, repo_dir)
    for name in ("todos", "plans", "hooks"):
        m.run("types", "--enable", name)
    pushed = m.json("push")["pushed"]
    assert pushed == ["claude-sync/mcp-servers.json"]
    assert json.loads((claude_dir / mcp.SIDECAR).read_text())["fs"]["env"] == {"T": "secret"}


def test_off_by_default(machines, repo_dir):
    a, _ = machines
    claude(a, "mcp", "add", "-s", "user", "fs", "--", "srv")
    a.claude.mkdir(exist_ok=True)
    a.run("init", str(repo_dir))
    assert a.json("push")["pushed"] == []
    assert not (a.claude / mcp.SIDECAR).exists()


def test_off_means_no_command_copies_the_servers(machines, repo_dir):
    """An in-place restore and a repair look at every local file of every type: that look
    must not mirror `mcpServers` (tokens in their env) into the Claude folder."""
    a, _ = machines
    servers = {"gh": {"command": "gh-mcp", "env": {"GITHUB_TOKEN": "ghp_SECRET"}}}
    (a.home / ".claude.json").write_text(json.dumps({"userID": "u", "mcpServers": servers}))
    a.write("agents/x.md", "v1\n")
    a.run("init", str(repo_dir))
    a.run("push")
    a.write("agents/x.md", "v2\n")
    a.run("push")
    a.run("restore", "agents/x.md", "--snapshot", "1")
    a.run("repair")
    assert (a.claude / "agents/x.md").read_text() == "v1\n"
    copies = [p for root in (a.claude, a.config_dir) for p in root.rglob("mcp-servers*")]
    assert copies == []


def test_commands_that_only_look_never_write_claude_codes_config(machines, repo_dir):
    """status and the dry runs show what a sync would do to the servers; only a sync
    writes `~/.claude.json`."""
    a, _ = machines
    live = a.home / ".claude.json"
    live.write_text(json.dumps({"userID": "u", "mcpServers": {"s": {"command": "one"}}}))
    a.claude.mkdir(exist_ok=True)
    set_up(a, repo_dir)
    a.run("push")
    # The synced copy changes (as `resolve --take remote` changes it), and so does the
    # config: both sides of the merge a sync would write.
    sidecar = a.claude / "claude-sync/mcp-servers.json"
    sidecar.write_text(json.dumps({"s": {"command": "one"}, "t": {"command": "two"}}))
    live.write_text(
        json.dumps({"userID": "u", "mcpServers": {"s": {"command": "one"}, "u": {"command": "3"}}})
    )
    before = live.read_bytes()
    a.run("status", check=False)
    assert a.json("push", "--dry-run")["pushed"] == ["claude-sync/mcp-servers.json"]
    a.run("sync", "--dry-run")
    assert live.read_bytes() == before
    a.run("sync")
    assert set(config(a)["mcpServers"]) == {"s", "t", "u"}
    assert set(json.loads(sidecar.read_text())) == {"s", "t", "u"}
    # A server added, looked at, removed again: the look must not make it come back.
    servers = config(a)["mcpServers"]
    live.write_text(json.dumps({"userID": "u", "mcpServers": {**servers, "x": {"command": "x"}}}))
    a.run("status", check=False)
    live.write_text(json.dumps({"userID": "u", "mcpServers": servers}))
    a.run("sync")
    assert set(config(a)["mcpServers"]) == {"s", "t", "u"}


# -- pure logic ---------------------------------------------------------------------------


def test_write_retries_when_claude_code_rewrites_the_file(tmp_path, monkeypatch):
    path = tmp_path / ".claude.json"
    path.write_text(json.dumps({"userID": "u", "projects": {"/x": {}}}))
    real = mcp._write_atomic
    calls = []

    def racing(target: Path, data: bytes, mode: int, unless: bytes | None = None) -> bool:
        if not calls:  # Claude Code writes a new key just before our first replace
            path.write_text(json.dumps({"userID": "u", "projects": {"/x": {}}, "new": 1}))
        calls.append(1)
        return real(target, data, mode, unless)

    monkeypatch.setattr(mcp, "_write_atomic", racing)
    mcp.write_servers(path, {"s": {"command": "c"}})
    assert json.loads(path.read_text()) == {
        "userID": "u",
        "projects": {"/x": {}},
        "new": 1,
        "mcpServers": {"s": {"command": "c"}},
    }
    assert len(calls) == 2


def test_write_gives_up_cleanly_on_a_file_that_keeps_changing(tmp_path, monkeypatch):
    path = tmp_path / ".claude.json"
    path.write_text("{}")
    real = mcp._write_atomic
    writes = []

    def racing(target: Path, data: bytes, mode: int, unless: bytes | None = None) -> bool:
        writes.append(1)  # Claude Code writes again before every one of our replaces
        path.write_text(json.dumps({"n": len(writes)}))
        return real(target, data, mode, unless)

    monkeypatch.setattr(mcp, "_write_atomic", racing)
    with pytest.raises(SyncError, match="kept changing"):
        mcp.write_servers(path, {"s": {}})
    assert len(writes) == mcp.WRITE_ATTEMPTS
    assert json.loads(path.read_text()) == {"n": mcp.WRITE_ATTEMPTS}
    assert [p.name for p in tmp_path.iterdir()] == [".claude.json"]  # no temporary left


def test_invalid_claude_json_is_left_alone_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path))
    (tmp_path / ".claude.json").write_text("{not json")
    (tmp_path / "claude-sync").mkdir()
    (tmp_path / mcp.SIDECAR).write_text('{"s": {}}')
    warnings = mcp.reconcile(tmp_path, tmp_path / "state")
    assert warnings and "not valid JSON" in warnings[0]
    assert (tmp_path / ".claude.json").read_text() == "{not json"


servers = st.dictionaries(
    st.sampled_from("abcde"), st.fixed_dictionaries({"command": st.sampled_from("xyz")})
)


@settings(max_examples=300, print_blob=True)
@given(base=servers, local=servers, remote=servers)
def test_merge_entries_takes_each_one_sided_change(base, local, remote):
    merged, conflicts = merge_entries(base, local, remote)
    for name in set(base) | set(local) | set(remote):
        b, lo, r = base.get(name), local.get(name), remote.get(name)
        if lo == r or r == b:
            assert merged.get(name) == lo
        elif lo == b:
            assert merged.get(name) == r
        else:
            assert name in conflicts and merged.get(name) == lo
    dump = [(json.dumps(d) + "\n").encode() for d in (base, local, remote)]
    assert (merge_file(mcp.SIDECAR, *dump) is None) == bool(conflicts)


def test_config_file_location(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mcp.config_file(tmp_path / ".claude") == tmp_path / ".claude.json"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "c"))
    assert mcp.config_file(tmp_path / "c") == tmp_path / "c" / ".claude.json"
    assert os.path.basename(mcp.SIDECAR) != ".claude.json"
