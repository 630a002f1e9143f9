"""Project folder prefixes match whole path components, never a longer name."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from claude_sync.pathmap import CUT_BEFORE, PathMapper, claude_folder, encode


def test_the_home_does_not_claim_a_sibling_with_a_longer_name() -> None:
    mapper = PathMapper(PurePosixPath("/home/ann"), home_aliases=[])
    assert mapper.folder_to_logical("-home-ann-code") == "~-code"
    assert mapper.folder_to_logical("-home-ann") == "~"
    assert mapper.folder_to_logical("-home-annie-code") == "-home-annie-code"
    assert mapper.to_logical("projects/-home-annie/s.jsonl") == "projects/-home-annie/s.jsonl"


def test_a_map_does_not_claim_a_sibling_with_a_longer_name() -> None:
    mapper = PathMapper(PurePosixPath("/home/ann"), {"/srv/work": "work"}, home_aliases=[])
    assert mapper.folder_to_logical("-srv-work-app") == "@work-app"
    assert mapper.folder_to_logical("-srv-workshop") == "-srv-workshop"
    assert mapper.folder_to_local("@work-app") == "-srv-work-app"


def test_the_longest_matching_folder_wins() -> None:
    from claude_sync.pathmap import HistoryFilter

    mapper = PathMapper(PurePosixPath("/home/ann"), {"/home/ann/work": "work"}, home_aliases=[])
    assert mapper.folder_to_logical("-home-ann-work-app") == "@work-app"
    assert mapper.folder_to_logical("-home-ann-play") == "~-play"
    assert mapper.folder_to_local("@work-app") == "-home-ann-work-app"
    history = HistoryFilter(mapper)
    line = b'{"project": "/home/ann/work/app"}'
    assert history.to_logical(line) == b'{"project": "${CLAUDE_SYNC_PATH:@work}/app"}'


def test_other_homes_of_this_user_are_read_as_home_but_never_written() -> None:
    aliases = ["/mnt/c/Users/ann", "D:\\Users\\ann"]
    mapper = PathMapper(PurePosixPath("/home/ann"), home_aliases=aliases)
    assert mapper.folder_to_logical("-mnt-c-Users-ann-x") == "~-x"
    assert mapper.folder_to_logical("D--Users-ann-x") == "~-x"
    assert mapper.folder_to_logical("d--Users-ann-x") == "~-x"
    assert mapper.folder_to_local("~-x") == "-home-ann-x"


def test_a_windows_home_reads_both_drive_letter_cases_and_writes_its_own() -> None:
    mapper = PathMapper("C:\\Users\\ann", home_aliases=[])
    assert mapper.folder_to_logical("C--Users-ann-x") == "~-x"
    assert mapper.folder_to_logical("c--Users-ann-x") == "~-x"
    assert mapper.folder_to_local("~-x") == "C--Users-ann-x"
    assert PathMapper("/home/ann", home_aliases=[]).read_only == set()


def test_a_home_reached_through_a_link_is_matched_by_both_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from claude_sync.pathmap import encode

    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    mapper = PathMapper(tmp_path / "link", home_aliases=[])
    assert mapper.folder_to_logical(encode(str(real)) + "-x") == "~-x"
    assert mapper.folder_to_logical(encode(str(tmp_path / "link")) + "-x") == "~-x"


def test_wsl_finds_the_windows_home_of_the_same_user(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from claude_sync import pathmap

    found = ["/mnt/c/Users/Ann", "/mnt/c/Users/bob", "/mnt/d/Users/ann"]
    monkeypatch.setattr(pathmap.glob, "glob", lambda pattern: found)
    monkeypatch.setattr(pathmap.os.path, "isdir", lambda p: p != "/mnt/d/Users/ann")
    monkeypatch.delenv("WSL_DISTRO_NAME", raising=False)
    assert pathmap.wsl_windows_homes("/home/ann") == []
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu")
    assert pathmap.wsl_windows_homes("/home/ann") == ["/mnt/c/Users/Ann"]
    mapper = PathMapper(PurePosixPath("/home/ann"))
    assert mapper.folder_to_logical("-mnt-c-Users-Ann-x") == "~-x"


def test_only_project_folders_are_renamed() -> None:
    mapper = PathMapper(PurePosixPath("/home/ann"), home_aliases=[])
    for path in ("history.jsonl", "projects", "projects/", "agents/-home-ann"):
        assert mapper.to_logical(path) == path and mapper.to_local(path) == path
    assert mapper.to_logical("projects/-home-ann-x") == "projects/~-x"
    assert mapper.to_local("projects/~-x/a/b.jsonl") == "projects/-home-ann-x/a/b.jsonl"


def test_a_label_without_a_folder_here_is_reported() -> None:
    mapper = PathMapper(PurePosixPath("/home/ann"), {"/srv/w": "w"}, home_aliases=[])
    assert mapper.has_label("w") and not mapper.has_label("x") and not mapper.has_label("~")
    assert mapper.unmapped_label("projects/@x-app/s.jsonl") == "x"
    assert mapper.unmapped_label("projects/@x/s.jsonl") == "x"
    assert mapper.unmapped_label("projects/@w-app/s.jsonl") is None
    assert mapper.unmapped_label("projects/~-app/s.jsonl") is None
    assert mapper.unmapped_label("agents/@x-app") is None


def test_history_paths_keep_bytes_that_are_not_utf8() -> None:
    from claude_sync.pathmap import HistoryFilter

    history = HistoryFilter(PathMapper(PurePosixPath("/home/ann"), home_aliases=[]))
    line = b'{"project": "/home/ann/caf\xe9"}'
    stored = history.to_logical(line)
    assert stored == b'{"project": "${CLAUDE_SYNC_PATH:~}/caf\xe9"}'
    assert history.to_local(stored) == line
    assert history.to_local(b'{"project": "${CLAUDE_SYNC_PATH:~}/caf\xe9"}') == line


def test_a_session_resumed_in_another_folder_keeps_its_project_both_ways() -> None:
    moved = {"s1": ["-tmp-elsewhere", "~-code-app"]}
    mapper = PathMapper(PurePosixPath("/home/ann"), home_aliases=[], moved=moved)
    for rest in ("/s1.jsonl", "/s1/subagents/agent-1.jsonl"):
        assert mapper.to_logical(f"projects/-tmp-elsewhere{rest}") == f"projects/~-code-app{rest}"
        assert mapper.to_local(f"projects/~-code-app{rest}") == f"projects/-tmp-elsewhere{rest}"
    # Other sessions, and the moved one under another folder, follow the usual rules.
    assert (
        mapper.to_logical("projects/-tmp-elsewhere/s2.jsonl") == "projects/-tmp-elsewhere/s2.jsonl"
    )
    assert mapper.to_logical("projects/-home-ann-x/s1.jsonl") == "projects/~-x/s1.jsonl"
    assert mapper.to_local("projects/~-x/s1.jsonl") == "projects/-home-ann-x/s1.jsonl"


def test_a_project_beside_the_home_keeps_its_name(tmp_path) -> None:
    """`/home/ann-work/x` is Claude Code's `-home-ann-work-x`, the name of `/home/ann/work/x`
    too: it was stored as a home project (`~-work-x`) and placed under the other machine's
    home. A folder beside the home decides, unless the home has one of that name too."""
    home = tmp_path / "ann"
    (home / "code").mkdir(parents=True)
    for sibling in ("ann-work", "ann.old", "ann-code", "annie"):
        (tmp_path / sibling).mkdir()
    (tmp_path / "ann-file").write_text("not a folder")
    mapper = PathMapper(home, home_aliases=[])
    enc = encode(str(tmp_path))
    for name in (f"{enc}-ann-work-x", f"{enc}-ann-old", f"{enc}-ann-file-x"):
        expected = name if "file" not in name else "~-file-x"
        assert mapper.folder_to_logical(name) == expected
        assert mapper.folder_to_local(expected) == name
    # ann-code beside and ann/code inside: the home's, as it always was
    assert mapper.folder_to_logical(f"{enc}-ann-code-app") == "~-code-app"
    assert mapper.folder_to_logical(f"{enc}-annie-x") == f"{enc}-annie-x"
    assert mapper.folder_to_logical(f"{enc}-ann-x") == "~-x"
    # Another machine's home project of that name has no folder here it could take.
    assert mapper.folder_to_local("~-work-x") == "~-work-x"


def test_a_cut_folder_is_known_by_its_projects_name_and_no_longer_by_its_own(tmp_path) -> None:
    """Its sessions sync under the project's name (read from their cwd); the cut name an
    older claude-sync pushed them under has no place here any more: a `pull --all` wrote
    those old copies over the files there ("changed during the pull", every time)."""
    home = tmp_path / ("h" * 60)
    directory = home / "code" / ("p" * 150)
    cut = claude_folder(str(directory))
    folder = tmp_path / "projects" / cut
    folder.mkdir(parents=True)
    (folder / "s.jsonl").write_text(json.dumps({"cwd": str(directory)}) + "\n")
    mapper = PathMapper(home, home_aliases=[], projects=str(tmp_path / "projects"))
    logical = "~" + encode(str(directory))[len(encode(str(home))) :]
    assert mapper.folder_to_logical(cut) == logical
    assert mapper.folder_to_local(logical) == cut
    assert mapper.unmapped_label(f"projects/{cut}/s.jsonl") == CUT_BEFORE
    assert mapper.unmapped_label(f"projects/{logical}/s.jsonl") is None
