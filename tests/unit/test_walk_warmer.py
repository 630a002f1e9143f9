"""A first walk, or one that finds the disk cold, has a child process list the synced folders
beside it (walk_warmer): it looks at the folders it is given and below, never through a
link, opens no file, and is gone once the walk is done; a walk of files this machine has
recorded, from the cache, goes without it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines

from claude_sync import resources, walk_warmer

pytestmark = pytest.mark.skipif(os.name == "nt", reason="no walk warmer on Windows")


def tree(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / ".claude", tmp_path / "outside"
    for folder in ("projects/-a/sub", "projects/-b", "agents/team", "statsig/x", "deep/out/x"):
        (root / folder).mkdir(parents=True)
    (outside / "inner").mkdir(parents=True)
    (root / "projects/-a/s.jsonl").write_text("{}\n")
    (root / "projects/-a/linked").symlink_to(outside)  # a link below: not followed
    (root / "commands").symlink_to(outside)  # a linked synced folder: not listed
    return root, outside


def test_it_lists_below_the_folders_given_and_never_through_a_link(tmp_path: Path) -> None:
    root, _ = tree(tmp_path)
    seen = {
        os.path.relpath(f, root)
        for top in ("projects", "agents", "commands")
        for f in walk_warmer.listed(str(root / top))
    }
    assert seen == {"projects", "projects/-a", "projects/-a/sub", "projects/-b", "agents"} | {
        "agents/team"
    }
    # (A Claude folder that is not there has no folders to list.)
    assert resources.folders_of(tmp_path / "missing", resources.select([], {})) == []


def test_the_child_lists_what_it_is_given_and_is_gone_when_stopped(tmp_path: Path) -> None:
    root, _ = tree(tmp_path)
    child = walk_warmer.start([str(root / "projects"), str(root / "agents")])
    assert child is not None
    assert child.wait(timeout=30) == 0  # done by itself: nothing was wrong with it
    walk_warmer.stop(child)
    walk_warmer.stop(None)
    stuck = walk_warmer.start([str(root / "projects")])
    walk_warmer.stop(stuck)  # wherever it got to
    assert stuck is not None and stuck.poll() is not None


def test_a_walk_of_files_never_recorded_here_has_it_a_cached_one_not(tmp_path: Path) -> None:
    pair = EngineMachines(tmp_path)
    pair.write(0, "agents/a.md", "a")
    pair.write(0, "projects/-srv-app/s.jsonl", '{"n": 1}\n')
    started: list[list[str]] = []
    start = walk_warmer.start

    def counted(folders: list[str]):  # type: ignore[no-untyped-def]
        started.append(folders)
        return start(folders)

    with mock.patch.object(walk_warmer, "start", counted):
        pair.run(0, "push")
        assert len(started) == 1
        real = pair.root(0).resolve()
        assert {str(real / "agents"), str(real / "projects")} <= set(started[0])
        assert all(f.startswith(str(real) + os.sep) for f in started[0])
        pair.write(0, "agents/b.md", "b")
        pair.run(0, "push")
        pair.run(0, "pull")
    assert len(started) == 1


def test_the_child_is_given_no_secret(tmp_path: Path) -> None:
    """Neither in its environment nor in its arguments: only the folders, on its input."""
    root, _ = tree(tmp_path)
    secrets = {"AWS_SECRET_ACCESS_KEY": "sentinel-aws", "CLAUDE_SYNC_PASSPHRASE": "sentinel-pass"}
    with (
        mock.patch.dict(os.environ, secrets),
        mock.patch.object(subprocess, "Popen", wraps=subprocess.Popen) as popen,
    ):
        child = walk_warmer.start([str(root / "projects")])
    walk_warmer.stop(child)
    (args,), kwargs = popen.call_args
    assert "sentinel" not in repr((args, kwargs["env"]))


def test_a_disk_that_is_read_not_cached_is_told_by_its_first_folders(tmp_path: Path) -> None:
    """`cold` lists the synced folders and looks at a few of their subfolders, and times
    it: slower than COLD_LOOK each, they came from the disk. A walk of a tree of at least
    COLD_WALK_FILES recorded files then has the warmer too (as after a reboot); a smaller
    one is not even looked at that way."""
    root, _ = tree(tmp_path)
    folders = [str(root / "agents"), str(root / "commands"), str(root / "projects")]
    with mock.patch.object(walk_warmer, "COLD_LOOK", 0.0):
        assert not walk_warmer.cold(folders)  # three subfolders: too few to tell
        with mock.patch.object(walk_warmer, "PROBE_LEAST", 3):
            assert walk_warmer.cold(folders)
    with (
        mock.patch.object(walk_warmer, "COLD_LOOK", 1.0),
        mock.patch.object(walk_warmer, "PROBE_LEAST", 3),
    ):
        assert not walk_warmer.cold(folders)
    pair = EngineMachines(tmp_path / "pair")
    pair.write(0, "agents/a.md", "a")
    pair.run(0, "push")
    started: list[list[str]] = []
    start = walk_warmer.start

    def counted(folders: list[str]):  # type: ignore[no-untyped-def]
        started.append(folders)
        return start(folders)

    with (
        mock.patch.object(walk_warmer, "start", counted),
        mock.patch.object(walk_warmer, "cold", return_value=True) as looked,
    ):
        pair.write(0, "agents/b.md", "b")
        assert pair.run(0, "push").pushed == ["agents/b.md"]  # type: ignore[attr-defined]
        assert not started and not looked.called  # two files: not worth a look
        with mock.patch.object(walk_warmer, "COLD_WALK_FILES", 2):
            pair.write(0, "agents/c.md", "c")
            assert pair.run(0, "push").pushed == ["agents/c.md"]  # type: ignore[attr-defined]
    assert len(started) == 1
