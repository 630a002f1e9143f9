"""History is a hash chain; a fork or rollback served by the
storage is refused (and resolved without losing either side), junk names cannot move the
counter, and what a hook found reaches the user."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Machine, snapshot_tree, transcript

if TYPE_CHECKING:
    from cloud_servers import Server

pytest_plugins = ["cloud_servers"]

SESSION = "projects/-home-ann-code-app/11111111-2222-3333-4444-555555555555.jsonl"


class Storage:
    """The repository as the storage provider sees it: a place it may drop objects from."""

    def __init__(
        self,
        remote: str,
        drop: Callable[[str], None],
        env: dict[str, str] | None = None,
        init_args: list[str] | None = None,
    ) -> None:
        self.remote, self.drop = remote, drop
        self.env, self.init_args = env or {}, init_args or []

    def machine(self, make_machine: Callable[[str], Machine], name: str) -> Machine:
        m = make_machine(name)
        m.env.update(self.env)
        return m


@pytest.fixture(params=["folder", "moto"])
def storage(request: pytest.FixtureRequest, repo_dir: Path) -> Storage:
    if request.param == "folder":
        return Storage(str(repo_dir), lambda name: (repo_dir / name).unlink())
    server: Server = request.getfixturevalue("moto_server")
    bucket = "t-" + uuid.uuid4().hex[:16]
    server.make_bucket(bucket)
    client = server.s3()

    def drop(name: str) -> None:
        client.delete_object(Bucket=bucket, Key=f"claude/{name}")

    return Storage(f"s3://{bucket}/claude", drop, server.env, server.init_args())


def init(storage: Storage, m: Machine, device: str) -> None:
    m.run("init", storage.remote, "--device", device, *storage.init_args)


def one_error_line(proc) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_a_fork_is_refused_and_resolved_keeping_both_edits(storage: Storage, make_machine):
    a, b = storage.machine(make_machine, "a"), storage.machine(make_machine, "b")
    a.write(SESSION, transcript("s", 3))
    init(storage, a, "laptop")
    a.run("push")  # snapshot 1
    init(storage, b, "desktop")
    b.run("pull")
    a.append(SESSION, transcript("s", 1, start=3))  # A's edit: message 3
    a.run("push")  # snapshot 2, which the storage then drops
    storage.drop("snapshots/0000000002")
    b.append(SESSION, transcript("s", 1, start=10))  # B's edit: message 10
    b.run("push")  # B's own snapshot 2: the storage now shows a forked history
    # (A push with nothing to send does not contact the storage, so it has nothing to say.)
    a.write("agents/a.md", "more of A's work\n")
    before = snapshot_tree(a.claude)
    for command in ("pull", "status", "push", "sync"):
        line = one_error_line(a.run(command, check=False))
        assert "fork" in line and "--allow-rollback" in line
        assert snapshot_tree(a.claude) == before
    b.append(SESSION, transcript("s", 1, start=11))
    b.run("push")  # snapshot 3, on B's branch: still not A's history
    assert "fork" in one_error_line(a.run("pull", check=False))
    assert snapshot_tree(a.claude) == before
    # A accepts the repository as it is: its edit is merged in, not replaced.
    a.run("sync", "--allow-rollback")
    b.run("pull")
    for m in (a, b):
        text = (m.claude / SESSION).read_text()
        assert all(f"message {i} " in text for i in (0, 1, 2, 3, 10, 11)), m.home
        assert (m.claude / "agents/a.md").exists()
    assert a.run("pull").returncode == 0 and a.run("status").returncode == 0


def test_verify_reports_a_forked_history(make_machine, repo_dir, tmp_path):
    a, b = make_machine("a"), make_machine("b")
    a.write("agents/x.md", "1\n")
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    b.run("pull")
    a.write("agents/x.md", "2\n")
    a.run("push")
    kept = tmp_path / "a2"
    (repo_dir / "snapshots/0000000002").rename(kept)
    b.write("agents/y.md", "b\n")
    b.run("push")  # B's 2
    b.write("agents/y.md", "b2\n")
    b.run("push")  # B's 3, child of B's 2
    (repo_dir / "snapshots/0000000002").unlink()
    kept.rename(repo_dir / "snapshots/0000000002")  # A's 2 back: 3 does not continue it
    proc = b.run("verify", check=False)
    assert proc.returncode == 1 and "does not continue snapshot 2" in proc.stderr


def test_a_junk_snapshot_name_does_not_move_the_counter(make_machine, repo_dir):
    a = make_machine("a")
    a.write("agents/x.md", "1\n")
    a.run("init", str(repo_dir))
    a.run("push")
    junk = repo_dir / "snapshots/9999999999"
    junk.write_bytes(b"\x01" + b"junk" * 20)
    proc = a.run("pull", check=False)
    assert "failed authentication" in one_error_line(proc)
    junk.unlink()
    # Nothing was remembered from the junk: no rollback alarm now that it is gone.
    assert a.run("pull").returncode == 0
    a.write("agents/x.md", "2\n")
    assert a.json("push")["snapshot"] == 2


def test_a_rollback_found_by_a_hook_reaches_the_user(make_machine, repo_dir):
    a, b = make_machine("a"), make_machine("b")
    a.write("agents/x.md", "1\n")
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    a.write("agents/x.md", "2\n")
    a.run("push")
    b.run("pull")
    (repo_dir / "snapshots/0000000002").unlink()
    b.run("hook-worker", "session-start")  # what Claude Code's hook runs, in the background
    assert "rollback" in (b.config_dir / "hooks.log").read_text()
    shown = b.run("log")
    assert "warning: the last sync stopped:" in shown.stderr and "rollback" in shown.stderr
    doctor = b.run("doctor", check=False)
    assert doctor.returncode == 1 and "✗ history:" in doctor.stdout
    b.run("pull", "--allow-rollback")
    assert "warning" not in b.run("log").stderr
    assert "✓ history:" in b.run("doctor", check=False).stdout


def test_the_chain_is_followed_across_pruned_snapshots(make_machine, repo_dir):
    a, b = make_machine("a"), make_machine("b")
    a.write("agents/x.md", "0\n")
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    b.run("pull")  # B last saw snapshot 1
    for i in range(1, 4):
        a.write("agents/x.md", f"{i}\n")
        a.run("push")
    a.run("prune", "--keep-last", "1")  # snapshots 1 to 3 are forgotten
    assert sorted(p.name for p in (repo_dir / "snapshots").iterdir()) == ["0000000004"]
    assert b.run("pull").returncode == 0  # no false fork alarm
    assert (b.claude / "agents/x.md").read_text() == "3\n"
    assert "No problems found" in a.run("verify").stdout
    # A forgotten-history record cannot stand in for a snapshot of another branch:
    b.write("agents/x.md", "b\n")
    b.run("push")  # 5
    (repo_dir / "snapshots/0000000005").unlink()
    a.write("agents/x.md", "a\n")
    a.run("push")  # A's 5: B's 5 is not among its ancestors
    assert "fork" in one_error_line(b.run("pull", check=False))
