"""Never lose a change, never diverge in silence: local quirks and races.

Every test drives the real CLI, with one HOME per machine.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest
from conftest import Machine, snapshot_tree, transcript

from claude_sync import resources
from claude_sync.pathmap import encode

SESSION = "projects/-home-ann-code-app/1b2c3d4e-0000-4000-8000-000000000001.jsonl"
# Root reads anything: drop the capabilities that let it, so mode 000 means unreadable.
UNPRIVILEGED = (
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
)


def set_up(a: Machine, b: Machine, repo: Path) -> None:
    a.run("init", str(repo))
    a.run("push")
    b.run("init", str(repo))
    b.run("pull")


def test_briefly_empty_settings_is_not_pushed_as_a_deletion(machines, repo_dir):
    a, b = machines
    a.write("settings.json", '{"model": "opus"}\n')
    a.write("agents/x.md", "agent\n")
    set_up(a, b, repo_dir)
    # An editor truncates, then writes: a push lands in between.
    a.write("settings.json", "")
    result = a.json("push")
    b.run("pull")
    assert (b.claude / "settings.json").read_text() == '{"model": "opus"}\n'
    assert result["skipped"] == ["settings.json"]
    assert any("settings.json is empty" in w for w in result["warnings"])
    # The write completes: the new version goes everywhere.
    a.write("settings.json", '{"model": "sonnet"}\n')
    a.run("push")
    b.run("pull")
    assert (b.claude / "settings.json").read_text() == '{"model": "sonnet"}\n'


def test_half_written_settings_is_not_pushed(machines, repo_dir):
    """Caught mid-write, settings.json is not valid JSON: it stays as last synced everywhere."""
    a, b = machines
    a.write("settings.json", '{"model": "opus"}\n')
    set_up(a, b, repo_dir)
    a.write("settings.json", '{"model": "sonn')
    result = a.json("push")
    assert result["skipped"] == ["settings.json"] and result["pushed"] == []
    assert any("settings.json is not valid JSON" in w for w in result["warnings"])
    b.run("pull")
    assert (b.claude / "settings.json").read_text() == '{"model": "opus"}\n'
    a.write("settings.json", '{"model": "sonnet"}\n')
    a.run("push")
    b.run("pull")
    assert (b.claude / "settings.json").read_text() == '{"model": "sonnet"}\n'


def test_unreadable_file_or_folder_is_not_pushed_as_a_deletion(machines, repo_dir):
    a, b = machines
    a.write("agents/locked.md", "agent\n")
    a.write("commands/deploy.md", "command\n")
    a.write("CLAUDE.md", "memory\n")
    set_up(a, b, repo_dir)
    (a.claude / "agents/locked.md").chmod(0)
    (a.claude / "commands").chmod(0)
    a.write("CLAUDE.md", "memory 2\n")
    proc = a.run_after("", "push", "--json", prefix=UNPRIVILEGED)
    assert proc.returncode == 0, proc.stderr
    b.run("pull")
    assert (b.claude / "agents/locked.md").read_text() == "agent\n"
    assert (b.claude / "commands/deploy.md").read_text() == "command\n"
    assert (b.claude / "CLAUDE.md").read_text() == "memory 2\n"
    result = json.loads(proc.stdout)
    assert result["skipped"] == ["agents/locked.md", "commands"]
    assert result["pushed"] == ["CLAUDE.md"]
    assert len([w for w in result["warnings"] if "cannot be read" in w]) == 2


def test_folder_moved_into_dotfiles_and_linked_back_is_followed(machines, repo_dir):
    a, b = machines
    a.write("agents/reviewer.md", "reviewer\n")
    a.write("agents/sub/tester.md", "tester\n")
    a.write("CLAUDE.md", "memory\n")
    set_up(a, b, repo_dir)
    dotfiles = a.home / "dotfiles"
    dotfiles.mkdir()
    (a.claude / "agents").rename(dotfiles / "agents")
    (a.claude / "agents").symlink_to(dotfiles / "agents")
    (a.claude / "CLAUDE.md").rename(dotfiles / "CLAUDE.md")
    (a.claude / "CLAUDE.md").symlink_to(dotfiles / "CLAUDE.md")
    (dotfiles / "agents" / "new.md").write_text("new\n")
    (dotfiles / "themes").mkdir()
    (dotfiles / "themes" / "dusk.json").write_text('{"name": "Dusk"}\n')
    (a.claude / "themes").symlink_to(dotfiles / "themes")
    result = a.json("push")
    assert result["pushed"] == ["agents/new.md", "themes/dusk.json"], result
    status = a.run("status").stdout
    assert f"linked: agents -> {dotfiles / 'agents'}" in status
    b.run("pull")
    assert sorted(p for p in snapshot_tree(b.claude) if p.startswith("agents/")) == [
        "agents/new.md",
        "agents/reviewer.md",
        "agents/sub/tester.md",
    ]
    assert (b.claude / "CLAUDE.md").read_text() == "memory\n"
    assert (b.claude / "themes/dusk.json").read_text() == '{"name": "Dusk"}\n'


def test_links_elsewhere_are_skipped_with_a_warning_not_deleted(machines, repo_dir, tmp_path):
    a, b = machines
    a.write("projects/-home-ann-code-app/memory/notes.md", "notes\n")
    a.write("skills/pdf/SKILL.md", "skill\n")
    set_up(a, b, repo_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "SKILL.md").write_text("skill\n")
    (a.claude / "skills/pdf/SKILL.md").unlink()
    (a.claude / "skills/pdf/SKILL.md").symlink_to(outside / "SKILL.md")
    result = a.json("push")
    assert result["pushed"] == [] and result["skipped"] == ["skills/pdf/SKILL.md"]
    assert any("outside the synced folder" in w for w in result["warnings"])
    b.run("pull")
    assert (b.claude / "skills/pdf/SKILL.md").read_text() == "skill\n"


@pytest.mark.parametrize("mounted", [True, False])
def test_a_synced_folder_replaced_by_a_link_is_not_deleted_anywhere(
    machines, repo_dir, tmp_path, mounted
):
    """agents/team moved to a dotfiles checkout (outside the Claude folder) and linked
    back, or that checkout on a drive not mounted now: the link is not followed, and the
    files it hides stay on every machine (they were read as deleted before)."""
    a, b = machines
    a.write("agents/team/lead.md", "lead\n")
    a.write("agents/team/dev.md", "dev\n")
    set_up(a, b, repo_dir)
    moved = tmp_path / "dotfiles-team"
    (a.claude / "agents/team").rename(moved)
    (a.claude / "agents/team").symlink_to(moved if mounted else tmp_path / "not-mounted")
    result = a.json("push")
    assert result["pushed"] == [] and result["removed"] == []
    assert result["skipped"] == ["agents/team"]
    b.run("pull")
    assert (b.claude / "agents/team/lead.md").read_text() == "lead\n"
    assert (b.claude / "agents/team/dev.md").read_text() == "dev\n"


def test_dotfiles_links_on_the_pulling_machine_are_written_through(machines, repo_dir):
    a, b = machines
    a.write("agents/reviewer.md", "reviewer\n")
    a.write("settings.json", '{"model": "opus"}\n')
    a.write(SESSION, transcript("s1", 3))
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    dotfiles = b.home / "dotfiles"
    (dotfiles / "agents").mkdir(parents=True)
    (dotfiles / "settings.json").write_text('{"model": "opus"}\n')
    (b.claude).mkdir()
    (b.claude / "agents").symlink_to(dotfiles / "agents")
    (b.claude / "settings.json").symlink_to(dotfiles / "settings.json")
    b.run("pull")
    assert (b.claude / SESSION).read_text() == transcript("s1", 3)
    assert (dotfiles / "agents/reviewer.md").read_text() == "reviewer\n"
    a.write("settings.json", '{"model": "sonnet"}\n')
    a.run("push")
    b.run("pull")
    assert (b.claude / "settings.json").is_symlink()
    assert (dotfiles / "settings.json").read_text() == '{"model": "sonnet"}\n'
    assert b.json("push")["pushed"] == []


def test_unwritable_path_on_the_pulling_machine_skips_only_that_path(machines, repo_dir):
    a, b = machines
    a.write("agents/reviewer.md", "reviewer\n")
    a.write(SESSION, transcript("s1", 3))
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    (b.claude / "agents").mkdir(parents=True)
    (b.claude / "agents").chmod(0o500)
    try:
        proc = b.run_after("", "pull", "--json", prefix=UNPRIVILEGED)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["pulled"] == [SESSION] and result["skipped"] == ["agents/reviewer.md"]
        assert (b.claude / SESSION).read_text() == transcript("s1", 3)
    finally:
        (b.claude / "agents").chmod(0o700)
    # Not marked as pulled: once writable, the next pull brings the rest.
    b.run("pull")
    assert (b.claude / "agents/reviewer.md").read_text() == "reviewer\n"
    # A deletion in a folder that became read-only here: skipped, not a failed pull.
    (a.claude / "agents/reviewer.md").unlink()
    a.write("CLAUDE.md", "memory\n")
    a.run("push")
    (b.claude / "agents").chmod(0o500)
    try:
        proc = b.run_after("", "pull", "--json", prefix=UNPRIVILEGED)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["pulled"] == ["CLAUDE.md"] and result["skipped"] == ["agents/reviewer.md"]
        assert any("cannot delete agents/reviewer.md" in w for w in result["warnings"])
    finally:
        (b.claude / "agents").chmod(0o700)
    b.run("pull")
    assert not (b.claude / "agents/reviewer.md").exists()


def test_a_project_folder_another_user_owns_is_said_not_a_crash(machines, repo_dir):
    """A project's folder left unreadable here (root's, after a `sudo claude`): `status`
    and `sessions` failed with a traceback's PermissionError; they say what the scan
    skipped and list its sessions as here, and `resume` of one says what to do."""
    a, b = machines
    ids = ["1b2c3d4e-0000-4000-8000-000000000001", "1b2c3d4e-0000-4000-8000-000000000002"]
    for n, (sid, project) in enumerate(zip(ids, ("app", "web"), strict=True)):
        cwd = a.home / "code" / project
        a.write(f"projects/{encode(str(cwd))}/{sid}.jsonl", transcript(f"s{n}", 3, cwd=str(cwd)))
        (b.home / "code" / project).mkdir(parents=True)
    set_up(a, b, repo_dir)
    folder = b.claude / "projects" / encode(str(b.home / "code/app"))
    kept = (folder / f"{ids[0]}.jsonl").read_text()
    folder.chmod(0)
    try:
        status = b.run_after("", "status", prefix=UNPRIVILEGED)
        assert status.returncode == 0, status.stderr
        assert "cannot be read" in status.stderr and "only in the repository" not in status.stdout
        listed = b.run_after("", "sessions", "--json", prefix=UNPRIVILEGED)
        assert listed.returncode == 0, listed.stderr
        assert {s["id"]: s["local"] for s in json.loads(listed.stdout)} == dict.fromkeys(ids, True)
        resumed = b.run_after("", "resume", ids[0], "--print", prefix=UNPRIVILEGED)
        assert resumed.returncode == 1 and "cannot read or write" in resumed.stderr
        assert "Traceback" not in resumed.stderr + listed.stderr + status.stderr
    finally:
        folder.chmod(0o700)
    assert (folder / f"{ids[0]}.jsonl").read_text() == kept


def test_a_second_claude_folder_is_a_new_side_not_the_old_state(machines, repo_dir):
    a, b = machines
    a.write("CLAUDE.md", "memory\n")
    a.write("agents/reviewer.md", "reviewer\n")
    set_up(a, b, repo_dir)
    profile = a.home / "profile2"
    profile.mkdir()
    a.env["CLAUDE_CONFIG_DIR"] = str(profile)
    assert "Everything is up to date" not in a.run("pull").stdout
    assert (profile / "CLAUDE.md").read_text() == "memory\n"
    assert (profile / "agents/reviewer.md").read_text() == "reviewer\n"
    (profile / "rules").mkdir()
    (profile / "rules/new.md").write_text("rule\n")
    assert a.json("push")["pushed"] == ["rules/new.md"]
    del a.env["CLAUDE_CONFIG_DIR"]
    a.run("sync")
    b.run("pull")
    for m in (a, b):
        assert (m.claude / "CLAUDE.md").read_text() == "memory\n"
        assert (m.claude / "agents/reviewer.md").read_text() == "reviewer\n"
        assert (m.claude / "rules/new.md").read_text() == "rule\n"


# Claude Code appends to the transcript while the pull downloads it (the SessionStart hook).
APPEND_DURING_PULL = textwrap.dedent(
    """
    import json, os
    from claude_sync import downloads
    download = downloads.Downloads._download_into

    def racing(self, staged, result, *args):
        failed = download(self, staged, result, *args)
        for s in staged:
            if s.path.endswith(".jsonl") and os.path.exists(s.dest):
                with open(s.dest, "a") as fh:
                    fh.write(json.dumps({"uuid": "local-during-pull", "type": "user"}) + "\\n")
        return failed

    downloads.Downloads._download_into = racing
    """
)


def test_pull_that_keeps_a_local_version_is_not_marked_pulled(machines, repo_dir):
    a, b = machines
    a.write(SESSION, transcript("s1", 2))
    set_up(a, b, repo_dir)
    a.append(SESSION, transcript("s1", 2, start=2))
    a.run("push")
    proc = b.run_after(APPEND_DURING_PULL, "pull")
    assert proc.returncode == 0, proc.stderr
    assert "changed during the pull; kept the local version" in proc.stderr
    result = b.json("sync")
    assert result["conflicts"] == []
    a.run("pull")
    records = [json.loads(line)["uuid"] for line in (a.claude / SESSION).read_text().splitlines()]
    assert sorted(records) == sorted([f"s1-{i:05d}" for i in range(4)] + ["local-during-pull"])
    assert (a.claude / SESSION).read_bytes() == (b.claude / SESSION).read_bytes()
    assert "Everything is up to date" in b.run("sync").stdout


def test_odd_file_names_do_not_block_the_rest(machines, repo_dir):
    a, b = machines
    a.write("agents/reviewer.md", "reviewer\n")
    a.run("init", str(repo_dir))
    long_name = "a" * 246 + ".md"  # 249 bytes: room for no suffix in a temporary name
    a.write(f"agents/{long_name}", "long\n")
    (a.claude / "agents").joinpath(os.fsdecode(b"caf\xe9.md")).write_text("latin-1\n")
    result = a.json("push")
    assert result["pushed"] == sorted(["agents/reviewer.md", f"agents/{long_name}"])
    assert any("not valid UTF-8" in w for w in result["warnings"])
    b.run("init", str(repo_dir))
    b.run("pull")
    assert (b.claude / "agents" / long_name).read_text() == "long\n"
    assert (b.claude / "agents/reviewer.md").read_text() == "reviewer\n"


def test_half_written_record_is_not_split_by_a_merge(machines, repo_dir):
    a, b = machines
    a.write(SESSION, transcript("s1", 1))
    set_up(a, b, repo_dir)
    b.append(SESSION, transcript("s1", 1, start=1))
    b.run("push")
    # A's Claude Code is half-way through appending a record when A syncs.
    record = transcript("s1", 1, start=2)
    a.append(SESSION, record[:60])
    a.run("sync")
    a.append(SESSION, record[60:])
    a.run("sync")
    b.run("sync")
    lines = (b.claude / SESSION).read_text().splitlines()
    assert [json.loads(line)["uuid"] for line in lines] == [f"s1-{i:05d}" for i in range(3)]
    assert (a.claude / SESSION).read_bytes() == (b.claude / SESSION).read_bytes()


def test_whole_records_sync_while_the_last_one_stays_half_written(machines, repo_dir):
    """A Claude Code that died mid-record leaves half a line for good: the records before
    it still sync both ways, and the half line stays here, at the end."""
    a, b = machines
    a.write(SESSION, transcript("s1", 2))
    half = transcript("s1", 1, start=2)[:60]
    a.append(SESSION, half)
    a.run("init", str(repo_dir))
    proc = a.run("push")
    assert "being written" not in proc.stderr
    assert "Everything is up to date" not in proc.stdout
    b.run("init", str(repo_dir))
    b.run("pull")
    assert (b.claude / SESSION).read_text() == transcript("s1", 2)
    assert a.json("status")["pushed"] == []

    b.append(SESSION, transcript("s1", 1, start=3))
    b.run("push")
    assert "being written" not in a.run("sync").stderr
    assert (a.claude / SESSION).read_text() == transcript("s1", 2) + transcript(
        "s1", 1, start=3
    ) + half
    assert a.json("push")["pushed"] == []
    assert (b.claude / SESSION).read_text() == transcript("s1", 2) + transcript("s1", 1, start=3)


def test_history_project_paths_follow_the_home_directory(machines, repo_dir):
    a, b = machines

    def prompt(m: Machine, text: str, ms: int) -> str:
        project = str(m.home / "code" / "app")
        return json.dumps({"display": text, "timestamp": ms, "project": project}) + "\n"

    a.write("history.jsonl", prompt(a, "from A", 1))
    set_up(a, b, repo_dir)
    assert (b.claude / "history.jsonl").read_text() == prompt(b, "from A", 1)
    b.append("history.jsonl", prompt(b, "from B", 2))
    b.run("push")
    a.append("history.jsonl", prompt(a, "again A", 3))
    a.run("sync")
    b.run("sync")
    expected = [prompt(a, "from A", 1), prompt(a, "from B", 2), prompt(a, "again A", 3)]
    assert (a.claude / "history.jsonl").read_text() == "".join(expected)
    assert (b.claude / "history.jsonl").read_text() == "".join(
        p.replace(str(a.home), str(b.home)) for p in expected
    )


def test_deletions_and_skipped_files_are_reported_as_such(machines, repo_dir):
    a, b = machines
    a.write("agents/old.md", "old\n")
    a.write("agents/kept.md", "kept\n")
    set_up(a, b, repo_dir)
    (a.claude / "agents/old.md").unlink()
    os.mkfifo(a.claude / "agents/pipe.md")
    a.write("agents/back\\slash.md", "odd\n")
    a.write("agents/new\nline.md", "odder\n")
    proc = a.run("push")
    assert "removed 1 deleted file from every machine" in proc.stdout
    assert "pushed" not in proc.stdout
    warnings = proc.stderr.splitlines()
    assert [w for w in warnings if "pipe.md" in w] == [
        "warning: agents/pipe.md is not a regular file; skipped"
    ]
    assert [w for w in warnings if "slash" in w] == [
        "warning: agents/back\\slash.md has a backslash in its name; skipped"
    ]
    assert [w for w in warnings if "line" in w] == [
        "warning: agents/new?line.md has a control character in its name; skipped"
    ]
    result = a.json("sync")
    assert result["skipped"] == ["agents/back\\slash.md", "agents/new\nline.md", "agents/pipe.md"]
    assert len(result["warnings"]) == 3
    b.run("pull")
    assert sorted(p.name for p in (b.claude / "agents").iterdir()) == ["kept.md"]


CLOCK = Path(__file__).parent / "clock"


def _as_an_earlier_version_journaled(machine: Machine) -> None:
    """The killed push's journal as claude-sync up to 0.2 wrote it: the bases' whole
    entries (their hashes later) in the header, in another row, and no push_bases table."""
    (path,) = machine.config_dir.glob("state-*.db")
    db = sqlite3.connect(path)
    with db:
        (raw,) = db.execute("SELECT value FROM meta WHERE key = 'push_journal_header'").fetchone()
        header = json.loads(raw)
        header["bases"] = {
            p: {"sha256": sha} for p, sha in db.execute("SELECT path, sha256 FROM push_bases")
        }
        db.execute("DROP TABLE push_bases")
        db.execute("DELETE FROM meta WHERE key = 'push_journal_header'")
        db.execute("INSERT INTO meta VALUES ('push_journal', ?)", (json.dumps(header),))
    db.close()


@pytest.mark.parametrize("earlier", [False, True], ids=["journal", "earlier-journal"])
def test_a_push_killed_after_writing_its_snapshot_is_not_taken_for_a_remote_change(
    machines, repo_dir, earlier
):
    """SIGKILL between writing the snapshot and recording it here: the next run knows the
    snapshot as its own, so a newer local change is neither a conflict nor lost."""
    a, b = machines
    a.write("agents/reviewer.md", "v1\n")
    set_up(a, b, repo_dir)
    a.write("agents/reviewer.md", "v2\n")
    a.env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(CLOCK), os.environ.get("PYTHONPATH", "")]),
            "CLAUDE_SYNC_TEST_KILL_AFTER": "snapshots/",
        }
    )
    killed = a.run("push", check=False)
    assert killed.returncode == -9, killed.stderr
    del a.env["CLAUDE_SYNC_TEST_KILL_AFTER"]
    if earlier:
        _as_an_earlier_version_journaled(a)
    a.write("agents/reviewer.md", "v3\n")
    result = a.json("sync", "--strategy", "remote")
    assert result["conflicts"] == [] and "agents/reviewer.md" in result["pushed"], result
    assert (a.claude / "agents/reviewer.md").read_text() == "v3\n"
    b.run("pull")
    assert (b.claude / "agents/reviewer.md").read_text() == "v3\n"


def test_an_include_glob_on_synced_paths_keeps_a_project_whose_folder_is_named_otherwise_here(
    machines, repo_dir
):
    """Include globs are on synced (logical) paths. A project's folder is named after the
    home it is in, so on another machine its local name differs: the glob must still
    select the session a SessionEnd hook pushes there, not take it for deleted."""
    from claude_sync.pathmap import encode

    a, b = machines
    folder_a = encode(str(a.home / "code" / "app"))
    folder_b = encode(str(b.home / "code" / "app"))
    a.write(f"projects/{folder_a}/s.jsonl", transcript("s", 2))
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    (logical,) = b.json("pull")["pulled"]
    assert logical != f"projects/{folder_b}/s.jsonl"
    b.run("types", "--include", logical.rsplit("/", 1)[0] + "/*")
    session = b.claude / f"projects/{folder_b}/s.jsonl"
    b.append(f"projects/{folder_b}/s.jsonl", transcript("s", 1, start=2))
    event = {"session_id": "s", "transcript_path": str(session), "hook_event_name": "SessionEnd"}
    b.run("hook", "session-end", "--timeout", "10", stdin=json.dumps(event))
    assert "pushed 1," in (b.config_dir / "hooks.log").read_text()
    a.run("pull")
    assert (a.claude / f"projects/{folder_a}/s.jsonl").read_text() == transcript("s", 3)


def test_a_transcript_rewritten_without_a_record_loses_it_nowhere(machines, repo_dir):
    """Claude Code rewrites a transcript from what it holds (NOTES.md): a record that a pull
    brought meanwhile is not in it. Pushed as a plain change, that took the record off every
    machine; it is merged with the repository's version first, as a two-sided change is."""
    a, b = machines
    a.write(SESSION, transcript("s", 3))
    set_up(a, b, repo_dir)
    held = (a.claude / SESSION).read_bytes()  # what A's Claude Code holds
    b.append(SESSION, transcript("s", 1, start=3))
    b.run("push")
    a.run("pull")
    (a.claude / SESSION).write_bytes(held + transcript("s", 1, start=4).encode())
    a.run("sync")
    b.run("sync")
    for m in (a, b):
        uuids = [json.loads(line)["uuid"] for line in (m.claude / SESSION).read_text().splitlines()]
        assert sorted(uuids) == [f"s-{i:05d}" for i in range(5)], m
    assert (a.claude / SESSION).read_bytes() == (b.claude / SESSION).read_bytes()
    # Shorter, with no record added: merged back too, and nothing new to push.
    (a.claude / SESSION).write_bytes(held)
    warned = a.json("sync")["warnings"]
    assert any("missing records the repository holds: put back" in w for w in warned)
    assert len((a.claude / SESSION).read_text().splitlines()) == 5
    assert a.json("status")["pushed"] == []
    # A record edited here (a secret taken out) is an edit: it goes everywhere as it is.
    edited = (a.claude / SESSION).read_text().replace("message 1 ", "REDACTED ")
    (a.claude / SESSION).write_text(edited)
    a.run("push")
    b.run("pull")
    assert (b.claude / SESSION).read_text() == edited


