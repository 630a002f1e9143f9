"""Automatic merges converge, real conflicts are asked about or kept."""

from __future__ import annotations

import itertools
import json
import shutil
import sys

import pexpect
import pytest
from conftest import Machine, snapshot_tree, transcript

SESSION = "projects/-srv-app/s1.jsonl"


def history_line(machine: str, i: int) -> str:
    return (
        json.dumps(
            {
                "display": f"{machine} prompt {i}",
                "timestamp": 1_763_900_000_000 + i,
                "project": "/srv/app",
                "sessionId": "s1",
            }
        )
        + "\n"
    )


def records(m: Machine, rel: str) -> list[str]:
    return (m.claude / rel).read_text().splitlines()


def setup_machines(make_machine, repo_dir, names: str) -> list[Machine]:
    machines = [make_machine(n) for n in names]
    first = machines[0]
    first.write(SESSION, transcript("s1", 10))
    first.write("history.jsonl", history_line("base", 0))
    first.write("agents/reviewer.md", "line 1\nline 2\nline 3\n")
    first.write("settings.json", json.dumps({"model": "opus", "theme": "dark"}, indent=2) + "\n")
    first.run("init", str(repo_dir))
    first.run("push")
    for m in machines[1:]:
        m.run("init", str(repo_dir))
        m.run("pull")
    return machines


def synced(m: Machine) -> dict[str, bytes]:
    return {p: v[0] for p, v in snapshot_tree(m.claude).items()}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3)))[:3])
def test_concurrent_appends_converge_on_three_machines(make_machine, repo_dir, order):
    machines = setup_machines(make_machine, repo_dir, "abc")
    for k, m in enumerate(machines):
        m.append(SESSION, transcript(f"m{k}", 3, start=100 + 10 * k))
        m.append("history.jsonl", history_line(m.home.name, 10 + k))
    for i in order:
        result = machines[i].json("sync")
        assert result["conflicts"] == [], result
    for i in order:
        assert machines[i].json("sync")["conflicts"] == []
    views = [synced(m) for m in machines]
    assert views[0] == views[1] == views[2]
    lines = records(machines[0], SESSION)
    assert len(lines) == 10 + 9 and len(set(lines)) == 19
    assert len(records(machines[0], "history.jsonl")) == 4
    assert not any("conflict" in p for p in views[0])


def test_prefix_growth_is_a_fast_forward_and_settings_merge_per_key(make_machine, repo_dir):
    a, b = setup_machines(make_machine, repo_dir, "ab")
    a.append(SESSION, transcript("s1", 5, start=10))
    a.write("settings.json", json.dumps({"model": "sonnet", "theme": "dark"}, indent=2) + "\n")
    a.run("push")
    b.write("settings.json", json.dumps({"model": "opus", "theme": "light"}, indent=2) + "\n")
    result = b.json("sync")
    assert result["conflicts"] == []
    assert (b.claude / SESSION).read_bytes() == (a.claude / SESSION).read_bytes()
    assert json.loads((b.claude / "settings.json").read_text()) == {
        "model": "sonnet",
        "theme": "light",
    }
    a.run("pull")
    assert (a.claude / "settings.json").read_bytes() == (b.claude / "settings.json").read_bytes()


def test_text_three_way_merge_is_clean_when_changes_do_not_overlap(make_machine, repo_dir):
    a, b = setup_machines(make_machine, repo_dir, "ab")
    a.write("agents/reviewer.md", "line 1 (A)\nline 2\nline 3\n")
    a.run("push")
    b.write("agents/reviewer.md", "line 1\nline 2\nline 3 (B)\n")
    assert b.json("sync")["conflicts"] == []
    assert (b.claude / "agents/reviewer.md").read_text() == "line 1 (A)\nline 2\nline 3 (B)\n"


def make_conflict(make_machine, repo_dir) -> tuple[Machine, Machine]:
    a, b = setup_machines(make_machine, repo_dir, "ab")
    a.write("agents/reviewer.md", "line 1\nA wrote this\nline 3\n")
    a.run("push")
    b.write("agents/reviewer.md", "line 1\nB wrote this\nline 3\n")
    return a, b


