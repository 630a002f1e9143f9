"""Review of the lazily read head and chunk lists (format 7): cases the change's own tests
do not reach."""

from __future__ import annotations

from engine_pair import EngineMachines
from memory_store import MemoryStore

from claude_sync.repository import ChangedFiles, FileEntry, Repository, Snapshot
from claude_sync.repository.format import encode_json, snapshot_name


def seal_json(repo: Repository, name: str, obj: object) -> None:
    repo.store.objects[name] = repo.keys.seal(name, encode_json(obj))  # type: ignore[attr-defined]


def test_a_push_onto_a_version_1_head_keeps_the_files_it_did_not_change():
    """A version 1 snapshot (claude-sync before 0.2) lists its files in its root and names
    no parts: a push's ChangedFiles must not take that for 'no untouched group'."""
    store = MemoryStore()
    repo = Repository.create(store, None)
    entry = {"sha256": "0" * 64, "size": 2, "mtime_ns": 5, "mode": 0o600, "chunks": [["1" * 64, 2]]}
    v1 = {"version": 1, "repo_id": repo.config.repo_id, "seq": 1, "parent": None}
    files = {"CLAUDE.md": entry, "agents/a.md": entry}
    seal_json(repo, snapshot_name(1), {**v1, "device": "old", "time": 1.0, "files": files})
    old = repo.load_snapshot(1)
    added = FileEntry("0" * 64, 2, 5, 0o600, (("1" * 64, 2),))
    changed = ChangedFiles(old.files, {"agents/b.md": added})
    assert repo.write_snapshot(Snapshot(2, 1, "new", 2.0, changed, parent_id=old.id), old)
    assert set(repo.load_snapshot(2).files) == {"CLAUDE.md", "agents/a.md", "agents/b.md"}


def test_a_push_onto_a_version_1_head_drops_no_file_for_other_machines(tmp_path):
    """End to end: machine 0 pushes, its snapshot is rewritten as version 1 (as claude-sync
    before 0.2 wrote it); machine 1 pulls, adds an agent and pushes; machine 2 pulls
    CLAUDE.md too."""
    pair = EngineMachines(tmp_path)
    pair.write(0, "CLAUDE.md", "memory\n")
    pair.write(0, "agents/a.md", "agent a\n")
    pair.run(0, "push")
    repo = Repository.open(pair.store, pair.master)
    head = repo.load_snapshot(1)
    v1 = {"version": 1, "repo_id": repo.config.repo_id, "seq": 1, "parent": None}
    files = {p: e.to_json() for p, e in head.files.items()}
    seal_json(repo, snapshot_name(1), {**v1, "device": "old", "time": 1.0, "files": files})
    pair.run(1, "pull")
    assert pair.read(1, "CLAUDE.md") == "memory\n"
    pair.write(1, "agents/b.md", "agent b\n")
    pair.run(1, "push")
    pair.run(2, "pull")
    assert set(Repository.open(pair.store, pair.master).load_snapshot(2).files) == {
        "CLAUDE.md",
        "agents/a.md",
        "agents/b.md",
    }
    assert pair.read(2, "CLAUDE.md") == "memory\n"