def test_a_transcript_left_empty_gets_its_records_back_and_what_comes_later(machines, repo_dir):
    """Claude Code rewrites a transcript that holds only records another machine added
    without them: an empty file. It was skipped as any empty file is (an editor truncates
    a file before it writes it), its synced version kept: it then stayed empty on that
    machine for good, whatever the others added (found by the model check, seed
    128622796). Its records come back, and what the other machine adds arrives."""
    a, b = machines
    a.write(SESSION, transcript("s", 2))
    set_up(a, b, repo_dir)
    (b.claude / SESSION).write_bytes(b"")
    a.append(SESSION, transcript("s", 1, start=2))
    a.run("push")
    b.run("pull")
    assert (b.claude / SESSION).read_text() == transcript("s", 3)
    (b.claude / SESSION).write_bytes(b"")
    warned = b.json("sync")["warnings"]
    assert any("missing records the repository holds: put back" in w for w in warned)
    assert (b.claude / SESSION).read_text() == transcript("s", 3)
    assert b.json("status")["pushed"] == []
    a.run("pull")
    assert (a.claude / SESSION).read_text() == transcript("s", 3)
    # Never synced and empty: still nothing to send, nothing to say.
    b.write("projects/-p/new.jsonl", "")
    result = b.json("push")
    assert result["pushed"] == [] and result["warnings"] == []


