"""Resume anywhere, the rules: project folders follow the home directory and user path maps,
between POSIX and Windows homes (end to end: e2e/test_sessions_anywhere.py)."""

from __future__ import annotations

import json
from pathlib import Path, PureWindowsPath

from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync.pathmap import (
    MAX_NAME,
    TOO_LONG,
    HomeFilter,
    PathMapper,
    claude_folder,
    encode,
    wsl_windows_homes,
)

segment = st.text(alphabet="abcxyz019._- ", min_size=1, max_size=12)
rel_dirs = st.lists(segment, min_size=0, max_size=4).map(lambda parts: "/".join(parts))


def test_encode_matches_claude_code():
    assert encode("/Users/ann/my.app") == "-Users-ann-my-app"
    assert encode("/home/ann/code_x/ü") == "-home-ann-code-x--"
    # Its JavaScript replaces UTF-16 units: an emoji is two.
    assert encode("/home/ann/café/😀/x") == "-home-ann-caf-----x"


# Computed by Claude Code 2.1's own function (its JavaScript, run by node).
CUT_BY_CLAUDE_CODE = {
    "/home/ann/" + "d" * 250: encode("/home/ann/" + "d" * 250)[:MAX_NAME] + "-er7ehb",
    "/home/ann/café/😀/" + "x" * 200: "-home-ann-caf-----" + "x" * 182 + "-y8g9df",
    "/Users/b/" + "y" * 195 + "/😀z": "-Users-b-" + "y" * 191 + "-jnx38e",
    "/a/" + "é" * 300: "-a-" + "-" * 197 + "-z7n8gt",
    "/" + "z" * 200: "-" + "z" * 199 + "-6zubpt",
}


def test_claude_folder_cuts_long_names_as_claude_code_does():
    assert claude_folder("/home/ann/code/app") == "-home-ann-code-app"
    assert claude_folder("/" + "z" * 199) == "-" + "z" * 199  # 200: not cut
    for directory, folder in CUT_BY_CLAUDE_CODE.items():
        assert claude_folder(directory) == folder


def test_a_folder_too_long_here_is_told_apart():
    short, longer = PathMapper(Path("/home/a")), PathMapper(Path("/home/" + "b" * 40))
    rest = "/code/" + "p" * 180
    logical = short.folder_to_logical(encode("/home/a" + rest))
    assert logical.startswith("~") and longer.folder_to_local(logical) == logical
    assert longer.too_long_here(logical) and not short.too_long_here(logical)
    assert longer.unmapped_label(f"projects/{logical}/s.jsonl") == TOO_LONG
    assert longer.directory_to_logical("/home/" + "b" * 40 + rest) == logical
    assert longer.directory_to_logical("/srv/" + "q" * 300) == claude_folder("/srv/" + "q" * 300)


@given(rel=rel_dirs)
def test_home_relative_folders_land_under_the_other_home(rel):
    a = PathMapper(Path("/Users/ann"))
    b = PathMapper(Path("/home/ann"))
    project_a = "/Users/ann" + ("/" + rel if rel else "")
    project_b = "/home/ann" + ("/" + rel if rel else "")
    logical = a.folder_to_logical(encode(project_a))
    assert logical.startswith("~")
    assert b.folder_to_local(logical) == encode(project_b)
    assert b.folder_to_logical(encode(project_b)) == logical


@given(name=st.text(alphabet="ab-01~@", min_size=1, max_size=40))
def test_round_trip_of_any_logical_name(name):
    mapper = PathMapper(Path("/home/ann"), {"/srv/work": "work"})
    local = mapper.folder_to_local(name)
    assert mapper.folder_to_logical(local) == name or len(local) > MAX_NAME


def test_user_maps_and_unmapped_and_long_names():
    a = PathMapper(Path("/Users/ann"), {"/Users/ann/work": "work"})
    b = PathMapper(Path("/home/ann"), {"/home/ann/src": "work"})
    logical = a.folder_to_logical(encode("/Users/ann/work/api"))
    assert logical == "@work-api"
    assert b.folder_to_local(logical) == encode("/home/ann/src/api")
    assert a.folder_to_logical("-opt-shared-x") == "-opt-shared-x"
    assert b.folder_to_local("-opt-shared-x") == "-opt-shared-x"
    # A map the other machine lacks: the folder keeps its logical name, consistently.
    c = PathMapper(Path("/home/ann"))
    assert c.folder_to_local("@work-api") == "@work-api"
    assert c.folder_to_logical("@work-api") == "@work-api"
    long_name = encode("/Users/ann/" + "x" * 300)[:MAX_NAME] + "-k3j2h1"
    assert a.folder_to_logical(long_name) == long_name
    assert a.to_logical("history.jsonl") == "history.jsonl"
    assert a.to_logical("projects/-Users-ann-q/s.jsonl") == "projects/~-q/s.jsonl"
    assert b.to_local("projects/~-q/s.jsonl") == "projects/-home-ann-q/s.jsonl"


# -- Windows and WSL (pure logic: runs on every system) -----------------------------------

WINDOWS_HOME = PureWindowsPath("C:\\Users\\ann")


