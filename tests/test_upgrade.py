"""Issue 14: `claude-sync upgrade` moves a format 1/2 repository to format 3 (every snapshot
chained; older claude-sync refuses it), while another machine keeps pushing."""

from __future__ import annotations

import json
import threading

from conftest import PASSPHRASE

from claude_sync import compression, config
from claude_sync.repository import CONFIG_NAME, REPO_FORMAT, Repository
from claude_sync.store.folder import FolderStore


def old_format_repository(repo_dir) -> None:
    """A repository as claude-sync 0.2 made it: config version 1."""
    store = FolderStore(repo_dir)
    store.prepare(create=True)
    repo = Repository.create(store, PASSPHRASE)
    body = repo.config_body() | {"version": 1}
    store.delete(CONFIG_NAME)
    sealed = repo.keys.seal(CONFIG_NAME, compression.pack(json.dumps(body).encode()))
    assert store.put_if_absent(CONFIG_NAME, sealed)


def stored_format(m, repo_dir) -> int:
    settings = config.load_settings(m.config_dir)
    master = config.load_master_key(m.config_dir, settings.repo_id)
    return Repository.open(FolderStore(repo_dir), master).config.version


def test_upgrade_while_another_machine_pushes(make_machine, repo_dir):
    old_format_repository(repo_dir)
    a, b = make_machine("a"), make_machine("b")
    for m in (a, b):
        m.run("init", str(repo_dir))
    for i in range(3):  # history
        a.write("agents/a.md", f"a {i}\n")
        a.run("push")
    b.run("pull")
    assert stored_format(a, repo_dir) == 1
    failures: list[str] = []

    def keep_pushing() -> None:
        for i in range(6):
            b.write(f"agents/b{i}.md", f"b {i}\n")
            proc = b.run("push", check=False)
            if proc.returncode != 0:
                failures.append(proc.stderr)

    pusher = threading.Thread(target=keep_pushing)
    pusher.start()
    out = a.run("upgrade").stdout
    pusher.join()
    assert failures == []
    assert f"Upgraded the repository to format {REPO_FORMAT}" in out
    assert stored_format(b, repo_dir) == REPO_FORMAT
    assert "already uses format" in b.run("upgrade").stdout
    assert not (repo_dir / "config-upgrade").exists()
    a.run("sync")
    b.run("sync")
    for m in (a, b):
        assert sorted(p.name for p in (m.claude / "agents").iterdir()) == [
            "a.md",
            *(f"b{i}.md" for i in range(6)),
        ]
        assert "No problems found" in m.run("verify", "--read-data").stdout


def test_an_upgrade_cut_short_is_completed_by_the_next_open(make_machine, repo_dir):
    old_format_repository(repo_dir)
    a = make_machine("a")
    a.run("init", str(repo_dir))
    a.write("agents/a.md", "a\n")
    a.run("push")
    # The upgrade stopped after storing the new config aside and removing the old one.
    store = FolderStore(repo_dir)
    settings = config.load_settings(a.config_dir)
    repo = Repository.open(store, config.load_master_key(a.config_dir, settings.repo_id))
    body = repo.config_body() | {"version": REPO_FORMAT}
    store.put_if_absent(
        "config-upgrade",
        repo.keys.seal("config-upgrade", compression.pack(json.dumps(body).encode())),
    )
    store.delete(CONFIG_NAME)
    a.write("agents/a.md", "a2\n")
    a.run("push")
    assert stored_format(a, repo_dir) == REPO_FORMAT


def test_new_repositories_use_the_current_format(make_machine, repo_dir):
    a = make_machine("a")
    a.run("init", str(repo_dir))
    assert stored_format(a, repo_dir) == REPO_FORMAT
