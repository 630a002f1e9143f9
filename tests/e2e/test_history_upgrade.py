"""`claude-sync upgrade` moves a format 1/2 repository to the current format (every
snapshot chained; older claude-sync refuses it), while another machine keeps pushing.
Format 5 splits a big project's file list into pieces once upgraded."""

from __future__ import annotations

import json
import os
import threading

from conftest import PASSPHRASE

from claude_sync import compression, config
from claude_sync.repository import (
    BLAKE3_FORMAT,
    CHAINED_FORMAT,
    CONFIG_NAME,
    IDENTITY_FORMAT,
    REPO_FORMAT,
    SPLIT_FORMAT,
    Repository,
)
from claude_sync.repository.format import LISTS_FORMAT
from claude_sync.store.folder import FolderStore


def old_format_repository(repo_dir, version: int = 1) -> None:
    """A repository as an older claude-sync made it: config version 1 (0.2) or 3 (0.3)."""
    store = FolderStore(repo_dir)
    store.prepare(create=True)
    repo = Repository.create(store, PASSPHRASE)
    body = repo.config_body() | {"version": version}
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


def test_an_upgraded_repository_splits_a_big_project_and_reads_back(make_machine, repo_dir):
    """Until `upgrade`, a project's whole list is one manifest part (what older claude-sync
    reads); after it, a push after an append to one session writes one small piece, and a
    machine joining later gets every session as written."""
    old_format_repository(repo_dir, CHAINED_FORMAT)
    a = make_machine("a")
    a.run("init", str(repo_dir))
    line = '{"type":"user","message":{"role":"user","content":"%d"}}\n'
    sessions = [f"projects/-p/{i:08x}-0000-4000-8000-000000000000.jsonl" for i in range(200)]
    for i, path in enumerate(sessions):
        a.write(path, line % i)

    def pushed_part() -> int:
        before = set((repo_dir / "manifest").rglob("*"))
        a.run("push")
        (part,) = set((repo_dir / "manifest").rglob("*")) - before
        return part.stat().st_size

    whole = pushed_part()
    a.append(sessions[7], line % 7)
    assert pushed_part() >= whole  # format 3: the whole project again
    a.run("upgrade")
    assert stored_format(a, repo_dir) == REPO_FORMAT
    a.append(sessions[7], line % 7)
    pushed_part()  # the first push after the upgrade splits the project
    a.append(sessions[9], line % 9)
    assert pushed_part() * 4 < whole
    b = make_machine("b")
    b.run("init", str(repo_dir))
    b.run("pull")
    for path in sessions:
        assert (b.claude / path).read_bytes() == (a.claude / path).read_bytes()


def test_a_transcript_that_grows_across_the_upgrade_to_blake3_names_reads_back(
    make_machine, repo_dir
):
    """Format 6 names new blobs by keyed BLAKE3; a file pushed before the upgrade keeps its
    HMAC-named chunks when it grows, and a machine that joined before the upgrade (its cached
    config says format 5) reads both."""
    old_format_repository(repo_dir, SPLIT_FORMAT)
    a, b = make_machine("a"), make_machine("b")
    for m in (a, b):
        m.run("init", str(repo_dir))
    path = "projects/-p/00000000-0000-4000-8000-000000000001.jsonl"
    record = '{"type":"user","message":{"role":"user","content":"%06d %s"}}\n'
    a.write(path, "".join(record % (i, "x" * (i % 97)) for i in range(8000)))
    a.run("push")
    a.run("upgrade")
    assert stored_format(a, repo_dir) == REPO_FORMAT >= BLAKE3_FORMAT
    a.append(path, "".join(record % (i, "y" * (i % 89)) for i in range(8000, 12000)))
    a.run("push")
    b.run("pull")
    assert (b.claude / path).read_bytes() == (a.claude / path).read_bytes()
    for m in (a, b):
        assert "No problems found" in m.run("verify", "--read-data").stdout


def head_ids(m, repo_dir) -> dict[str, str]:
    settings = config.load_settings(m.config_dir)
    master = config.load_master_key(m.config_dir, settings.repo_id)
    repo = Repository.open(FolderStore(repo_dir), master)
    return {p: e.sha256 for p, e in repo.load_snapshot(repo.snapshot_seqs()[-1]).files.items()}


def test_files_keep_their_versions_across_the_upgrade_to_blake3_identities(make_machine, repo_dir):
    """Format 8 names file versions by keyed BLAKE3; versions stored before keep their
    SHA-256 ids. A file read again unchanged (touched) is no change, a file that changed
    gets a `b3:` id, a machine joining with the same files finds nothing to merge, and one
    whose touched file changed elsewhere takes that change: no conflict anywhere."""
    old_format_repository(repo_dir, LISTS_FORMAT)
    a, b = make_machine("a"), make_machine("b")
    for m in (a, b):
        m.run("init", str(repo_dir))
    transcript = "projects/-p/00000000-0000-4000-8000-000000000001.jsonl"
    record = '{"type":"user","message":{"role":"user","content":"%06d %s"}}\n'
    a.write(transcript, "".join(record % (i, "x" * (i % 97)) for i in range(3000)))
    a.write("agents/same.md", "the same everywhere\n")
    a.write("agents/edited.md", "first version\n")
    a.write("CLAUDE.md", "# notes\n")
    a.run("push")
    b.run("pull")
    before = head_ids(a, repo_dir)
    assert not any(i.startswith("b3:") for i in before.values())

    a.run("upgrade")
    assert stored_format(a, repo_dir) == REPO_FORMAT == IDENTITY_FORMAT
    for m in (a, b):  # read again, unchanged
        os.utime(m.claude / "agents/same.md", (1e9, 1e9))
        os.utime(m.claude / "agents/edited.md", (1e9, 1e9))
    a.append(transcript, record % (3000, "grown after the upgrade"))
    pushed = a.json("push")
    assert pushed["pushed"] == [transcript]
    after = head_ids(a, repo_dir)
    assert after[transcript].startswith("b3:")
    assert after["agents/same.md"] == before["agents/same.md"]  # SHA-256, as stored

    a.write("agents/edited.md", "second version, from a\n")
    a.run("push")
    pulled = b.json("pull")
    assert pulled["conflicts"] == []
    assert sorted(pulled["pulled"]) == ["agents/edited.md", transcript]
    assert b.json("push")["pushed"] == []

    c = make_machine("c")  # joins with the same files of its own
    c.write("agents/same.md", "the same everywhere\n")
    c.write("CLAUDE.md", "# notes\n")
    c.run("init", str(repo_dir))
    joined = c.json("pull")
    assert joined["conflicts"] == [] and joined["merged"] == []
    assert "agents/same.md" not in joined["pulled"]
    for m in (a, b, c):
        for path in (transcript, "agents/same.md", "agents/edited.md", "CLAUDE.md"):
            assert (m.claude / path).read_bytes() == (a.claude / path).read_bytes()
        status = m.json("status")
        assert (status["pushed"], status["pulled"], status["conflicts"]) == ([], [], [])
        assert "No problems found" in m.run("verify", "--read-data").stdout