def test_windows_project_folders_map_to_and_from_posix_homes():
    win = PathMapper(WINDOWS_HOME, home_aliases=[])
    mac = PathMapper(Path("/Users/ann"), home_aliases=[])
    linux = PathMapper(Path("/home/ann"), home_aliases=[])
    wsl = PathMapper(Path("/home/ann"), home_aliases=["/mnt/c/Users/ann"])
    assert encode("C:\\Users\\ann\\code\\app") == "C--Users-ann-code-app"
    # Both drive-letter cases are one project; pulled folders get the home's own case.
    for name in ("C--Users-ann-code-app", "c--Users-ann-code-app"):
        assert win.folder_to_logical(name) == "~-code-app"
    assert win.folder_to_local("~-code-app") == "C--Users-ann-code-app"
    assert mac.folder_to_local("~-code-app") == "-Users-ann-code-app"
    assert linux.folder_to_local("~-code-app") == "-home-ann-code-app"
    # WSL: a Windows-side project and a Linux-side one are both home projects; pulled
    # sessions go under the Linux home.
    assert wsl.folder_to_logical("-mnt-c-Users-ann-code-app") == "~-code-app"
    assert wsl.folder_to_logical("-home-ann-code-app") == "~-code-app"
    assert wsl.folder_to_local("~-code-app") == "-home-ann-code-app"
    assert win.folder_to_logical(mac.folder_to_local("~-x")) == "-Users-ann-x"  # not home there
    assert win.to_local("projects/~-code-app/s.jsonl") == "projects/C--Users-ann-code-app/s.jsonl"


def test_lower_case_drive_home_writes_its_own_case():
    win = PathMapper(PureWindowsPath("c:\\Users\\ann"), home_aliases=[])
    assert win.folder_to_logical("C--Users-ann-x") == "~-x"
    assert win.folder_to_local("~-x") == "c--Users-ann-x"


def test_wsl_windows_home_is_found_only_under_wsl(monkeypatch):
    monkeypatch.delenv("WSL_DISTRO_NAME", raising=False)
    assert wsl_windows_homes("/home/ann") == []
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu")
    monkeypatch.setattr(
        "glob.glob", lambda pattern: ["/mnt/c/Users/Ann", "/mnt/c/Users/Public", "/mnt/d/Users/x"]
    )
    monkeypatch.setattr("os.path.isdir", lambda p: True)
    assert wsl_windows_homes("/home/ann") == ["/mnt/c/Users/Ann"]


def json_settings(*paths: str) -> bytes:
    return json.dumps({"paths": list(paths)}, indent=2).encode()


def test_backslash_paths_in_settings_map_between_windows_and_posix():
    win = HomeFilter(WINDOWS_HOME)
    linux = HomeFilter(Path("/home/ann"))
    local = json_settings(
        "C:\\Users\\ann\\.claude\\hooks\\x.ps1",
        "c:\\Users\\ann\\code",
        "C:\\Users\\ann",
        "C:\\Users\\anna\\other",
        "C:\\Users\\ann\\bin\\tool.exe --config C:\\Users\\ann\\cfg\\a.json",
        "D:\\Users\\ann\\x",
    )
    logical = win.to_logical(local)
    assert json.loads(logical)["paths"] == [
        "${CLAUDE_SYNC_HOME}/.claude/hooks/x.ps1",
        "${CLAUDE_SYNC_HOME}/code",
        "${CLAUDE_SYNC_HOME}",
        "C:\\Users\\anna\\other",
        "${CLAUDE_SYNC_HOME}/bin/tool.exe --config ${CLAUDE_SYNC_HOME}/cfg/a.json",
        "D:\\Users\\ann\\x",
    ]
    assert json.loads(linux.to_local(logical))["paths"][:3] == [
        "/home/ann/.claude/hooks/x.ps1",
        "/home/ann/code",
        "/home/ann",
    ]
    back = json.loads(win.to_local(linux.to_logical(linux.to_local(logical))))["paths"]
    assert back[0] == "C:\\Users\\ann\\.claude\\hooks\\x.ps1"
    assert back[1] == "C:\\Users\\ann\\code"  # the drive letter as this machine spells it
    assert back[4] == "C:\\Users\\ann\\bin\\tool.exe --config C:\\Users\\ann\\cfg\\a.json"
    from_linux = linux.to_logical(json_settings("/home/ann/.claude/hooks/x.sh"))
    assert json.loads(win.to_local(from_linux))["paths"] == ["C:\\Users\\ann\\.claude\\hooks\\x.sh"]


path_text = st.lists(
    st.sampled_from(["C:\\Users\\ann", "c:\\Users\\ann", "\\", "/", "code", " ", "a.b", "&", "x"]),
    max_size=8,
).map("".join)


@settings(max_examples=300, print_blob=True)
@given(paths=st.lists(path_text, max_size=4))
def test_windows_filter_is_stable_and_json_stays_valid(paths):
    win = HomeFilter(WINDOWS_HOME)
    logical = win.to_logical(json_settings(*paths))
    json.loads(logical)
    assert win.to_logical(win.to_local(logical)) == logical
    assert json.loads(HomeFilter(Path("/home/ann")).to_local(logical))
