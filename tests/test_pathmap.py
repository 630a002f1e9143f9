"""Resume anywhere: project folders follow the home directory and user path maps."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Machine, transcript
from hypothesis import given
from hypothesis import strategies as st

from claude_sync.pathmap import MAX_NAME, PathMapper, encode

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
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    bad = b.run("import", str(junk), check=False)
    assert bad.returncode == 1 and "not a claude-sync session archive" in bad.stderr