def test_status_and_a_dry_run_say_an_emptied_transcript_will_merge(machines, repo_dir):
    """A push puts an emptied transcript's records back and sends nothing of it; status and
    `push --dry-run` listed it as a file to push (of 0 bytes), as if the empty file would
    go everywhere."""
    a, b = machines
    edited = SESSION.replace("000000000001", "000000000002")
    a.write(SESSION, transcript("s", 2))
    a.write(edited, transcript("e", 2))
    set_up(a, b, repo_dir)
    (b.claude / SESSION).write_bytes(b"")
    # Rewritten otherwise (here a record edited, none lost), it is sent: still a push.
    noted = transcript("e", 2).replace('"uuid": "e-00001"', '"uuid": "e-00001", "note": "x"')
    b.write(edited, noted)
    for said in (b.json("status"), b.json("push", "--dry-run")):
        assert said["merged"] == [SESSION]
        assert said["pushed"] == [edited]
        assert said["uploaded_bytes"] == (b.claude / edited).stat().st_size
    assert b.json("push", "--dry-run")["downloaded_bytes"] == len(transcript("s", 2))
    assert (b.claude / SESSION).read_bytes() == b""  # a look changes nothing
    assert "will merge:" in b.run("status").stdout
    assert b.json("push")["pushed"] == [edited]
    assert (b.claude / SESSION).read_text() == transcript("s", 2)


