"""A pull never overwrites or deletes a local file that changed after the scan that planned
it: the engine in-process, two machines sharing one in-memory repository."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines

from claude_sync import downloads as downloads_module
from claude_sync import durable as durable_module
from claude_sync import limits, resources
from claude_sync import pulling as pulling_module
from claude_sync.downloads import Downloads
from claude_sync.engine import Engine
from claude_sync.errors import SyncError
from claude_sync.install import Installer
from claude_sync.resources import select

AGENT = "agents/x.md"


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[EngineMachines]:
    pair = EngineMachines(tmp_path)
    pair.write(0, AGENT, "first\n")
    pair.run(0, "push")
    pair.run(1, "pull")
    yield pair


def edited_during_install(pair: EngineMachines, m: int, text: str) -> mock._patch:  # type: ignore[type-arg]
    """The user saves the file after the pull planned, just before it installs."""
    install = Installer.install

    def racing(installer: Installer, *args: object) -> set[Path]:
        pair.write(m, AGENT, text)
        return install(installer, *args)  # type: ignore[arg-type]

    return mock.patch.object(Installer, "install", racing)


def test_a_file_edited_during_the_pull_is_not_overwritten(machines: EngineMachines) -> None:
    machines.write(0, AGENT, "second, from m0\n")
    machines.run(0, "push")
    with edited_during_install(machines, 1, "edited on m1 meanwhile\n"):
        result = machines.run(1, "pull")
    assert (machines.root(1) / AGENT).read_text() == "edited on m1 meanwhile\n"
    assert AGENT in result.skipped and AGENT not in result.pulled  # type: ignore[attr-defined]


def test_a_file_edited_during_the_pull_is_not_deleted(machines: EngineMachines) -> None:
    (machines.root(0) / AGENT).unlink()
    machines.run(0, "push")
    with edited_during_install(machines, 1, "edited on m1 meanwhile\n"):
        result = machines.run(1, "pull")
    assert (machines.root(1) / AGENT).read_text() == "edited on m1 meanwhile\n"
    assert AGENT not in result.deleted  # type: ignore[attr-defined]


_removals: list[str] | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _removals is not None and event in ("os.remove", "os.rmdir"):
        _removals.append(str(args[0]))


sys.addaudithook(_audit)


def test_a_pull_removes_only_what_did_not_arrive(machines: EngineMachines) -> None:
    """Nothing moved into place is removed again (at 50,000 files, a failed unlink per file
    and a failed rmdir per folder), and a folder made for a file that did not arrive is."""
    global _removals
    sessions = [f"projects/-home-u-p{p}/s{i}.jsonl" for p in range(3) for i in range(4)]
    for path in sessions:
        machines.write(0, path, '{"type":"user"}\n')
    machines.write(0, "skills/review/SKILL.md", "review\n")
    machines.run(0, "push")
    download = Downloads._download_into

    def losing_the_skill(downloads: Downloads, staged, result, partial, here, writers):  # type: ignore[no-untyped-def]
        lost = download(downloads, staged, result, partial, here, writers)
        return lost | {s.path: "damaged" for s in staged if s.path.startswith("skills/")}

    _removals = []
    try:
        with mock.patch.object(Downloads, "_download_into", losing_the_skill):
            result = machines.run(1, "pull")
        removed, _removals = _removals, None
    except SyncError:
        _removals = None
        raise
    assert sorted(result.pulled) == sorted(sessions)  # type: ignore[attr-defined]
    root = machines.root(1)
    assert not (root / "skills/review").exists()
    here = [Path(r) for r in removed if Path(r).is_relative_to(root)]
    assert here[-2:] == [root / "skills/review", root / "skills"]
    assert [p.parent for p in here[:-2]] == [root / "skills/review"]  # the lost file's


def test_a_pull_takes_the_chunks_a_file_here_already_holds_from_it(tmp_path: Path) -> None:
    """A transcript that grew on another machine costs a pull its new chunks, not the whole
    file again: the old chunks are read from the copy here and checked against their ids."""
    import json
    import random

    pair = EngineMachines(tmp_path)
    rng = random.Random(2)
    session = "projects/-home-u-app/0b7c5a52-31a5-4f49-a2a7-3d4a2b8e1f10.jsonl"

    def records(n: int) -> str:
        return "".join(
            json.dumps({"type": "user", "message": {"content": rng.randbytes(600).hex()}}) + "\n"
            for _ in range(n)
        )

    pair.write(0, session, records(3000))  # ~3.7 MiB of hex (~1.9 MiB packed): several chunks
    pair.run(0, "push")
    assert pair.run(1, "pull").downloaded_bytes > 1_500_000  # type: ignore[attr-defined]
    with (pair.root(0) / session).open("a") as f:
        f.write(records(20))
    pair.run(0, "push")
    result = pair.run(1, "pull")
    assert result.pulled == [session]  # type: ignore[attr-defined]
    assert pair.read(1, session) == pair.read(0, session)
    assert result.downloaded_bytes < 300_000  # type: ignore[attr-defined]


def test_a_pull_tells_the_disk_to_write_what_it_downloads_as_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync that makes a pull durable waits for the last part written, not for all: each
    blob written, and each new file, is counted towards the next write-back (test_durable has
    what it then does)."""
    pair = EngineMachines(tmp_path)
    for n in range(20):  # more than are synced one by one (FSYNC_EACH_UP_TO)
        pair.write(0, f"agents/a{n}.md", os.urandom(40_000).hex())
    pair.run(0, "push")
    counted: list[tuple[int, int]] = []
    wrote = durable_module.WriteBack.wrote
    monkeypatch.setattr(
        durable_module.WriteBack,
        "wrote",
        lambda self, size, files=0: (counted.append((size, files)), wrote(self, size, files))[1],
    )
    assert len(pair.run(1, "pull").pulled) == 20  # type: ignore[attr-defined]
    # each file's bytes, and each file once (what its inode and name cost to write back)
    assert sum(size for size, _ in counted) == 20 * 80_000
    assert sum(files for _, files in counted) == 20
    assert all(
        pair.read(1, f"agents/a{n}.md") == pair.read(0, f"agents/a{n}.md") for n in range(20)
    )


