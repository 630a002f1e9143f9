"""What a scan reads, and what it reports as skipped instead: never a silent gap."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from claude_sync import resources
from claude_sync.resources import (
    TMP_MARKER,
    Skipped,
    linked_tops,
    scan,
    select,
)


def found(root: Path, names: list[str] | None = None, only: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    skipped: list[Skipped] = []
    sel = select(names or [], {"hooks": True})
    if only:
        sel = type(sel)(sel.types, only=only)
    files = sorted(f.local_path for f in scan(root, sel, skipped))
    return files, {s.local_path: s for s in skipped}


def write(root: Path, rel: str, data: str = "x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    return path


def test_a_scan_reads_synced_files_and_reports_the_rest(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    write(root, "agents/a.md")
    write(root, "agents/sub/b.md")
    write(root, "settings.json", "{}")
    write(root, "statsig/x")
    write(root, "agents/.credentials.json")
    write(root, "agents/empty.md", "")
    (root / "agents/dir.md").mkdir()
    write(tmp_path, "outside.md")
    (root / "agents/out.md").symlink_to(tmp_path / "outside.md")
    (root / "agents/in.md").symlink_to(root / "agents/a.md")
    (root / "agents/broken.md").symlink_to(root / "nowhere")
    (root / "agents/linked").symlink_to(root / "agents/sub")
    write(root, "agents/back\\slash.md")
    os.mkfifo(root / "agents/pipe.md")
    paths, skipped = found(root)
    assert paths == ["agents/a.md", "agents/in.md", "agents/sub/b.md", "settings.json"]
    outside = tmp_path.resolve() / "outside.md"
    expected = [
        Skipped("agents/back\\slash.md", False, "has a backslash in its name"),
        Skipped("agents/broken.md", True, "is a broken link or a link loop"),
        Skipped("agents/empty.md", False, "is empty"),
        Skipped("agents/linked", True, "is a linked folder, which is not followed"),
        Skipped("agents/out.md", True, f"is a link to {outside}, outside the synced folder"),
        Skipped("agents/pipe.md", False, "is not a regular file"),
    ]
    assert sorted(skipped.values(), key=lambda s: s.local_path) == expected


def test_a_scan_lists_each_folder_s_files_before_its_subfolders(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    for rel in (
        "agents/b/x.md",
        "agents/b/c/y.md",
        "agents/b/a.md",
        "agents/z.md",
        "agents/a/q.md",
    ):
        write(root, rel)
    sel = select(["agents"], {})
    assert [f.local_path for f in scan(root, sel, [])] == [
        "agents/z.md",
        "agents/a/q.md",
        "agents/b/a.md",
        "agents/b/x.md",
        "agents/b/c/y.md",
    ]


def test_a_scan_of_some_paths_reads_only_those(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    write(root, "agents/a.md")
    write(root, "agents/b/c.md")
    write(root, "commands/k.md")
    assert found(root, only=("agents/b",))[0] == ["agents/b/c.md"]
    assert found(root, only=("agents/a.md", "commands/k.md"))[0] == ["agents/a.md", "commands/k.md"]
    assert found(root, ["commands"])[0] == ["commands/k.md"]
    assert found(tmp_path / "missing")[0] == []


def test_a_linked_resource_is_followed_where_it_points(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    root.mkdir()
    dotfiles = tmp_path / "dotfiles"
    write(dotfiles, "agents/a.md")
    write(dotfiles, "CLAUDE.md")
    write(tmp_path, "elsewhere.md")
    (dotfiles / "agents/out.md").symlink_to(tmp_path / "elsewhere.md")
    (root / "agents").symlink_to(dotfiles / "agents")
    (root / "CLAUDE.md").symlink_to(dotfiles / "CLAUDE.md")
    (root / "rules").symlink_to(tmp_path / "nowhere")
    write(dotfiles, "agents/sub/b.md")
    paths, skipped = found(root)
    assert paths == ["CLAUDE.md", "agents/a.md", "agents/sub/b.md"]
    assert set(skipped) == {"agents/out.md", "rules"}
    assert skipped["rules"] == Skipped("rules", True, "is a broken link or a link loop")
    # One file of a linked folder, alone: followed into the dotfiles too.
    assert found(root, only=("agents/sub/b.md",))[0] == ["agents/sub/b.md"]
    assert linked_tops(root) == {
        "CLAUDE.md": str((dotfiles / "CLAUDE.md").resolve()),
        "agents": str((dotfiles / "agents").resolve()),
    }


def test_a_folder_linked_out_of_the_claude_folder_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    root.mkdir()
    write(tmp_path, "todos/t.json")
    (root / "todos").symlink_to(tmp_path / "todos")
    paths, skipped = found(root, ["todos"])
    assert paths == [] and skipped["todos"].folder


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_an_unreadable_folder_is_skipped_not_empty(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    write(root, "agents/locked/a.md")
    (root / "agents/locked").chmod(0)
    try:
        paths, skipped = found(root)
    finally:
        (root / "agents/locked").chmod(0o755)
    assert paths == []
    assert skipped["agents/locked"] == Skipped(
        "agents/locked", True, "cannot be read (Permission denied)"
    )


def test_stale_temporary_files_are_removed_and_fresh_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / ".claude"
    # In a folder, and at the top, beside CLAUDE.md (no folder walk passes there).
    stale = [write(root, f"agents/{TMP_MARKER}-old"), write(root, f"{TMP_MARKER}-old-0")]
    time.sleep(1.2)
    monkeypatch.setattr(resources, "STALE_TMP_SECONDS", 1)
    fresh = [write(root, f"agents/{TMP_MARKER}-new"), write(root, f"{TMP_MARKER}-new-0")]
    # A pull's finished file has its own old time, just set: not stale.
    os.utime(fresh[0], (time.time() - 3600, time.time() - 3600))
    assert found(root)[0] == []
    assert not any(p.exists() for p in stale) and all(p.exists() for p in fresh)


def test_names_not_utf8_or_holding_backslashes_or_control_characters_are_reported(
    tmp_path: Path,
) -> None:
    root = tmp_path / ".claude"
    write(root, "agents/ok.md")
    with open(os.fsencode(root / "agents") + b"/caf\xe9.md", "w") as fh:
        fh.write("x")
    write(root, "agents/sub\\dir/x.md")
    write(root, "agents/new\nline.md")
    write(root, "agents/tab\tdir/x.md")
    write(root, "statsig/new\nline")  # in no synced folder: not said
    paths, skipped = found(root)
    assert paths == ["agents/ok.md"]
    control = "has a control character in its name"
    assert skipped == {
        "agents/caf?.md": Skipped("agents/caf?.md", False, "has a name that is not valid UTF-8"),
        "agents/sub\\dir": Skipped("agents/sub\\dir", False, "has a backslash in its name"),
        "agents/new\nline.md": Skipped("agents/new\nline.md", False, control),
        "agents/tab\tdir": Skipped("agents/tab\tdir", False, control),
    }


def test_a_folder_linked_outside_is_recorded_as_a_folder(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    root.mkdir()
    write(tmp_path, "plans/p.md")
    (root / "plans").symlink_to(tmp_path / "plans")
    target = (tmp_path / "plans").resolve()
    assert found(root, ["plans"])[1] == {
        "plans": Skipped("plans", True, f"is a link to {target}, outside the synced folder")
    }


def test_globs_reach_the_selection() -> None:
    sel = select(["agents"], {}, include=("agents/a*",), exclude=("*.bak",))
    assert sel.include == ("agents/a*",) and sel.exclude == ("*.bak",)


def test_a_link_inside_a_linked_folder_is_judged_against_where_the_folder_leads(
    tmp_path: Path,
) -> None:
    root = tmp_path / ".claude"
    root.mkdir()
    dotfiles = tmp_path / "dotfiles"
    write(dotfiles, "agents/a.md")
    (dotfiles / "agents/sub").mkdir()
    (dotfiles / "agents/sub/c.md").symlink_to(dotfiles / "agents/a.md")
    (root / "agents").symlink_to(dotfiles / "agents")
    assert found(root, only=("agents/sub/c.md",)) == (["agents/sub/c.md"], {})
    assert found(root, ["commands"], only=("agents/a.md",)) == ([], {})


def test_a_link_loop_in_place_of_a_folder_is_skipped(tmp_path: Path) -> None:
    root = tmp_path / ".claude"
    root.mkdir()
    (root / "rules").symlink_to(root / "rules2")
    (root / "rules2").symlink_to(root / "rules")
    assert found(root, ["rules"])[1] == {
        "rules": Skipped("rules", True, "is a broken link or a link loop")
    }