def test_conflicts_and_resolve_commands(make_machine, repo_dir):
    _a, b = make_conflict(make_machine, repo_dir)
    assert b.json("pull", expect=3)["conflicts"] == ["agents/reviewer.md"]
    listed = b.run("conflicts").stdout
    assert "agents/reviewer.md" in listed and "claude-sync-conflict" in listed
    assert b.json("conflicts")["conflicts"] == ["agents/reviewer.md"]
    # status -v shows both versions (it was refused: `-v status` alone worked); -q says it
    # by the exit code alone.
    for flags in (["status", "-v"], ["-v", "status"]):
        shown = b.run(*flags, check=False)
        assert shown.returncode == 3 and "remote sha256" in shown.stderr, flags
    quiet = b.run("status", "-q", check=False)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (3, "", "")
    bad = b.run("resolve", "agents/other.md", "--take", "local", check=False)
    assert bad.returncode == 2
    b.run("resolve", "agents/reviewer.md", "--take", "remote")
    assert (b.claude / "agents/reviewer.md").read_text() == "line 1\nA wrote this\nline 3\n"
    assert not list((b.claude / "agents").glob("*claude-sync-conflict*"))
    assert "No unresolved conflicts." in b.run("conflicts").stdout


def test_conflicts_are_listed_from_this_machine_alone(make_machine, repo_dir):
    """What pulls left is in the local state: listing it needs neither the key nor the
    repository (a damaged key file, an unplugged drive)."""
    _a, b = make_conflict(make_machine, repo_dir)
    b.run("pull", check=False)
    repo_dir.rename(repo_dir.with_name("unplugged"))
    (b.config_dir / "key").write_text("{not json")
    assert b.json("conflicts")["conflicts"] == ["agents/reviewer.md"]


def test_resolve_take_local_pushes_it(make_machine, repo_dir):
    a, b = make_conflict(make_machine, repo_dir)
    b.run("pull", check=False)
    result = b.json("resolve", "agents/reviewer.md", "--take", "local")
    assert result["pushed"] == ["agents/reviewer.md"]
    a.run("pull")
    assert (a.claude / "agents/reviewer.md").read_text() == "line 1\nB wrote this\nline 3\n"


def test_deleted_config_changed_elsewhere_is_a_conflict(make_machine, repo_dir):
    a, b = setup_machines(make_machine, repo_dir, "ab")
    (a.claude / "agents/reviewer.md").unlink()
    a.run("push")
    b.write("agents/reviewer.md", "B kept working on it\n")
    assert b.json("pull", expect=3)["conflicts"] == ["agents/reviewer.md"]
    assert (b.claude / "agents/reviewer.md").read_text() == "B kept working on it\n"
    assert b.json("sync", "--strategy", "local")["pushed"] == ["agents/reviewer.md"]
    a.run("pull")
    assert (a.claude / "agents/reviewer.md").read_text() == "B kept working on it\n"


def test_a_push_reports_a_file_changed_here_and_deleted_elsewhere(make_machine, repo_dir):
    """Before any pull recorded the conflict, a push meeting the other machine's deletion
    reports it (it was `error: unexpected KeyError`)."""
    a, b = setup_machines(make_machine, repo_dir, "ab")
    (a.claude / "agents/reviewer.md").unlink()
    a.run("push")
    b.write("agents/reviewer.md", "B kept working on it\n")
    pushed = b.run("push", check=False)
    assert pushed.returncode == 3, pushed.stderr
    assert "agents/reviewer.md changed here and deleted on " in pushed.stderr
    assert b.json("push", expect=3)["conflicts"] == ["agents/reviewer.md"]
    assert (b.claude / "agents/reviewer.md").read_text() == "B kept working on it\n"
    # What the push reported is there for `conflicts` and `resolve`, before any pull.
    assert "changed here and deleted on " in b.run("conflicts").stdout
    assert b.json("resolve", "agents/reviewer.md", "--take", "local")["pushed"] == [
        "agents/reviewer.md"
    ]
    a.run("pull")
    assert (a.claude / "agents/reviewer.md").read_text() == "B kept working on it\n"


def test_a_file_deleted_here_and_changed_elsewhere_is_a_conflict_for_push_and_sync(
    make_machine, repo_dir
):
    """The deletion is not pushed over the other machine's change, and neither push nor
    sync calls the machines up to date while they differ."""
    a, b = setup_machines(make_machine, repo_dir, "ab")
    a.write("agents/reviewer.md", "A changed it\n")
    a.run("push")
    (b.claude / "agents/reviewer.md").unlink()
    pushed = b.run("push", check=False)
    assert pushed.returncode == 3, pushed.stderr
    assert "agents/reviewer.md deleted here and changed on " in pushed.stderr
    assert "up to date" not in pushed.stdout + pushed.stderr
    assert b.json("sync", expect=3)["conflicts"] == ["agents/reviewer.md"]
    assert "deleted here and changed on " in b.run("conflicts").stdout
    a.run("pull")
    assert (a.claude / "agents/reviewer.md").read_text() == "A changed it\n"
    b.run("resolve", "agents/reviewer.md", "--take", "remote")
    assert (b.claude / "agents/reviewer.md").read_text() == "A changed it\n"