def test_the_count_of_sessions_only_in_the_repository_follows_what_no_walk_sees(machines, repo_dir):
    """A clean status keeps its count of sessions only in the repository for the head and
    the walk; a transcript the walk does not see (sessions not synced here) must still be
    counted when it goes (found by a review)."""
    a, b = machines
    a.write(SESSION, transcript("s", 2))
    a.write("CLAUDE.md", "m\n")
    set_up(a, b, repo_dir)
    assert b.json("status")["remote_only_sessions"] == 0
    (b.claude / SESSION).unlink()  # Claude Code's clean-up of old sessions
    assert b.json("status")["remote_only_sessions"] == 1
    b.run("pull", "--all")
    b.run("types", "--disable", "sessions")
    b.run("pull")
    assert b.json("status")["remote_only_sessions"] == 0
    assert b.json("status")["remote_only_sessions"] == 0
    (b.claude / SESSION).unlink()
    assert b.json("status")["remote_only_sessions"] == 1


EMPTY_AT_FIRST_MERGE = """
import os
from claude_sync import merging
merge = merging.Merges.before_push
def emptied(self, plan, local, result, when=os.environ["EMPTY_WHEN"]):
    if when == "before":
        open(os.environ["EMPTY_PATH"], "wb").close()
    answer = merge(self, plan, local, result)
    if when == "after":
        open(os.environ["EMPTY_PATH"], "wb").close()
    return answer
merging.Merges.before_push = emptied
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_transcript_emptied_while_a_push_merges_is_not_pushed_empty(machines, repo_dir, when):
    """A push that merged a file scans and plans again. A transcript Claude Code left empty
    meanwhile (before its records were put back, or again right after) was then planned
    as an upload and sent: every other machine installed the empty file, and its base
    became the empty version there too (found by a review)."""
    a, b = machines
    other = SESSION.replace("000000000001", "000000000002")
    a.write(SESSION, transcript("s", 2))
    a.write(other, transcript("o", 2))
    set_up(a, b, repo_dir)
    a.append(other, transcript("o", 1, start=2))
    a.run("push")
    b.append(other, transcript("o", 1, start=3))  # merged by B's push
    if when == "after":
        (b.claude / SESSION).write_bytes(b"")  # put back by B's push, then emptied again
    env = {"EMPTY_PATH": str(b.claude / SESSION), "EMPTY_WHEN": when}
    os.environ.update(env)
    try:
        proc = b.run_after(EMPTY_AT_FIRST_MERGE, "push")
    finally:
        for key in env:
            del os.environ[key]
    assert proc.returncode == 0, proc.stderr
    assert "could not be put back" in proc.stderr
    a.run("pull")
    assert (a.claude / SESSION).read_text() == transcript("s", 2)
    assert (a.claude / other).read_text() == transcript("o", 4)
    b.run("sync")
    assert (b.claude / SESSION).read_text() == transcript("s", 2)


def test_an_empty_transcript_is_filled_by_a_pull_and_replaced_by_a_restore(machines, repo_dir):
    """An empty file holds nothing: `pull --all` fills one it never synced (an old session
    a plain pull left out, whose file Claude Code made), where it said "changed during
    the pull" each time, and `restore` does not ask to push one first."""
    a, b = machines
    old = "projects/-home-ann-code-app/0ld00000-0000-4000-8000-000000000009.jsonl"
    records = "".join(
        json.dumps({"uuid": f"old-{i}", "type": "user", "timestamp": f"2020-01-0{i + 1}T10:00:00Z"})
        + "\n"
        for i in range(2)
    )
    a.write(old, records, mtime=1_577_000_000)
    a.write(SESSION, transcript("s", 2))
    set_up(a, b, repo_dir)
    assert not (b.claude / old).exists()  # out of the session window
    b.write(old, "")
    result = b.json("pull", "--all")
    assert result["warnings"] == [] and old in result["pulled"]
    assert (b.claude / old).read_text() == records
    (b.claude / SESSION).write_bytes(b"")
    b.run("restore", SESSION, "--snapshot", "1")
    assert (b.claude / SESSION).read_text() == transcript("s", 2)


