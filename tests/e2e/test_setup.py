"""`init` (and `types`): a new user's first hour, through the real CLI with separate HOMEs.

A second machine joins in one command, a typo never becomes a repository, the wizard offers
the default folder first, and init says what to do next; passphrases, recovery keys and bad
remotes. Interactive paths run on a pseudo-terminal; the wizard itself is in
test_setup_wizard.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pexpect
from conftest import PASSPHRASE, Machine
from scenarios import populate

ROOT = Path(__file__).resolve().parents[2]


def terminal(m: Machine, *args: str, passphrase: str | None = PASSPHRASE) -> pexpect.spawn:
    return m.spawn(*args, passphrase=passphrase, term="dumb")


def ended(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, str(child.before)


def default_repo(m: Machine) -> Path:
    return m.home / ".local/share/claude-sync/repository"


# -- 2. a second machine ----------------------------------------------------------------------


def test_second_machine_joins_and_syncs_in_one_command(machines, repo_dir):
    a, b = machines
    a.write("agents/reviewer.md", "be kind\n")
    first = a.run("init", str(repo_dir), "--sync").stdout
    assert "pushed 1 file " in first and "Next:" not in first
    assert f"claude-sync init {repo_dir} --sync" in first
    b.write("commands/deploy.md", "ship it\n")
    out = b.run("init", str(repo_dir), "--sync").stdout
    assert "Joined" in out and "Next:" not in out
    assert "pulled 1 file " in out and "pushed 1 file " in out
    assert (b.claude / "agents/reviewer.md").read_text() == "be kind\n"
    a.run("pull")
    assert (a.claude / "commands/deploy.md").read_text() == "ship it\n"
    # Again on a machine already set up with that remote: it says so and only syncs.
    again = b.run("init", str(repo_dir), "--sync").stdout
    assert "already set up with" in again and "Everything is up to date." in again
    # Another remote is still refused without --force.
    other = repo_dir.parent / "other"
    other.mkdir()
    proc = b.run("init", str(other), check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr


def test_install_script_joins_a_remote_and_does_not_push_twice():
    script = (ROOT / "scripts/install.sh").read_text()
    assert 'init --sync "$@"' in script
    assert re.search(r"^\s*[^#\n]*claude-sync\" push", script, re.M) is None


def test_init_force_onto_the_real_remote_removes_the_quick_start_repository(machines, repo_dir):
    a, b = machines
    a.write("agents/x.md", "from a\n")
    a.run("init", str(repo_dir), "--sync")
    b.write("agents/y.md", "from b\n")
    b.run("init", "--sync")  # the Quick start: the default folder, one snapshot
    assert (default_repo(b) / "config").exists()
    out = b.run("init", str(repo_dir), "--force", "--sync").stdout
    assert "Removed the unused repository" in out
    assert not default_repo(b).exists()
    assert (b.claude / "agents/x.md").read_text() == "from a\n"


def test_init_force_keeps_a_first_repository_with_history(machines, repo_dir):
    a, b = machines
    a.run("init", str(repo_dir))
    b.write("agents/y.md", "1\n")
    b.run("init", "--sync")
    b.write("agents/y.md", "2\n")
    b.run("push")  # a second snapshot: this repository is in use
    out = b.run("init", str(repo_dir), "--force").stdout
    assert "Removed" not in out
    assert len(list((default_repo(b) / "snapshots").iterdir())) == 2


# -- 3. a typo never becomes a repository -----------------------------------------------------


def test_missing_folder_is_an_error_naming_it_unless_create(machines, tmp_path):
    a, b = machines
    typo = tmp_path / "mnt" / "shraed" / "claude-sync"
    proc = a.run("init", str(typo), check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {typo} does not exist")
    assert "--create" in proc.stderr
    assert not (tmp_path / "mnt").exists() and not a.config_dir.exists()
    a.run("init", str(typo), "--create")
    assert (typo / "config").exists()
    # An empty folder the user made is a fine place; a file is not.
    made = tmp_path / "made"
    made.mkdir()
    b.run("init", str(made))
    assert (made / "config").exists()
    c_file = tmp_path / "a-file"
    c_file.write_text("x")
    proc = b.run("init", str(c_file), "--force", check=False)
    assert proc.returncode == 2 and "error:" in proc.stderr


def test_init_on_a_terminal_asks_before_making_a_missing_folder(machines, tmp_path):
    a, b = machines
    missing = tmp_path / "nowhere" / "repo"
    child = terminal(a, "init", str(missing))
    child.expect(r"does not exist\. Create it, with a new repository\? \[y/N\]")
    child.sendline("")
    status, out = ended(child)
    assert status == 2 and "does not exist" in out and "Aborted!" not in out
    assert not missing.parent.exists()
    child = terminal(b, "init", str(missing))
    child.expect("Create it")
    child.sendline("y")
    status, out = ended(child)
    assert status == 0 and "Created a new encrypted repository" in out
    assert (missing / "config").exists()


# -- 4. the Quick start on a terminal -----------------------------------------------------------


def test_default_flag_skips_the_wizard_on_a_terminal(make_machine):
    a = make_machine("a")
    child = terminal(a, "init", "--default")
    status, out = ended(child)
    assert status == 0, out
    assert "storage provider" not in out and "Created a new encrypted repository" in out
    assert (default_repo(a) / "config").exists()
    assert "Next: claude-sync push" in out


def test_no_answer_in_the_wizard_is_a_clear_error_not_aborted(make_machine):
    a = make_machine("a")
    child = terminal(a, "init", passphrase=None)
    child.expect("Choose a storage provider")
    child.sendeof()
    status, out = ended(child)
    assert status == 1
    assert "Aborted!" not in out and "error: cancelled" in out
    assert not a.config_dir.exists() and not default_repo(a).exists()


# -- 5. what init says next; types, help and a damaged set-up ----------------------------------


def test_join_suggests_pull_and_restore_in_place_is_pushed(machines, repo_dir):
    a, b = machines
    a.write("agents/x.md", "v1\n")
    assert "Next: claude-sync push" in a.run("init", str(repo_dir)).stdout
    a.run("push")
    a.write("agents/x.md", "v2\n")
    a.run("push")
    joined = b.run("init", str(repo_dir)).stdout
    assert "Next: claude-sync pull" in joined and "Next: claude-sync push" not in joined
    b.run("pull")
    out = a.run("restore", "agents/x.md", "--snapshot", "1").stdout
    assert "Restored 1 file from snapshot 1; pushed 1 file." in out
    b.run("pull")
    assert (b.claude / "agents/x.md").read_text() == "v1\n"


def test_types_json_help_and_config_errors(cli_inprocess, machines, repo_dir):
    a, _ = machines
    body = json.loads(cli_inprocess("types", "--json", machine=a).stdout)
    names = {t["name"]: t for t in body["types"]}
    assert names["sessions"]["synced"] is True and names["todos"]["opt_in"] is True
    helptext = cli_inprocess("--help", machine=a).stdout
    commands = helptext.split("Commands:")[1]
    assert " hook " not in commands and "hook-worker" not in commands
    flat = " ".join(commands.split())
    assert (
        "Show which sessions `claude --resume` finds in DIRECTORY (default: here) after a pull."
        in flat
    )
    push_help = " ".join(cli_inprocess("push", "--help", machine=a).stdout.split())
    assert "TYPE limits the command to some resource types" in push_help
    assert "Examples: claude-sync push" in push_help
    a.run("init", str(repo_dir))
    config = a.config_dir / "config.json"
    settings = json.loads(config.read_text())
    config.write_text(json.dumps(settings | {"remote": None}))
    proc = cli_inprocess("status", machine=a)
    assert proc.exit_code == 2 and "remote" in proc.stderr and "up to date" not in proc.stdout
    config.write_text(json.dumps(settings))
    (a.config_dir / "state.db").write_bytes(b"not a database" * 100)
    proc = cli_inprocess("status", machine=a)
    assert proc.exit_code == 1 and "safe to delete" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_same_host_name_gives_distinct_device_names(machines, repo_dir):
    a, b = machines
    a.run("init", str(repo_dir))
    b.run("init", str(repo_dir))
    names = [json.loads((m.config_dir / "config.json").read_text())["device"] for m in (a, b)]
    assert names[0] != names[1]
    assert all(re.fullmatch(r".+-[0-9a-f]{4}", n) for n in names), names


# -- passphrases, recovery keys, bad remotes ------------------------------------------------------


def test_no_passphrase_without_terminal_is_a_clear_error(cli_inprocess, machines, repo_dir):
    a, _ = machines
    proc = cli_inprocess("init", str(repo_dir), machine=a, passphrase=None)
    assert proc.exit_code == 2
    assert proc.stderr.startswith("error: a passphrase is needed and there is no terminal")
    assert not repo_dir.exists() or not any(repo_dir.iterdir())


def test_passphrase_file_and_init_refuses_twice(machines, repo_dir, tmp_path):
    a, b = machines
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o644)
    proc = a.run("init", str(repo_dir), "--passphrase-file", str(secret), passphrase=None)
    assert "other users can read the passphrase file" in proc.stderr
    secret.chmod(0o600)
    key_before = (a.config_dir / "key").read_bytes()
    # The same remote again: nothing to do; another one is refused.
    proc = a.run("init", str(repo_dir), check=False)
    assert proc.returncode == 0 and "already set up with" in proc.stdout
    proc = a.run("init", str(tmp_path), check=False)
    assert proc.returncode == 2 and "already set up" in proc.stderr
    assert (a.config_dir / "key").read_bytes() == key_before
    b.env["CLAUDE_SYNC_PASSPHRASE_FILE"] = str(secret)
    assert "warning" not in b.run("init", f"file://{repo_dir}", passphrase=None).stderr
    # The file given beats an old passphrase left in the environment.
    a.run("init", str(repo_dir), "--force", "--passphrase-file", str(secret), passphrase="old one")
    assert json.loads((a.config_dir / "key").read_text()) == json.loads(key_before)
    assert oct(os.stat(a.config_dir / "key").st_mode & 0o777) == "0o600"
    assert oct(os.stat(a.config_dir).st_mode & 0o777) == "0o700"


def test_recovery_key_joins(machines, make_machine, repo_dir):
    a, b = machines
    populate(a)
    a.run("init", str(repo_dir))
    a.run("push")
    recovery = a.run("key", "export").stdout.strip()
    assert recovery.startswith("csr2-")
    bad = b.run(
        "init", str(repo_dir), "--recovery-key", recovery[:-2] + "AA", check=False, passphrase=None
    )
    assert bad.returncode == 1 and "mistyped" in bad.stderr
    b.run("init", str(repo_dir), "--recovery-key", recovery, passphrase=None)
    b.run("pull")
    assert (b.claude / "agents/reviewer.md").read_text().endswith("Review code.\n")
    other = make_machine("other")
    other.run("init", str(other.home / "other-repo"), "--create")
    c = make_machine("c")
    proc = c.run("init", str(other.home / "other-repo"), "--recovery-key", recovery, check=False)
    assert proc.returncode == 1 and "belongs to another repository" in proc.stderr


def test_default_remote_is_a_local_folder(machines):
    a, b = machines
    populate(a)
    a.run("init")
    a.run("push")
    repo = a.home / ".local/share/claude-sync/repository"
    assert (repo / "config").exists()
    b.run("init", str(repo))
    b.run("pull")
    assert (b.claude / "CLAUDE.md").read_text() == "Be terse.\n"


def test_bad_remote_and_not_set_up_are_usage_errors(cli_inprocess, machines, tmp_path):
    a, _ = machines
    for remote in ("relative/path", "ftp://host/x", "file://host/x"):
        proc = cli_inprocess("init", remote, machine=a)
        assert proc.exit_code == 2 and proc.stderr.startswith("error:"), proc.stderr
    proc = cli_inprocess("push", machine=a)
    assert proc.exit_code == 2 and "not set up" in proc.stderr
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "somefile").write_text("x")
    proc = cli_inprocess("init", str(busy), machine=a)
    assert proc.exit_code == 2 and "not empty" in proc.stderr


def test_init_again_on_an_emptied_remote_says_so(make_machine, repo_dir):
    """It said "already set up … Nothing to do." while the remote held nothing."""
    a = make_machine("a")
    a.write("agents/x.md", "x\n")
    a.run("init", str(repo_dir))
    a.run("push")
    assert "Nothing to do" in a.run("init", str(repo_dir)).stdout
    for child in repo_dir.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    proc = a.run("init", str(repo_dir), check=False)
    assert proc.returncode != 0 and "holds no claude-sync repository" in proc.stderr
    assert "--create --force" in proc.stderr