def test_a_transcript_merge_takes_the_shared_chunks_from_the_copy_here(tmp_path: Path) -> None:
    """Appended on both machines, a transcript merges: its base and remote versions share
    their old chunks with the copy here, so only the other machine's new ones travel."""
    import json
    import random

    pair = EngineMachines(tmp_path)
    rng = random.Random(3)
    session = "projects/-home-u-app/0b7c5a52-31a5-4f49-a2a7-3d4a2b8e1f10.jsonl"

    def record(who: str) -> str:
        body = {
            "type": "user",
            "uuid": f"{who}{rng.random()}",
            "message": {"content": rng.randbytes(600).hex()},
        }
        return json.dumps(body) + "\n"

    pair.write(0, session, "".join(record("o") for _ in range(3000)))
    pair.run(0, "push")
    pair.run(1, "pull")
    mine, theirs = record("m1"), record("m0")
    with (pair.root(1) / session).open("a") as f:
        f.write(mine)
    with (pair.root(0) / session).open("a") as f:
        f.write(theirs)
    pair.run(0, "push")
    result = pair.run(1, "pull")
    assert result.downloaded_bytes < 300_000  # type: ignore[attr-defined]
    merged = pair.read(1, session)
    assert merged.endswith(mine) or merged.endswith(theirs)
    assert mine in merged and theirs in merged
    # The merge is cut as grown from the version it begins with: its push sends the new
    # record, not the old last chunk again, and the other machine fetches just that.
    assert pair.run(1, "push").uploaded_bytes < 100_000  # type: ignore[attr-defined]
    assert pair.run(0, "pull").downloaded_bytes < 100_000  # type: ignore[attr-defined]
    assert pair.read(0, session) == merged


