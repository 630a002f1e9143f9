"""Resume anywhere: project folders follow the home directory and user path maps."""

from __future__ import annotations

import json
from pathlib import Path, PureWindowsPath

from conftest import Machine, transcript
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync.pathmap import MAX_NAME, HomeFilter, PathMapper, encode, wsl_windows_homes

segment = st.text(alphabet="abcxyz019._- ", min_size=1, max_size=12)
rel_dirs = st.lists(segment, min_size=0, max_size=4).map(lambda parts: "/".join(parts))


def test_encode_matches_claude_code():
    assert encode("/Users/ann/my.app") == "-Users-ann-my-app"
    assert encode("/home/ann/code_x/ü") == "-home-ann-code-x--"


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


def test_session_resumes_under_a_different_home(tmp_path):
    a = Machine(tmp_path / "a" / "Users" / "ann")
    b = Machine(tmp_path / "b" / "home" / "ann")
    for m in (a, b):
        m.home.mkdir(parents=True)
    repo = tmp_path / "repository"
    folder_a = encode(str(a.home / "code" / "app"))
    folder_b = encode(str(b.home / "code" / "app"))
    mapped_a = encode(str(a.home / "work" / "api"))
    mapped_b = encode(str(b.home / "src" / "api"))
    a.write(f"projects/{folder_a}/s1.jsonl", transcript("s1", 3))
    a.write(f"projects/{folder_a}/s1/subagents/agent-1.jsonl", transcript("x", 2))
    a.write(f"projects/{mapped_a}/s2.jsonl", transcript("s2", 3))
    a.write("projects/-opt-elsewhere/s3.jsonl", transcript("s3", 3))
    a.run("init", str(repo), "--create")
    a.run("map", str(a.home / "work"), "work")
    a.run("push")
    b.run("init", str(repo))
    b.run("map", str(b.home / "src"), "work")
    where = b.run("where", str(b.home / "code" / "app")).stdout
    assert f"projects/{folder_b}" in where and "+ s1 (from the remote)" in where
    b.run("pull")
    assert (b.claude / f"projects/{folder_b}/s1.jsonl").read_text() == transcript("s1", 3)
    assert (b.claude / f"projects/{folder_b}/s1/subagents/agent-1.jsonl").exists()
    assert (b.claude / f"projects/{mapped_b}/s2.jsonl").exists()
    assert (b.claude / "projects/-opt-elsewhere/s3.jsonl").exists()
    assert not (b.claude / f"projects/{folder_a}").exists()
    # B appends; A gets the append in its own folder, with no new logical paths.
    b.append(f"projects/{folder_b}/s1.jsonl", transcript("s1", 1, start=3))
    assert b.json("push")["pushed"] == ["projects/~-code-app/s1.jsonl"]
    a.run("pull")
    assert (a.claude / f"projects/{folder_a}/s1.jsonl").read_text() == transcript("s1", 4)
    assert "Sessions here:      1" in a.run("where", str(a.home / "code" / "app")).stdout
    bad = a.run("map", str(a.home / "x"), "not/ok", check=False)
    assert bad.returncode == 2
    assert "work" not in a.run("map", str(a.home / "work"), "--remove").stdout


def test_a_label_not_mapped_here_stays_in_the_repository_until_mapped(tmp_path):
    """Written under its label's name, a project would land in a folder Claude Code never
    reads (and come back as a duplicate): it waits in the repository, with a warning."""
    a = Machine(tmp_path / "a" / "Users" / "ann")
    b = Machine(tmp_path / "b" / "home" / "ann")
    for m in (a, b):
        m.home.mkdir(parents=True)
    repo = tmp_path / "repository"
    a.write(f"projects/{encode(str(a.home / 'work' / 'api'))}/s2.jsonl", transcript("s2", 3))
    a.write("agents/x.md", "agent\n")
    a.run("init", str(repo), "--create")
    a.run("map", str(a.home / "work"), "work")
    a.run("push")
    b.run("init", str(repo))
    result = b.json("pull")
    assert result["pulled"] == ["agents/x.md"]
    assert any("'work'" in w and "claude-sync map" in w for w in result["warnings"])
    assert not any(p.name.startswith("@") for p in (b.claude / "projects").glob("*"))
    assert b.json("push")["pushed"] == []
    assert b.json("status")["remote_only_sessions"] == 1
    b.run("map", str(b.home / "src"), "work")
    assert b.json("pull")["pulled"] == ["projects/@work-api/s2.jsonl"]
    assert (b.claude / f"projects/{encode(str(b.home / 'src' / 'api'))}/s2.jsonl").exists()