def test_a_settings_file_emptied_mid_save_is_left_to_its_editor(machines, repo_dir):
    """An editor truncates settings.json, then writes it. A pull in between must leave the
    empty file alone: filled with the other machine's version, the editor's write then
    looked like an edit of that version, and took the other machine's keys out everywhere
    (the model check found it when empty transcripts began to be filled)."""
    a, b = machines
    a.write(SESSION, transcript("s", 1))
    set_up(a, b, repo_dir)
    b.write("settings.json", "")  # a first settings.json, being saved
    a.write("settings.json", json.dumps({"model": "opus"}))
    a.run("push")
    warned = b.json("pull")["warnings"]
    assert warned == [
        "settings.json is empty here (an editor saving it?): not pulled, left as it is"
    ]
    assert (b.claude / "settings.json").read_bytes() == b""
    (b.claude / "settings.json").write_text(json.dumps({"theme": "light"}))
    b.run("sync")
    a.run("pull")
    for m in (a, b):
        merged = json.loads((m.claude / "settings.json").read_text())
        assert merged == {"model": "opus", "theme": "light"}, m


def test_a_rewritten_transcript_that_keeps_changing_waits_without_blaming_damage(
    machines, repo_dir
):
    """A transcript rewritten without a record, and changing again while its records are
    put back, waits for the next push; it used to point to `repair`, as if damaged."""
    a, b = machines
    a.write(SESSION, transcript("s", 3))
    set_up(a, b, repo_dir)
    held = (a.claude / SESSION).read_bytes()
    b.append(SESSION, transcript("s", 1, start=3))
    b.run("push")
    a.run("pull")
    (a.claude / SESSION).write_bytes(held)
    # The file changes between the scan and the merge (Claude Code writing meanwhile).
    code = "from claude_sync import merging\nmerging.as_scanned = lambda *a: False"
    proc = a.run_after(code, "push", "--json")
    warned = json.loads(proc.stdout)["warnings"]
    assert any("changed while its records were being put back" in w for w in warned), warned
    assert not any("repair" in w for w in warned), warned
    a.run("sync")
    assert len((a.claude / SESSION).read_text().splitlines()) == 4


