"""The folders a pull writes into: looked at without a system call per missing folder,
made parents first (none tried before the one it is in), and those made named, so that a
pull that fails leaves none of them behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from unittest import mock

import pytest
from engine_pair import EngineMachines

from claude_sync import downloads as downloads_module
from claude_sync.engine import Result


@pytest.mark.skipif(os.name == "nt", reason="Windows resolves each folder whole (junctions)")
def test_nothing_below_a_missing_folder_is_looked_at(tmp_path: Path) -> None:
    root = tmp_path / "claude"
    (root / "projects").mkdir(parents=True)
    folders = {
        root / "projects" / f"p{p}" / f"s{s}" / "subagents" for p in range(5) for s in range(20)
    }
    looked: list[str] = []
    lstat = os.lstat

    def counting(path: str, *args: object, **kwargs: object) -> os.stat_result:
        looked.append(path)
        return lstat(path, *args, **kwargs)  # type: ignore[arg-type]

    with mock.patch.object(downloads_module.os, "lstat", counting):
        assert downloads_module._outside([root.resolve()], folders, root) == {}
    # root's own parts, "projects", and each missing project folder: not its 100 below
    below = [p for p in looked if p.startswith(str(root / "projects") + os.sep)]
    assert sorted(below) == sorted(str(root / "projects" / f"p{p}") for p in range(5))


def test_a_missing_folder_below_a_link_out_is_still_refused(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "claude", tmp_path / "elsewhere"
    (root / "skills").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "skills" / "pdf").symlink_to(elsewhere)
    folders = {root / "skills" / "pdf" / "new" / "deeper", root / "agents" / "new"}
    outside = downloads_module._outside([root.resolve()], folders, root)
    assert list(outside) == [root / "skills" / "pdf" / "new" / "deeper"]


def test_folders_are_made_parents_first_and_those_made_are_named(tmp_path: Path) -> None:
    pair = EngineMachines(tmp_path)
    engine = pair.engine(1)
    root = pair.root(1)
    (root / "projects" / "here").mkdir(parents=True)
    deep = [f"projects/p{p}/s{s}/subagents/a.jsonl" for p in range(3) for s in range(4)]
    outputs = {p: (str(root / p), None) for p in [*deep, "projects/here/s.jsonl"]}
    failed: list[tuple[str, int]] = []
    mkdir = os.mkdir

    def recording(path: str, *args: object) -> None:
        try:
            mkdir(path, *args)  # type: ignore[arg-type]
        except OSError as exc:
            failed.append((path, exc.errno))
            raise

    with mock.patch.object(downloads_module.os, "mkdir", recording):
        dropped, made = engine.downloads.drop_unwritable(outputs, root, Result())  # type: ignore[arg-type]
    assert dropped == []
    # Only what existed is met (once each); nothing missing is tried before its parent.
    assert sorted(failed) == sorted(
        (str(f), errno.EEXIST) for f in (root, root / "projects", root / "projects" / "here")
    )
    expected = {root / "projects" / f"p{p}" for p in range(3)}
    expected |= {root / "projects" / f"p{p}" / f"s{s}" for p in range(3) for s in range(4)}
    expected |= {f / "subagents" for f in expected if f.name.startswith("s")}
    assert made == expected
    assert all(f.is_dir() for f in made)


def test_a_folder_that_cannot_be_made_skips_its_files_and_names_why(tmp_path: Path) -> None:
    pair = EngineMachines(tmp_path)
    engine = pair.engine(1)
    root = pair.root(1)
    (root / "projects").mkdir(parents=True)
    (root / "projects" / "blocked").write_text("a file where a folder goes\n")
    outputs = {
        p: (str(root / p), None) for p in ("projects/blocked/s/a.jsonl", "projects/open/a.jsonl")
    }
    result = Result()
    dropped, made = engine.downloads.drop_unwritable(outputs, root, result)  # type: ignore[arg-type]
    assert dropped == ["projects/blocked/s/a.jsonl"]
    assert result.warnings == [
        f"cannot write projects/blocked/s/a.jsonl: {root / 'projects/blocked/s'} cannot be "
        "created (Not a directory); skipped"
    ]
    assert made == {root / "projects" / "open"}