def test_a_project_folder_removed_here_stays_everywhere_memory_included(make_machine, repo_dir):
    """Removed to free space (or renamed, or mapped to a label): its transcripts and its
    auto memory stay on the other machines."""
    memory = "projects/-srv-app/memory/MEMORY.md"
    a, b = setup_machines(make_machine, repo_dir, "ab")
    a.write(memory, "- the tests use pnpm\n")
    a.run("push")
    b.run("pull")
    shutil.rmtree(a.claude / "projects/-srv-app")
    assert a.json("push")["removed"] == []
    b.run("pull")
    assert (b.claude / memory).exists() and (b.claude / SESSION).exists()


def test_a_prompt_half_appended_to_the_history_is_neither_pushed_nor_split(make_machine, repo_dir):
    """Claude Code writes history.jsonl a piece at a time: a push while a prompt is half
    written sends the lines before it, and a pull meanwhile keeps it whole at the end."""
    a, b = setup_machines(make_machine, repo_dir, "ab")
    half, rest = history_line("a", 3)[:25], history_line("a", 3)[25:]
    a.append("history.jsonl", half)
    a.run("push")
    b.append("history.jsonl", history_line("b", 2))
    b.run("pull")
    b.run("push")
    assert half not in (b.claude / "history.jsonl").read_text()
    a.run("pull")
    assert (a.claude / "history.jsonl").read_text().endswith(history_line("b", 2) + half)
    a.append("history.jsonl", rest)
    a.run("push")
    b.run("pull")
    for m in (a, b):
        lines = records(m, "history.jsonl")
        assert [json.loads(line)["display"] for line in lines] == [
            "base prompt 0",
            "b prompt 2",
            "a prompt 3",
        ]


def test_old_transcript_deleted_locally_stays_everywhere(make_machine, repo_dir):
    a, b = setup_machines(make_machine, repo_dir, "ab")
    (a.claude / SESSION).unlink()  # Claude Code's cleanupPeriodDays
    assert a.json("sync")["pushed"] == []
    assert (b.claude / SESSION).exists()
    b.append(SESSION, transcript("s1", 1, start=10))
    b.run("push")
    a.run("pull")
    assert (a.claude / SESSION).exists()  # it grew elsewhere: it comes back


def spawn(m: Machine, *args: str, editor: str | None = None) -> pexpect.spawn:
    return m.spawn(*args, term="dumb", env={"EDITOR": editor} if editor else None)


def test_interactive_prompt_diff_then_keep_local(make_machine, repo_dir):
    _a, b = make_conflict(make_machine, repo_dir)
    child = spawn(b, "pull")
    child.expect(r"\[s\]kip")
    child.sendline("d")
    child.expect("A wrote this")
    child.expect(r"\[s\]kip")
    child.sendline("l")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert (b.claude / "agents/reviewer.md").read_text() == "line 1\nB wrote this\nline 3\n"
    assert b.json("push")["pushed"] == ["agents/reviewer.md"]


def test_interactive_manual_merge_in_editor(make_machine, repo_dir, tmp_path):
    a, b = make_conflict(make_machine, repo_dir)
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\n"
        "p = sys.argv[1]\n"
        "text = open(p).read()\n"
        "assert '<<<<<<< local' in text and '>>>>>>> remote' in text\n"
        "open(p, 'w').write('line 1\\nA and B agreed\\nline 3\\n')\n"
    )
    child = spawn(b, "sync", editor=f"{sys.executable} {editor}")
    child.expect(r"\[s\]kip")
    child.sendline("m")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert (b.claude / "agents/reviewer.md").read_text() == "line 1\nA and B agreed\nline 3\n"
    a.run("pull")
    assert (a.claude / "agents/reviewer.md").read_text() == "line 1\nA and B agreed\nline 3\n"