def test_a_file_being_written_under_a_temporary_name_is_never_synced(machines, repo_dir):
    """Claude Code (and other tools) write NAME.tmp or NAME.tmp.PID.TIME, then rename it
    over NAME. Pushed in between, the copy stayed on every machine for good (a transcript's
    deletion never spreads), and both said they were up to date."""
    a, b = machines
    a.write(SESSION, transcript("s", 2))
    set_up(a, b, repo_dir)
    grown = transcript("s", 3)
    temporary = [f"{SESSION}.tmp", "skills/x/SKILL.md.tmp.4242.1764633600000"]
    for rel in temporary:
        a.write(rel, grown)
    a.run("push")
    (a.claude / temporary[0]).rename(a.claude / SESSION)
    a.run("push")
    a.write("commands/notes.tmp.md", "a user's own name\n")
    a.run("push")
    b.run("pull")
    assert (b.claude / SESSION).read_text() == grown
    assert not any((b.claude / rel).exists() for rel in temporary)
    assert (b.claude / "commands/notes.tmp.md").exists()
    assert a.json("status")["pushed"] == [] and b.json("status")["pulled"] == []


def test_a_claude_folder_gone_or_emptied_deletes_nothing_anywhere(machines, repo_dir):
    """`~/.claude` moved aside, or a drive not mounted on it: every file looked deleted,
    and one push deleted every agent, command and setting on every machine."""
    a, b = machines
    a.write("agents/x.md", "x\n")
    a.write("CLAUDE.md", "memory\n")
    a.write(SESSION, transcript("s", 2))
    set_up(a, b, repo_dir)
    shutil.move(a.claude, a.home / "aside")
    for folder in ("missing", "empty"):
        if folder == "empty":
            a.claude.mkdir()
        # A pull said it was up to date, and `pull --all` filled the folder with only the
        # sessions: the next push deleted the rest everywhere.
        for command in (["push"], ["sync"], ["status"], ["pull"], ["pull", "--all"]):
            proc = a.run(*command, check=False)
            assert proc.returncode == 1 and "missing or empty" in proc.stderr, command
    b.run("pull")
    assert (b.claude / "agents/x.md").read_text() == "x\n"
    a.run("restore", "--snapshot", "1")
    assert (a.claude / "CLAUDE.md").read_text() == "memory\n"
    assert a.run("status").stdout.strip().endswith("Everything is up to date.")
    # The last synced file deleted, the folder still there: a deletion like any other.
    (a.claude / "agents/x.md").unlink()
    (a.claude / "CLAUDE.md").unlink()
    a.run("push")
    b.run("pull")
    assert not (b.claude / "agents/x.md").exists()


