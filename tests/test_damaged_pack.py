"""A damaged pack: pull installs what is intact, repair uploads the damaged data again."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Machine, snapshot_tree, transcript
from hypothesis import given, note, settings
from hypothesis import strategies as st


def _packs(repo_dir: Path) -> set[Path]:
    return {p for p in (repo_dir / "data").rglob("*") if p.is_file()}


def _damage_newest_pack(make_machine, repo_dir) -> tuple[Machine, Path]:
    """Twelve files in one push, then one more in its own pack, which gets a flipped byte."""
    a = make_machine("a")
    for i in range(6):
        a.write(f"agents/a{i}.md", f"agent {i}\n" * 50)
        a.write(f"rules/r{i}.md", f"rule {i}\n" * 50)
    a.run("init", str(repo_dir), "--device", "laptop")
    return a, _push_then_damage(a, repo_dir, "rules/deep/new.md")


def _push_then_damage(a: Machine, repo_dir: Path, newest: str) -> Path:
    """Push what a has, then the file newest alone in a pack of its own, and flip a byte of
    that pack; returns it."""
    a.run("push")
    before = _packs(repo_dir)
    a.write(newest, "the newest file\n" * 50)
    a.run("push")
    (pack,) = _packs(repo_dir) - before
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    return pack


def test_joining_with_a_damaged_pack_installs_the_intact_files(make_machine, repo_dir):
    a, _ = _damage_newest_pack(make_machine, repo_dir)
    c = make_machine("c")
    proc = c.run("init", str(repo_dir), "--sync", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "claude-sync repair" in last, proc.stderr
    assert "rules/deep/new.md" in proc.stderr, proc.stderr
    # The twelve intact files are here, as they are on a; the damaged one is not, nor its folder.
    expected = snapshot_tree(a.claude)
    got = snapshot_tree(c.claude)
    assert set(got) == set(expected) - {"rules/deep/new.md"}, sorted(got)
    assert all(got[p][0] == expected[p][0] for p in got)
    assert not (c.claude / "rules/deep").exists()
    # Not up to date: the next pull tries again, and still says what is wrong.
    status = c.run("status", check=False)
    assert "up to date" not in status.stdout, status.stdout
    assert "rules/deep/new.md" in status.stdout, status.stdout
    assert "1 file cannot be pulled" in status.stdout, status.stdout
    again = c.run("pull", check=False)
    assert again.returncode == 1 and "rules/deep/new.md" in again.stderr, again.stderr
    # Quiet, the error still has the warning it points to, and nothing else is printed.
    quiet = c.run("-q", "pull", check=False)
    assert quiet.returncode == 1 and quiet.stdout == "", quiet.stdout
    assert [line.split(":")[0] for line in quiet.stderr.splitlines()] == ["warning", "error"]
    assert "rules/deep/new.md" in quiet.stderr.splitlines()[0], quiet.stderr
    as_json = json.loads(c.run("pull", "--json", check=False).stdout)
    assert as_json["unavailable"] == ["rules/deep/new.md"] and as_json["exit_code"] == 1
    assert "could not be downloaded" in as_json["error"]

    # a still has the file: repair finds the damaged pack and uploads its data again.
    fixed = a.run("repair", check=False)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "1 damaged (" in fixed.stdout, fixed.stdout
    c.run("pull")
    # (repair's scan leaves a an empty claude-sync/mcp-servers.json, pushed by no one)
    assert snapshot_tree(c.claude) == {
        p: v for p, v in snapshot_tree(a.claude).items() if not p.startswith("claude-sync/")
    }
    assert "up to date" in c.run("status").stdout
    a.run("verify", "--read-data")


def test_repair_without_the_damaged_files_says_what_stays_broken(make_machine, repo_dir):
    a, _ = _damage_newest_pack(make_machine, repo_dir)
    (a.claude / "rules/deep/new.md").unlink()
    proc = a.run("repair", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 damaged (" in proc.stdout and "error:" in proc.stderr, proc.stderr
    # The index no longer leads to the damaged pack: plain verify sees the loss.
    assert a.run("verify", check=False).returncode == 1


def test_plain_verify_does_not_claim_the_data_is_intact(make_machine, repo_dir):
    a, _ = _damage_newest_pack(make_machine, repo_dir)
    plain = a.run("verify").stdout
    assert "No problems found." not in plain and "--read-data" in plain, plain
    deep = a.run("verify", "--read-data", check=False)
    assert deep.returncode == 1 and "damaged" in deep.stderr, deep.stderr


@settings(max_examples=6, deadline=None, print_blob=True)
@given(damage=st.lists(st.sampled_from(["intact", "flipped", "deleted"]), min_size=3, max_size=3))
def test_a_pull_gets_exactly_the_files_of_intact_packs(tmp_path_factory, damage):
    """Three files, each in its own pack, each pack intact, damaged or gone: the pull installs
    exactly the files of intact packs and names the others; after repair it gets them all."""
    note(f"packs: {damage}")
    root = tmp_path_factory.mktemp("damage")
    repo_dir = root / "repository"
    repo_dir.mkdir()
    a, c = Machine(root / "a"), Machine(root / "c")
    a.home.mkdir()
    c.home.mkdir()
    a.run("init", str(repo_dir))
    packs: dict[str, Path] = {}
    for i in range(3):
        before = _packs(repo_dir)
        a.write(f"agents/f{i}/file.md", f"file {i}\n" * 40)
        a.run("push")
        (packs[f"agents/f{i}/file.md"],) = _packs(repo_dir) - before
    for pack, how in zip(packs.values(), damage, strict=True):
        if how == "flipped":
            data = bytearray(pack.read_bytes())
            data[0] ^= 1
            pack.write_bytes(bytes(data))
        elif how == "deleted":
            pack.unlink()
    lost = {path for path, how in zip(packs, damage, strict=True) if how != "intact"}
    proc = c.run("init", str(repo_dir), "--sync", check=False)
    assert proc.returncode == (1 if lost else 0), proc.stderr
    assert set(snapshot_tree(c.claude)) == set(packs) - lost
    for path in packs:
        assert (path in proc.stderr) == (path in lost), proc.stderr
        assert (c.claude / path).parent.exists() == (path not in lost)
    a.run("repair")
    c.run("pull")
    assert {p: snapshot_tree(c.claude)[p][0] for p in packs} == {
        p: snapshot_tree(a.claude)[p][0] for p in packs
    }


SESSION = "projects/-home-ann-code-app/1b2c3d4e-0000-4000-8000-000000000002.jsonl"


def test_a_merge_whose_remote_data_is_damaged_waits_and_loses_nothing(make_machine, repo_dir):
    """Both machines added records to one transcript; the other machine's new records sit
    in a damaged pack. The pull installs what it can, leaves the transcript as it is here,
    names it, and merges it once repair has uploaded the data again."""
    a, c = make_machine("a"), make_machine("c")
    a.write(SESSION, transcript("s", 2))
    a.run("init", str(repo_dir), "--device", "laptop")
    a.run("push")
    c.run("init", str(repo_dir), "--sync")
    a.write("agents/intact.md", "an intact agent\n")
    a.run("push")
    c.append(SESSION, transcript("s", 1, start=10))
    mine = (c.claude / SESSION).read_bytes()
    before = _packs(repo_dir)
    a.append(SESSION, transcript("s", 1, start=2))
    a.run("push")
    (newest,) = _packs(repo_dir) - before
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))

    proc = c.run("pull", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert SESSION in proc.stderr and "claude-sync repair" in proc.stderr, proc.stderr
    assert (c.claude / SESSION).read_bytes() == mine
    assert (c.claude / "agents/intact.md").read_text() == "an intact agent\n"
    status = c.run("status", check=False)
    assert "up to date" not in status.stdout, status.stdout + status.stderr

    a.run("repair")
    c.run("sync")
    merged = (c.claude / SESSION).read_text()
    for record in transcript("s", 3).splitlines() + transcript("s", 1, start=10).splitlines():
        assert record in merged


def test_a_pull_that_met_a_damaged_pack_reads_it_once(make_machine, repo_dir):
    """A first pull whose settings.json widens the session window takes the sessions that
    window adds with the rest (it ran itself again for them, and one that could not get some
    files read every pack again): a damaged pack is read once."""
    a = make_machine("a")
    a.write("settings.json", json.dumps({"cleanupPeriodDays": 3650}) + "\n")
    a.write("projects/-srv-app/old.jsonl", transcript("old", 3).replace("2026", "2021"))
    a.run("init", str(repo_dir))
    newest = _push_then_damage(a, repo_dir, "rules/new.md")
    c = make_machine("c")
    c.run("init", str(repo_dir))
    proc = c.run_after(COUNT_PACK_READS, "pull", "--json")
    got = json.loads(proc.stdout)
    assert got["unavailable"] == ["rules/new.md"], got
    assert got["pulled"] == ["projects/-srv-app/old.jsonl", "settings.json"], got
    reads = json.loads(proc.stderr.splitlines()[-1])
    assert reads[newest.relative_to(repo_dir).as_posix()] == 1, reads
    a.run("repair")
    c.run("pull")
    assert (c.claude / "projects/-srv-app/old.jsonl").exists()
    assert (c.claude / "rules/new.md").read_text() == "the newest file\n" * 50


COUNT_PACK_READS = """
import atexit, collections, json, sys
from claude_sync.repository import packs
reads = collections.Counter()
read = packs.Packs.iter_pack
def counted(self, pack, *args, **kwargs):
    reads[pack] += 1
    return read(self, pack, *args, **kwargs)