def test_push_merges_a_transcript_that_grew_on_both_machines(make_machine, repo_dir):
    """A plain push (as the SessionEnd hook runs it) finding the same transcript grown
    elsewhere merges the records as sync does: no conflict, nothing lost."""
    a, b = setup_machines(make_machine, repo_dir, "ab")
    a.append(SESSION, transcript("a", 2, start=100))
    a.run("push")
    b.append(SESSION, transcript("b", 2, start=200))
    result = b.json("push")
    assert result["conflicts"] == [] and SESSION in result["pushed"], result
    a.run("pull")
    for m in (a, b):
        uuids = {json.loads(line)["uuid"] for line in records(m, SESSION)}
        assert {"a-00100", "a-00101", "b-00200", "b-00201"} <= uuids
    assert synced(a)[SESSION] == synced(b)[SESSION]


def changed_on_a_then_c_pushed(make_machine, repo_dir) -> tuple[Machine, Machine, Machine]:
    """Three machines: ann-laptop (a) changed agents/reviewer.md, then ann-desktop (c)
    pushed something else."""
    a, b, c = setup_machines(make_machine, repo_dir, "abc")
    a.run("devices", "--rename", "ann-laptop")
    c.run("devices", "--rename", "ann-desktop")
    a.write("agents/reviewer.md", "from a\n")
    a.run("push")
    c.write("rules/r.md", "unrelated\n")
    c.run("push")
    return a, b, c


def test_a_conflict_names_the_machine_that_changed_the_file(make_machine, repo_dir):
    """Not the machine that pushed last (it may not have touched the file)."""
    _, b, _ = changed_on_a_then_c_pushed(make_machine, repo_dir)
    b.write("agents/reviewer.md", "from b\n")
    pulled = b.run("pull", check=False)
    assert pulled.returncode == 3, pulled.stderr
    assert "agents/reviewer.md changed here and on ann-laptop" in pulled.stderr, pulled.stderr
    listed = b.run("conflicts").stdout
    assert "changed here and on ann-laptop" in listed and "ann-desktop" not in listed, listed
    details = b.json("conflicts")["details"]["agents/reviewer.md"]
    assert details["remote_device"] == "ann-laptop" and details["remote_seq"] == 2, details


def test_a_conflict_after_a_prune_names_no_machine_it_cannot_know(make_machine, repo_dir):
    """The snapshot that made the change was pruned: the oldest one kept (another machine's,
    which never touched the file) was named as its author."""
    _, b, c = changed_on_a_then_c_pushed(make_machine, repo_dir)
    c.run("prune", "--keep-last", "1", "--grace", "0")
    b.write("agents/reviewer.md", "from b\n")
    pulled = b.run("pull", check=False)
    assert pulled.returncode == 3, pulled.stderr
    assert "agents/reviewer.md changed here and on another machine" in pulled.stderr
    assert "ann-desktop" not in pulled.stderr + b.run("conflicts").stdout
    assert "when: unknown" in b.run("status", "-v", check=False).stderr


def test_a_standing_conflict_keeps_one_copy_of_the_other_version(make_machine, repo_dir):
    """Syncing again while a conflict waits does not pile up copies of the same version."""
    a, b = setup_machines(make_machine, repo_dir, "ab")
    a.write("agents/reviewer.md", "a's\n")
    a.run("push")
    b.write("agents/reviewer.md", "b's\n")
    assert b.run("sync", check=False).returncode == 3
    a.write("agents/other.md", "unrelated\n")
    a.run("push")
    assert b.run("sync", check=False).returncode == 3
    copies = sorted((b.claude / "agents").glob("reviewer.md.claude-sync-conflict-*"))
    assert [c.read_text() for c in copies] == ["a's\n"]
    b.run("resolve", "agents/reviewer.md", "--take", "both")
    assert len(list((b.claude / "agents").glob("reviewer.md.claude-sync-conflict-*"))) == 1


@pytest.mark.parametrize("strategy", ["local", "remote"])
def test_a_conflict_a_sync_settles_by_strategy_leaves_no_copy(make_machine, repo_dir, strategy):
    """As `resolve --take` does: six copies piled up in a review's run of syncs."""
    a, b = setup_machines(make_machine, repo_dir, "ab")
    a.write("agents/reviewer.md", "a's\n")
    a.run("push")
    b.write("agents/reviewer.md", "b's\n")
    assert b.run("sync", check=False).returncode == 3
    assert list((b.claude / "agents").glob("reviewer.md.claude-sync-conflict-*"))
    b.run("sync", "--strategy", strategy)
    assert not list((b.claude / "agents").glob("reviewer.md.claude-sync-conflict-*"))
    kept = "b's\n" if strategy == "local" else "a's\n"
    assert (b.claude / "agents/reviewer.md").read_text() == kept
    a.run("pull")
    assert (a.claude / "agents/reviewer.md").read_text() == kept