def test_chunks_a_file_here_no_longer_holds_are_not_taken_from_it(tmp_path: Path) -> None:
    """What the scan said a file holds is checked against each chunk's id: a file changed
    since gives nothing, and its chunks are downloaded."""
    from claude_sync.planner import LocalFile
    from claude_sync.repository import FileEntry, Repository
    from claude_sync.state import CachedFile, State, StatKey

    pair = EngineMachines(tmp_path)
    repo = Repository.open(pair.store, pair.master)
    engine = Engine(tmp_path, repo, State(tmp_path / "s.db"), "m", tmp_path / "w")
    try:
        file = tmp_path / "f.md"
        file.write_bytes(b"hello world\n")
        right = repo.keys.blob_id(b"hello world\n")
        wrong = repo.keys.blob_id(b"hello there\n")
        stat = StatKey(12, 0, 0, 0)
        here = {
            "agents/f.md": LocalFile(
                "agents/f.md",
                str(tmp_path),
                "f.md",
                CachedFile(stat, 0o644, "0" * 64, ((right, 0, 12),)),
            ),
            "agents/g.md": LocalFile(
                "agents/g.md",
                str(tmp_path),
                "f.md",
                CachedFile(stat, 0o644, "0" * 64, ((wrong, 0, 12),)),
            ),
            "agents/h.md": LocalFile(
                "agents/h.md",
                str(tmp_path),
                "f.md",
                CachedFile(stat, 0o644, "0" * 64, ((right, 0, 12),)),
            ),
        }
        wanted = FileEntry("0" * 64, 0, 0, 0o644, ())
        got: dict[str, bytes] = {}

        def keep(blob_id: str, data: bytes, source: object) -> None:
            got[blob_id] = data

        pulled = [("agents/f.md", wanted), ("agents/g.md", wanted)]
        assert engine.downloads.deliver_from_here({right, wrong}, here, keep, pulled) == {right}
        assert got == {right: b"hello world\n"}
        # Only the copies of the files wanted are looked at.
        got.clear()
        only_g = [("agents/g.md", wanted)]
        assert engine.downloads.deliver_from_here({right, wrong}, here, keep, only_g) == set()
        assert got == {}
        # Another version's chunk that stands in the file though the file was cut otherwise
        # (a merge base whose short last chunk the copy here cut again with its append):
        # found at its place; one past the file's end is not looked for.
        world = repo.keys.blob_id(b"world\n")
        beyond = repo.keys.blob_id(b"world\n!")
        base = FileEntry("0" * 64, 13, 0, 0o644, (("a" * 64, 6), (world, 6), ("b" * 64, 1)))
        later = FileEntry("0" * 64, 13, 0, 0o644, (("a" * 64, 6), (beyond, 7)))
        got.clear()
        versions = [("agents/f.md", base), ("agents/f.md", later), ("agents/x.md", base)]
        found = engine.downloads.deliver_from_here({world, beyond}, here, keep, versions)
        assert found == {world} and got == {world: b"world\n"}
    finally:
        engine.state.close()


def test_a_conflict_over_a_temporary_name_recorded_before_the_upgrade_is_let_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version that synced NAME.tmp files may have recorded a conflict over one; once
    such names are left out, the next pull lets it go (it kept `status` from ever being in
    step, and `conflicts` listed it for good)."""
    machines = EngineMachines(tmp_path)
    path = "agents/x.md.tmp"
    with monkeypatch.context() as old_version:
        old_version.setattr(resources, "is_temporary", lambda p: False)
        old_version.setattr(pulling_module, "is_temporary", lambda p: False)
        machines.write(0, path, "v0")
        machines.run(0, "push")
        machines.run(1, "pull")
        machines.write(0, path, "edit on m0")
        machines.run(0, "push")
        machines.write(1, path, "edit on m1")
        assert [c.path for c in machines.run(1, "pull").conflicts] == [path]
    machines.run(1, "pull")
    engine = machines.engine(1)
    try:
        assert engine.state.conflicts() == {}
        assert engine.pulled_in_full(select([], {}), engine.remote_head.root().seq)
    finally:
        engine.state.close()


def test_room_counts_only_what_a_cut_off_pull_left_on_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cut-off pull's files are written at scattered places: their size counts the holes,
    which take no room. Only what they hold is taken as there already (found by a review:
    a pull that trusted the size filled the disk past the room it keeps free)."""
    folder = tmp_path / "projects" / "-p"
    folder.mkdir(parents=True)
    holes = folder / f"{resources.TMP_MARKER}-a"
    with holes.open("wb") as fh:
        fh.truncate(50 << 20)
    held = folder / f"{resources.TMP_MARKER}-b"
    held.write_bytes(b"x" * (1 << 20))
    (folder / "other").write_bytes(b"y")
    left, unlisted = downloads_module._left_by_a_pull([folder, tmp_path / "gone"])
    assert left == {(folder, holes.name): (50 << 20, 0), (folder, held.name): (1 << 20, 1 << 20)}
    assert unlisted == set()
    free = limits.RESERVE + (60 << 20)
    monkeypatch.setattr(limits.shutil, "disk_usage", lambda _: mock.Mock(free=free))
    with pytest.raises(SyncError, match="not enough free space"):
        limits.check_room([("big", 61 << 20)], tmp_path)
    limits.check_room([("big", 61 << 20)], tmp_path, held=1 << 20)