def test_a_conflict_over_a_long_name_keeps_the_other_version_beside_it(machines, repo_dir):
    """The copy's marker made a 240-byte name longer than a file name may be: every pull
    and sync then failed with an unexpected error."""
    a, b = machines
    name = "agents/" + "n" * 240 + ".md"
    a.write(name, "first\n")
    set_up(a, b, repo_dir)
    a.write(name, "A's version\n")
    a.run("push")
    b.write(name, "B's version\n")
    proc = b.run("pull", check=False)
    assert proc.returncode == 3, proc.stderr
    (copy,) = [p for p in (b.claude / "agents").iterdir() if "claude-sync-conflict" in p.name]
    assert len(copy.name.encode()) <= 255 and copy.read_text() == "A's version\n"
    assert (b.claude / name).read_text() == "B's version\n"


def _deep(home_claude: Path, margin: int) -> str:
    """A file's path (relative to the Claude folder) that is `margin` characters short of
    PATH_MAX under home_claude."""
    room = os.pathconf(home_claude, "PC_PATH_MAX") - 1 - len(str(home_claude)) - 1 - margin
    start, end = "projects/-srv-app/", "/deep.jsonl"
    middle = room - len(start) - len(end)
    parts = ["d" * 200] * (middle // 201)
    parts.append("e" * (middle - 201 * len(parts)))
    return start + "/".join(parts) + end


def test_a_path_too_long_here_is_skipped_and_the_rest_arrives(make_machine, repo_dir):
    """A machine with a longer home than the one that pushed cannot hold a path that was
    just short enough there: that file is skipped with a warning, by pull and by restore;
    every other file arrives, no temporary file is left, and the next pull does the same
    (deleting a session never spreads, so the file may stay in the repository for good)."""
    a, b = make_machine("a"), make_machine("b" * 80)
    deep = _deep(a.claude, margin=10)
    a.write(deep, transcript("deep", 2))
    a.write("agents/x.md", "x\n")
    a.write("projects/-srv-app/s.jsonl", transcript("s", 2))
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    b.run("init", str(repo_dir))
    for _ in range(2):
        proc = b.run("pull", "--all", check=False)
        assert proc.returncode == 0, proc.stderr
        assert "(File name too long); skipped" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert (b.claude / "agents/x.md").read_text() == "x\n"
        assert (b.claude / "projects/-srv-app/s.jsonl").exists()
    target = b.home / "restored"
    proc = b.run("restore", "--snapshot", "1", "--target", str(target), check=False)
    assert proc.returncode == 1, proc.stderr
    assert "(File name too long); skipped" in proc.stderr, proc.stderr
    assert proc.stderr.endswith("error: 1 file could not be restored (the warnings say why)\n")
    again = b.run(
        "--json", "restore", "--snapshot", "1", "--target", str(target), "--force", check=False
    )
    got = json.loads(again.stdout)
    assert (got["exit_code"], got["skipped"]) == (1, [deep]), got
    assert (target / "agents/x.md").read_text() == "x\n"
    for tree in (b.claude, target):
        left = [p for p in tree.rglob("*") if resources.TMP_MARKER in p.name]
        assert left == [], left


def test_a_folder_where_the_repository_has_a_file_is_said_and_kept(machines, repo_dir):
    a, b = machines
    a.write("commands/clash.md", "a's command\n")
    a.write("agents/x.md", "x\n")
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    b.write("commands/clash.md/inner.md", "b's file\n")
    b.run("init", str(repo_dir))
    proc = b.run("pull", check=False)
    assert "commands/clash.md is a folder here, with files in it: not pulled" in proc.stderr
    assert "changed during the pull" not in proc.stderr, proc.stderr
    assert (b.claude / "commands/clash.md/inner.md").read_text() == "b's file\n"
    assert (b.claude / "agents/x.md").read_text() == "x\n"


# The user edits a file while `resolve` downloads the version they chose.
EDIT_DURING_PULL = textwrap.dedent(
    """
    import os
    from claude_sync import downloads
    download = downloads.Downloads._download_into

    def racing(self, staged, result, *args):
        failed = download(self, staged, result, *args)
        for s in staged:
            if s.path == "agents/x.md" and os.path.exists(s.dest):
                with open(s.dest, "w") as fh:
                    fh.write("edited during resolve\\n")
        return failed

    downloads.Downloads._download_into = racing
    """
)


def test_an_edit_made_while_resolve_runs_is_kept(machines, repo_dir):
    """`resolve --take remote` met the file changed meanwhile: its pull left it, and the
    sync's second round pulled it again with `--take remote`, over the edit."""
    a, b = machines
    a.write("agents/x.md", "first\n")
    set_up(a, b, repo_dir)
    a.write("agents/x.md", "a's version\n")
    a.run("push")
    b.write("agents/x.md", "b's version\n")
    assert b.json("pull", expect=3)["conflicts"] == ["agents/x.md"]
    copies = sorted(p.name for p in (b.claude / "agents").iterdir())
    proc = b.run_after(EDIT_DURING_PULL, "resolve", "agents/x.md", "--take", "remote")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "changed during the pull" in proc.stderr
    assert (b.claude / "agents/x.md").read_text() == "edited during resolve\n"
    assert sorted(p.name for p in (b.claude / "agents").iterdir()) == copies
    assert b.json("conflicts")["conflicts"] == ["agents/x.md"]
    b.run("resolve", "agents/x.md", "--take", "remote")
    assert (b.claude / "agents/x.md").read_text() == "a's version\n"


def test_a_big_tree_walked_on_two_processes_misses_nothing(machines, repo_dir):
    """Past forked_walk.WORTH_FILES files a push walks half the projects folder in a forked
    copy of itself: what changed in either half is pushed, nothing else, and odd names
    there are said, as a walk on one process says them."""
    from claude_sync import forked_walk

    a, b = machines
    line = json.dumps({"type": "user", "message": {"role": "user", "content": "hi"}}) + "\n"
    for n in range(forked_walk.WORTH_FILES + 40):
        a.write(f"projects/-srv-p{n % 40:02d}/s{n:05d}.jsonl", line)
    a.run("init", str(repo_dir))
    a.run("push")
    a.append("projects/-srv-p01/s00001.jsonl", line)  # in the child's half (every other)
    a.append("projects/-srv-p02/s00002.jsonl", line)
    a.write("projects/-srv-p03/new.jsonl", line)
    a.write("projects/-srv-p05/bad\nname.jsonl", line)
    pushed = a.json("push")
    assert sorted(pushed["pushed"]) == [
        "projects/-srv-p01/s00001.jsonl",
        "projects/-srv-p02/s00002.jsonl",
        "projects/-srv-p03/new.jsonl",
    ]
    assert pushed["skipped"] == ["projects/-srv-p05/bad\nname.jsonl"]
    assert a.json("status")["pushed"] == []
    b.run("init", str(repo_dir))
    b.run("pull")
    assert (b.claude / "projects/-srv-p01/s00001.jsonl").read_text() == line * 2
    assert (b.claude / "projects/-srv-p03/new.jsonl").read_text() == line