packs.Packs.iter_pack = counted
atexit.register(lambda: print(json.dumps(reads), file=sys.stderr))
"""


def test_resolving_with_the_remote_version_damaged_keeps_the_conflict(make_machine, repo_dir):
    """`resolve --take remote` whose remote data sits in a damaged pack fails: the conflict
    and the remote copy beside the file (maybe the only intact one) stay, until repair."""
    a, c = make_machine("a"), make_machine("c")
    a.write("agents/x.md", "first\n")
    a.run("init", str(repo_dir), "--device", "laptop")
    a.run("push")
    c.run("init", str(repo_dir), "--sync")
    c.write("agents/x.md", "c's own\n")
    c.run("push")
    a.write("agents/x.md", "a's own\n")
    assert a.json("pull", expect=3)["conflicts"] == ["agents/x.md"]
    copies = sorted(p.name for p in (a.claude / "agents").iterdir() if p.name != "x.md")
    assert len(copies) == 1, copies
    before = _packs(repo_dir)
    a.run("resolve", "agents/x.md", "--take", "local")  # a's version, pushed
    c.write("agents/x.md", "c's second\n")
    assert c.json("pull", expect=3)["conflicts"] == ["agents/x.md"]
    (newest,) = _packs(repo_dir) - before
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    kept = sorted(p.name for p in (c.claude / "agents").iterdir())

    proc = c.run("resolve", "agents/x.md", "--take", "remote", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (c.claude / "agents/x.md").read_text() == "c's second\n"
    assert sorted(p.name for p in (c.claude / "agents").iterdir()) == kept
    assert c.json("conflicts")["conflicts"] == ["agents/x.md"]

    a.run("repair")
    c.run("resolve", "agents/x.md", "--take", "remote")
    assert (c.claude / "agents/x.md").read_text() == "a's own\n"
    assert sorted(p.name for p in (c.claude / "agents").iterdir()) == ["x.md"]
    assert c.json("conflicts")["conflicts"] == []
