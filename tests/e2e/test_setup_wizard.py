"""The `init` wizard, driven through a pseudo-terminal like a person would."""

from __future__ import annotations

import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pexpect
import pytest
from conftest import PASSPHRASE, Machine
from git_servers import bare_repo, git

if TYPE_CHECKING:
    from cloud_servers import Server

pytest_plugins = ["cloud_servers"]

DEFAULT, FOLDER, GIT, S3, S3_COMPATIBLE, R2, GCS = "1234567"


def wizard(m: Machine, *args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
    """`claude-sync init` on a terminal, with no passphrase in the environment."""
    environ = m.environ(passphrase=None) | {"TERM": "dumb", "COLUMNS": "200"} | (env or {})
    return pexpect.spawn(
        sys.executable,
        ["-m", "claude_sync", "init", *args],
        env=environ,
        cwd=str(m.home),
        encoding="utf-8",
        timeout=60,
    )


def choose(child: pexpect.spawn, provider: str) -> None:
    child.expect("Choose a storage provider")
    child.sendline(provider)


def new_passphrase(child: pexpect.spawn, passphrase: str = PASSPHRASE) -> None:
    child.expect(r"Choose \[1\]")
    child.sendline("1")
    child.expect("New passphrase")
    child.sendline(passphrase)
    child.expect("Repeat for confirmation")
    child.sendline(passphrase)


def finish(child: pexpect.spawn) -> str:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def round_trip(a: Machine, b: Machine, remote_args: list[str]) -> None:
    """What the wizard set up works: b joins without the wizard and receives a's files."""
    a.write("agents/reviewer.md", "be kind\n")
    a.run("push")
    b.run("init", *remote_args)
    b.run("pull")
    assert (b.claude / "agents/reviewer.md").read_text() == "be kind\n"


def test_folder_with_re_asked_invalid_input(make_machine, tmp_path):
    a, b = make_machine("a"), make_machine("b")
    (tmp_path / "a-file").write_text("x")
    repo = tmp_path / "shared" / "repo"
    child = wizard(a)
    choose(child, "9")
    child.expect("not in the range")
    choose(child, FOLDER)
    child.expect(r"Folder \[.*/\.local/share/claude-sync/repository\]")
    child.sendline(str(tmp_path / "a-file"))
    child.expect("is a file, not a folder")
    child.expect("Folder")
    child.sendline(str(repo))
    child.expect(r"does not exist\. Create it\? \[Y/n\]")
    child.sendline("")
    child.expect("is empty: a new repository will be created")
    child.expect(r"Choose \[1\]")
    child.sendline("3")
    child.expect("not in the range")
    new_passphrase(child, "short")
    child.expect("at least 8 characters")
    child.expect("New passphrase")
    child.sendline(PASSPHRASE)
    child.expect("Repeat for confirmation")
    child.sendline("something else entirely")
    child.expect("do not match")
    child.expect("New passphrase")
    child.sendline(PASSPHRASE)
    child.expect("Repeat for confirmation")
    child.sendline(PASSPHRASE)
    out = finish(child)
    assert f"claude-sync init {repo}" in out
    assert (a.config_dir / "config.json").exists()
    round_trip(a, b, [str(repo)])


def test_default_folder_takes_the_passphrase_from_the_environment(make_machine):
    a = make_machine("a")
    child = wizard(a, env={"CLAUDE_SYNC_PASSPHRASE": PASSPHRASE})
    child.expect(r"1\) The default folder.*\r\n\s+.*/\.local/share/claude-sync/repository")
    choose(child, "")  # the default folder is the pre-selected answer
    child.expect(r"Choose \[1\]")
    child.sendline("")
    child.expect("from the environment")
    finish(child)
    assert (a.home / ".local/share/claude-sync/repository/config").exists()


def test_join_existing_repository_asks_only_the_passphrase(make_machine, repo_dir):
    a, b = make_machine("a"), make_machine("b")
    a.run("init", str(repo_dir))
    a.write("agents/x.md", "from a\n")
    a.run("push")
    child = wizard(b)
    choose(child, FOLDER)
    child.expect("Folder")
    child.sendline(str(repo_dir))
    child.expect("already holds a claude-sync repository: joining it")
    child.expect("Passphrase")
    child.sendline("not the passphrase")
    child.expect("wrong passphrase")
    child.expect("Passphrase")
    child.sendline(PASSPHRASE)
    out = finish(child)
    assert "Joined the repository" in out and "New passphrase" not in out
    b.run("pull")
    assert (b.claude / "agents/x.md").read_text() == "from a\n"


def test_recovery_key_only_repository(make_machine, repo_dir):
    a, b = make_machine("a"), make_machine("b")
    child = wizard(a)
    choose(child, FOLDER)
    child.expect("Folder")
    child.sendline(str(repo_dir))
    child.expect(r"Choose \[1\]")
    child.sendline("2")
    child.expect(r"(csr1-[A-Z2-7-]+)")
    key = child.match.group(1)
    child.expect("type its last 6 characters")
    child.sendline("XXXXXX")
    child.expect("does not match")
    child.expect("type its last 6 characters")
    child.sendline(key[-6:].lower())
    out = finish(child)
    assert f"--recovery-key {key}" in out
    assert not list((repo_dir / "keys").glob("*")), "no passphrase key object"
    # key export makes a new recovery key (a key object of its own, which follows key epochs)
    assert a.run("key", "export").stdout.strip().startswith("csr2-")
    # Without a passphrase key, only the recovery key joins.
    assert b.run("init", str(repo_dir), check=False).returncode != 0
    round_trip(a, b, [str(repo_dir), "--recovery-key", key])


def test_git_bare_repository_by_path_and_git_file_url(make_machine, tmp_path):
    a, b, c = make_machine("a"), make_machine("b"), make_machine("c")
    bare = bare_repo(tmp_path / "vault.git")
    child = wizard(a)
    choose(child, GIT)
    child.expect("Git repository URL")
    child.sendline("ftp://example.com/x.git")
    child.expect("unsupported git remote")
    child.expect("Git repository URL")
    child.sendline(str(bare))
    child.expect(r"Branch \(empty")
    child.sendline("bad branch")
    child.expect("not a valid branch name")
    child.sendline("")
    new_passphrase(child)
    out = finish(child)
    assert f"claude-sync init git+file://{bare}" in out
    assert "config" in git("ls-tree", "-r", "--name-only", "main", cwd=bare)
    round_trip(a, b, [f"git+file://{bare}"])
    # A third machine joins through the wizard with the git+file URL as typed.
    child = wizard(c)
    choose(child, GIT)
    child.expect("Git repository URL")
    child.sendline(f"git+file://{bare}")
    child.expect(r"Branch \(empty")
    child.sendline("")
    child.expect("joining it")
    child.expect("Passphrase")
    child.sendline(PASSPHRASE)
    finish(child)


def test_s3_compatible_server_creates_a_missing_bucket(make_machine, moto_server: Server):
    a, b = make_machine("a"), make_machine("b")
    for m in (a, b):
        m.env.update(moto_server.env)
    bucket = f"wizard-{uuid.uuid4().hex[:8]}"
    child = wizard(a)
    choose(child, S3_COMPATIBLE)
    child.expect("Endpoint URL")
    child.sendline("localhost:9000")
    child.expect("looks like https://host")
    child.expect("Endpoint URL")
    child.sendline(moto_server.endpoint_url)
    child.expect("Bucket")
    child.sendline("No_Such")
    child.expect("not a valid bucket name")
    child.expect("Bucket")
    child.sendline(bucket)
    child.expect(r"Folder inside the bucket.*\[claude\]")
    child.sendline("")
    child.expect("does not exist.*Create it at the end")
    child.sendline("y")
    new_passphrase(child)
    out = finish(child)
    command = f"claude-sync init s3://{bucket}/claude --endpoint-url {moto_server.endpoint_url}"
    assert command in out
    assert "claude/config" in moto_server.objects(bucket)
    round_trip(a, b, [f"s3://{bucket}/claude", *moto_server.init_args()])


def test_unreachable_remote_goes_back_to_the_menu(make_machine, tmp_path):
    a = make_machine("a")
    child = wizard(a, env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    choose(child, S3_COMPATIBLE)
    child.expect("Endpoint URL")
    child.sendline("http://127.0.0.1:9")  # nothing listens on the discard port
    child.expect("Bucket")
    child.sendline("bucket")
    child.expect("Folder inside the bucket")
    child.sendline("")
    child.expect("cannot reach")
    child.expect("choose the storage again")
    choose(child, FOLDER)
    child.expect("Folder")
    child.sendline(str(tmp_path / "repo"))
    child.expect("Create it")
    child.sendline("y")
    new_passphrase(child)
    finish(child)


@pytest.mark.parametrize("step", ["menu", "passphrase", "recovery-confirmation"])
def test_ctrl_c_leaves_nothing_behind(make_machine, tmp_path, step):
    a = make_machine("a")
    repo = tmp_path / "new" / "repo"
    child = wizard(a)
    if step != "menu":
        choose(child, FOLDER)
        child.expect("Folder")
        child.sendline(str(repo))
        child.expect("Create it")
        child.sendline("y")
        child.expect(r"Choose \[1\]")
    if step == "passphrase":
        child.sendline("1")
        child.expect("New passphrase")
    elif step == "recovery-confirmation":
        child.sendline("2")
        child.expect("type its last 6 characters")
        assert (repo / "config").exists(), "created just before the confirmation"
    else:
        child.expect("Choose a storage provider")
    child.kill(signal.SIGINT)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus not in (0, None) or child.signalstatus == signal.SIGINT
    assert not a.config_dir.exists()
    assert not (tmp_path / "new").exists()
    assert not (a.home / ".local").exists()


def test_no_wizard_when_already_set_up(make_machine, repo_dir):
    a = make_machine("a")
    a.run("init", str(repo_dir))
    child = wizard(a)
    child.expect("already set up")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert Path(repo_dir / "config").exists()