def test_settings_paths_follow_the_home(tmp_path):
    a = Machine(tmp_path / "a" / "Users" / "ann")
    b = Machine(tmp_path / "b" / "home" / "ann")
    for m in (a, b):
        m.home.mkdir(parents=True)
    settings = {
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": f"{a.home}/bin/notify"}]}]},
        "additionalDirectories": [str(a.home), f"{a.home}/code"],
        "model": "opus",
    }
    a.write("settings.json", json.dumps(settings, indent=2) + "\n")
    a.run("init", str(tmp_path / "repository"), "--create")
    a.run("push")
    b.run("init", str(tmp_path / "repository"))
    b.run("types", "--enable", "settings-commands")  # the hook is a's: b trusts it
    b.run("pull")
    got = json.loads((b.claude / "settings.json").read_text())
    assert got["hooks"]["Stop"][0]["hooks"][0]["command"] == f"{b.home}/bin/notify"
    assert got["additionalDirectories"] == [str(b.home), f"{b.home}/code"]
    assert b.json("push")["pushed"] == []  # the rewritten file is not a change
    got["model"] = "sonnet"
    b.write("settings.json", json.dumps(got, indent=2) + "\n")
    b.run("push")
    a.run("pull")
    back = json.loads((a.claude / "settings.json").read_text())
    assert back["model"] == "sonnet" and back["additionalDirectories"][1] == f"{a.home}/code"


def test_export_and_import_a_session(tmp_path):
    a = Machine(tmp_path / "a" / "Users" / "ann")
    b = Machine(tmp_path / "b" / "home" / "bob")
    for m in (a, b):
        m.home.mkdir(parents=True)
    folder_a = encode(str(a.home / "code" / "app"))
    a.write(f"projects/{folder_a}/s1.jsonl", transcript("s1", 3), mtime=1_700_000_000)
    a.write(f"projects/{folder_a}/s1/subagents/agent-1.jsonl", transcript("x", 2))
    a.write(f"projects/{folder_a}/s2.jsonl", transcript("s2", 3))
    archive = tmp_path / "s1.tar.gz"
    assert "Exported 2 files" in a.run("export", "s1", str(archive)).stdout
    b.run("import", str(archive))
    folder_b = encode(str(b.home / "code" / "app"))
    got = b.claude / f"projects/{folder_b}/s1.jsonl"
    assert got.read_text() == transcript("s1", 3) and got.stat().st_mtime == 1_700_000_000
    assert (b.claude / f"projects/{folder_b}/s1/subagents/agent-1.jsonl").exists()
    assert not (b.claude / f"projects/{folder_b}/s2.jsonl").exists()
    got.write_text("changed\n")
    assert b.run("import", str(archive), check=False).returncode == 2
    b.run("import", str(archive), "--force")
    assert got.read_text() == transcript("s1", 3)
    assert a.run("export", "nope", str(archive), check=False).returncode == 2
    # A unique id prefix names a session, as `resume` takes it; no wildcard widens it.
    assert "several sessions" in a.run("export", "s", str(archive), check=False).stderr
    assert a.run("export", "*", str(archive), check=False).returncode == 2
    a.write(f"projects/{folder_a}/7d3e9f00-aaaa.jsonl", transcript("7d", 1))
    assert "Exported 1 file" in a.run("export", "7d3e", str(archive)).stdout
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    bad = b.run("import", str(junk), check=False)
    assert bad.returncode == 1 and "not a claude-sync session archive" in bad.stderr


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
