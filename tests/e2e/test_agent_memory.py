"""What sub-agents with `memory: user` keep in ~/.claude/agent-memory/<agent>/ follows the
user (type `agent-memory`, repository format 9), and so do Claude Code 2.1.332's saved
workflows, custom themes and key bindings (same format). A repository made before it holds
none until `claude-sync upgrade`: claude-sync up to format 8 refuses a whole snapshot listing
a path no type it knows claims."""

from __future__ import annotations

import json

from test_history_upgrade import head_ids, old_format_repository, stored_format

from claude_sync import config
from claude_sync.repository import IDENTITY_FORMAT, TYPES_FORMAT

MEMORY = "agent-memory/code-reviewer/MEMORY.md"
TOPIC = "agent-memory/code-reviewer/naming.md"
LATER_TYPES = ("agent-memory", "workflows", "themes", "keybindings")
THEME = "themes/dusk.json"
WORKFLOW = "workflows/triage.js"
TRIAGE = "export const meta = {name: 'triage', description: 'sorts issues'}\nawait agent('sort')\n"


def head_paths(m, repo_dir) -> set[str]:
    return set(head_ids(m, repo_dir))


def test_agent_memory_follows_the_user(machines, repo_dir):
    a, b = machines
    for m in (a, b):
        m.run("init", str(repo_dir))
    assert stored_format(a, repo_dir) == TYPES_FORMAT
    a.write(MEMORY, "# Code reviewer\n- prefers early returns\n")
    a.write(TOPIC, "snake_case for modules\n")
    a.run("push")
    b.run("pull")
    assert (b.claude / MEMORY).read_text() == "# Code reviewer\n- prefers early returns\n"
    assert (b.claude / TOPIC).read_text() == "snake_case for modules\n"

    # The agent curates its memory on the other machine: an edit and a topic folded in.
    b.write(MEMORY, "# Code reviewer\n- prefers early returns\n- snake_case modules\n")
    (b.claude / TOPIC).unlink()
    b.run("sync")
    a.run("sync")
    assert (a.claude / MEMORY).read_text().endswith("- snake_case modules\n")
    assert not (a.claude / TOPIC).exists()
    listed = {t["name"]: t for t in json.loads(a.run("types", "--json").stdout)["types"]}
    for name in LATER_TYPES:
        row = listed[name]
        assert row["synced"] and not row["opt_in"] and not row["waits_for_upgrade"]


def test_workflows_themes_and_key_bindings_follow_the_user(machines, repo_dir):
    """A theme arrives as it is; a workflow is a script Claude Code runs (it starts
    sub-agents with the session's tools), and key bindings can make `n` answer yes to a
    permission question: held until taken, as a skill's script is."""
    a, b = machines
    theme = json.dumps({"name": "Dusk", "base": "dark", "overrides": {"claude": "#ff8800"}})
    keys = json.dumps({"bindings": [{"context": "Chat", "bindings": {"ctrl+k": "command:x"}}]})
    a.write(THEME, theme)
    a.write("keybindings.json", keys)
    a.write(WORKFLOW, TRIAGE)
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    pulled = b.json("pull", expect=3)
    assert pulled["conflicts"] == ["keybindings.json", WORKFLOW]
    assert not (b.claude / WORKFLOW).exists()
    assert not (b.claude / "keybindings.json").exists()
    assert (b.claude / THEME).read_text() == theme
    listing = b.run("conflicts").stdout
    assert "keybindings.json: " in listing and "(key bindings)" in listing
    assert "(script)" in listing  # the workflow's
    b.run("resolve", WORKFLOW, "--take", "remote")
    b.run("resolve", "keybindings.json", "--take", "remote")
    assert (b.claude / WORKFLOW).read_text() == TRIAGE
    assert (b.claude / "keybindings.json").read_text() == keys
    # Changed on one machine, held on the other until taken there too.
    b.write(WORKFLOW, TRIAGE + "await agent('report')\n")
    b.write(THEME, theme.replace("ff8800", "00aaff"))
    b.run("sync")
    assert a.json("pull", expect=3)["conflicts"] == [WORKFLOW]
    assert (a.claude / WORKFLOW).read_text() == TRIAGE
    assert "00aaff" in (a.claude / THEME).read_text()


