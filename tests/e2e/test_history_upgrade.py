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


def two_machines(make_machine, repo_dir, version: int):
    """A and B, joined to a repository as an older claude-sync made it."""
    old_format_repository(repo_dir, version)
    a, b = make_machine("a"), make_machine("b")
    for m in (a, b):
        m.run("init", str(repo_dir))
    return a, b


RECORD = '{"type":"user","message":{"role":"user","content":"%06d %s"}}\n'


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
    a, b = two_machines(make_machine, repo_dir, SPLIT_FORMAT)
    path = "projects/-p/00000000-0000-4000-8000-000000000001.jsonl"
    a.write(path, "".join(RECORD % (i, "x" * (i % 97)) for i in range(8000)))
    a.run("push")
    a.run("upgrade")
    assert stored_format(a, repo_dir) == REPO_FORMAT >= BLAKE3_FORMAT
    a.append(path, "".join(RECORD % (i, "y" * (i % 89)) for i in range(8000, 12000)))
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
    a, b = two_machines(make_machine, repo_dir, LISTS_FORMAT)
    transcript = "projects/-p/00000000-0000-4000-8000-000000000001.jsonl"
    a.write(transcript, "".join(RECORD % (i, "x" * (i % 97)) for i in range(3000)))
    a.write("agents/same.md", "the same everywhere\n")
    a.write("agents/edited.md", "first version\n")
    a.write("CLAUDE.md", "# notes\n")
    a.run("push")
    b.run("pull")
    before = head_ids(a, repo_dir)
    assert not any(i.startswith("b3:") for i in before.values())

    a.run("upgrade")
    assert stored_format(a, repo_dir) == REPO_FORMAT >= IDENTITY_FORMAT
    for m in (a, b):  # read again, unchanged
        os.utime(m.claude / "agents/same.md", (1e9, 1e9))
        os.utime(m.claude / "agents/edited.md", (1e9, 1e9))
    a.append(transcript, RECORD % (3000, "grown after the upgrade"))
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


def upgraded_pair(make_machine, repo_dir, files: dict[str, str]):
    """A and B on a format 7 repository holding files, then upgraded to format 8."""
    a, b = two_machines(make_machine, repo_dir, LISTS_FORMAT)
    for path, text in files.items():
        a.write(path, text, mtime=1e9)
    a.run("push")
    b.run("pull")
    a.run("upgrade")
    return a, b


def test_an_old_copy_here_takes_the_version_stored_after_the_upgrade(make_machine, repo_dir):
    """A file equal to a version stored before the upgrade (SHA-256) has simply not been
    updated, whether on a machine that joins with it or on one that lost its state."""
    files = {"agents/x.md": "first version\n", "settings.json": '{"a": 1}\n'}
    a, b = upgraded_pair(make_machine, repo_dir, files)
    a.write("agents/x.md", "second version, longer\n")
    a.write("settings.json", '{"a": 2, "b": 3}\n')
    a.run("push")
    c = make_machine("c")
    c.write("agents/x.md", "first version\n")
    c.run("init", str(repo_dir))
    for state in b.config_dir.glob("state-*.db*"):
        state.unlink()  # B lost its state database
    for m in (b, c):
        pulled = m.json("pull")
        assert pulled["conflicts"] == [], m.home
        assert (m.claude / "agents/x.md").read_text() == "second version, longer\n"


def test_a_version_changed_back_elsewhere_is_no_conflict_with_a_change_here(make_machine, repo_dir):
    """A changes a file and changes it back after the upgrade: the head holds B's base again,
    under a BLAKE3 id. B's deletion and B's edit are changes to push, not conflicts; and a
    file B changed the same way needs no pull."""
    files = {"agents/x.md": "XXXX\n", "agents/y.md": "XXXX\n", "settings.json": '{"x": 1}\n'}
    a, b = upgraded_pair(make_machine, repo_dir, files)
    for step, text in enumerate(("YYYY\n", "XXXX\n"), 1):
        for path in ("agents/x.md", "agents/y.md"):
            a.write(path, text, mtime=1e9 + 10 * step)
        a.write("settings.json", '{"x": 2}\n' if text == "YYYY\n" else '{"x": 1}\n')
        a.run("push")
    assert all(i.startswith("b3:") for p, i in head_ids(a, repo_dir).items() if "x" in p)
    (b.claude / "agents/x.md").unlink()
    b.write("settings.json", '{"x": 1, "y": 1}\n', mtime=1e9 + 30)
    pushed = b.json("push")
    assert pushed["conflicts"] == []
    assert sorted(pushed["pushed"]) == ["agents/x.md", "settings.json"]
    b.write("agents/y.md", "XXXX\n", mtime=1e9 + 40)  # touched: the same content
    assert b.json("pull")["pulled"] == []
    assert b.json("sync")["conflicts"] == []


COUNT_GROUPS = """
import atexit, sys
from claude_sync.repository import file_list
decoded = []
read = file_list.StoredFiles._decode_group
def counted(self, group):
    decoded.append(group)
    return read(self, group)
file_list.StoredFiles._decode_group = counted
atexit.register(lambda: print("DECODED", len(decoded), file=sys.stderr))
"""


def test_a_push_decodes_only_the_groups_it_changes_whatever_the_kinds(make_machine, repo_dir):
    """Setting ids of the two kinds against each other must not read the whole file list."""
    a, b = make_machine("a"), make_machine("b")
    for m in (a, b):
        m.run("init", str(repo_dir))
    record = '{"type":"user","message":{"role":"user","content":"%d"}}\n'
    for i in range(40):
        a.write(f"projects/-p{i}/00000000-0000-4000-8000-{i:012d}.jsonl", record % i)
    a.run("push")
    b.write("agents/b.md", "from b\n")
    b.run("push")
    a.run("pull")  # the next push looks at the whole tree
    a.append("projects/-p3/00000000-0000-4000-8000-000000000003.jsonl", record % 99)
    proc = a.run_after(COUNT_GROUPS, "push", "--dry-run")
    assert "DECODED 1" in proc.stderr.splitlines(), proc.stderr[-500:]
