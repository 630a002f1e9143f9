"""Resume anywhere, end to end: project folders follow the home directory and the user's
path maps (`map`, `where`) between two machines whose homes differ. The mapping rules
themselves are tested in-process in ../test_pathmap.py."""

from __future__ import annotations

import json

from conftest import Machine, transcript

from claude_sync.pathmap import encode


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


def test_a_map_added_after_a_push_writes_no_folder_named_after_the_old_copy(tmp_path):
    """A project pushed from under the home, then mapped to a label: the repository keeps
    its old copy (`~-work-api`), which has no folder here any more. `pull --all` wrote it
    to a folder literally named `~-work-api`, which Claude Code never reads."""
    a = Machine(tmp_path / "a" / "home" / "ann")
    a.home.mkdir(parents=True)
    folder = encode(str(a.home / "work" / "api"))
    a.write(f"projects/{folder}/s1.jsonl", transcript("s1", 3))
    a.run("init", str(tmp_path / "repository"), "--create")
    a.run("push")
    a.run("map", str(a.home / "work"), "work")
    a.append(f"projects/{folder}/s1.jsonl", transcript("s1", 1, start=3))
    a.run("push")  # now stored as @work-api too
    result = a.json("pull", "--all")
    assert any("under their old name" in w for w in result["warnings"])
    assert sorted(p.name for p in (a.claude / "projects").iterdir()) == [folder]
    assert a.json("status")["remote_only_sessions"] == 0