def test_a_repository_not_upgraded_holds_no_agent_memory_until_it_is(make_machine, repo_dir):
    old_format_repository(repo_dir, IDENTITY_FORMAT)
    a, b, c = make_machine("a"), make_machine("b"), make_machine("c")
    for m in (a, b, c):
        m.run("init", str(repo_dir))
    listed = {t["name"]: t for t in json.loads(a.run("types", "--json").stdout)["types"]}
    assert all(listed[name]["waits_for_upgrade"] for name in LATER_TYPES)
    a.write(MEMORY, "from a\n")
    a.write("agents/code-reviewer.md", "---\nname: code-reviewer\nmemory: user\n---\nReview.\n")
    b.write(TOPIC, "from b\n")
    a.run("push")
    assert head_paths(a, repo_dir) == {"agents/code-reviewer.md"}
    status = a.run("status")
    assert "Everything is up to date" in status.stdout
    assert "warning: agent-memory is synced once the repository is upgraded" in status.stderr

    named = a.run("push", "agent-memory", check=False)
    assert named.returncode == 2
    assert named.stderr.startswith("error: agent-memory is synced once the repository is upgraded")
    assert "`claude-sync upgrade`" in named.stderr
    assert "agent-memory is synced once the repository is upgraded" in a.run("types").stdout
    doctor = a.run("doctor", check=False).stdout
    waiting = ", ".join(LATER_TYPES)
    assert f"format {IDENTITY_FORMAT}: {waiting} not synced until `claude-sync upgrade`" in (
        " ".join(doctor.split())
    )

    assert "Upgraded the repository to format" in a.run("upgrade").stdout
    a.run("push")
    assert MEMORY in head_paths(a, repo_dir)
    # B still has the format it joined with in its cache, but agent memory here that it
    # cannot hold: its next run looks at the repository's format first, and syncs it.
    assert config.load_repo_config(b.config_dir)["version"] == IDENTITY_FORMAT
    status = b.json("status")
    assert status["pushed"] == [TOPIC] and MEMORY in status["pulled"]
    assert config.load_repo_config(b.config_dir)["version"] == TYPES_FORMAT
    b.run("sync")
    assert (b.claude / MEMORY).read_text() == "from a\n"
    assert TOPIC in head_paths(b, repo_dir)
    # C has no agent memory of its own: its very next pull asks the repository its format,
    # and brings what waited (its first `sync` said all was up to date, and left it there).
    assert TOPIC in c.json("sync")["pulled"]
    assert (c.claude / MEMORY).read_text() == "from a\n"
    a.run("pull")
    assert (a.claude / TOPIC).read_text() == "from b\n"
    assert "synced once the repository is upgraded" not in a.run("types").stdout
    assert "warning" not in a.run("status").stderr


def test_a_config_put_back_at_an_older_format_is_refused(make_machine, repo_dir):
    """A storage that serves the config as it was before `upgrade` would let older
    claude-sync in again, to refuse every snapshot that lists agent memory: a machine that
    saw the newer format refuses it, until `upgrade` writes the format back."""
    old_format_repository(repo_dir, IDENTITY_FORMAT)
    a = make_machine("a")
    a.run("init", str(repo_dir))
    before = (repo_dir / "config").read_bytes()
    a.run("upgrade")
    a.write(MEMORY, "learnt\n")
    a.run("push")
    (repo_dir / "config").write_bytes(before)
    a.write(MEMORY, "learnt more\n")
    proc = a.run("push", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: the repository's config says format 8, older than")
    doctor = a.json("doctor", expect=1)["checks"]
    assert not next(c for c in doctor if c["name"] == "repository format")["ok"]
    assert "Upgraded the repository to format 9" in a.run("upgrade").stdout
    a.run("push")
    assert (repo_dir / "config").read_bytes() != before
    assert config.load_repo_config(a.config_dir)["version"] == TYPES_FORMAT


def test_naming_agent_memory_asks_the_repository_for_its_format(make_machine, repo_dir, tmp_path):
    """A machine that last saw format 8 and has no agent memory: `push agent-memory` looks at
    the repository (upgraded since: it goes on), or says that it cannot reach it."""
    old_format_repository(repo_dir, IDENTITY_FORMAT)
    a, b, c = make_machine("a"), make_machine("b"), make_machine("c")
    for m in (a, b, c):
        m.run("init", str(repo_dir))
    a.run("upgrade")
    assert "Nothing to push" in b.run("push", "agent-memory").stdout
    assert config.load_repo_config(b.config_dir)["version"] == TYPES_FORMAT
    repo_dir.rename(tmp_path / "unplugged")
    proc = c.run("push", "agent-memory", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: cannot reach"), proc.stderr
