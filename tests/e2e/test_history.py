"""History and upkeep: log, devices, restore, verify, rollback, tampering, key management."""

from __future__ import annotations

import hashlib
import json
import shutil

from conftest import DAY0, Machine, snapshot_tree


def two_snapshots(make_machine, repo_dir) -> tuple[Machine, Machine]:
    a, b = make_machine("a"), make_machine("b")
    a.write("agents/x.md", "version 1\n")
    a.write("CLAUDE.md", "memory\n")
    a.run("init", str(repo_dir), "--device", "laptop")
    a.run("push")
    a.write("agents/x.md", "version 2\n")
    a.write("agents/y.md", "new\n")
    a.run("push")
    b.run("init", str(repo_dir), "--device", "desktop")
    b.run("pull")
    return a, b


def test_log_and_devices(cli_inprocess, make_machine, repo_dir):
    a, b = two_snapshots(make_machine, repo_dir)
    b.write("rules/r.md", "rule\n")
    b.run("push")
    code, out, _ = cli_inprocess("log", "--json", machine=a)
    snaps = json.loads(out)["snapshots"]
    assert code == 0
    assert [s["seq"] for s in snaps] == [1, 2, 3]
    assert [s["device"] for s in snaps] == ["laptop", "laptop", "desktop"]
    assert (snaps[1]["added"], snaps[1]["changed"], snaps[1]["removed"]) == (1, 1, 0)
    assert "laptop" in cli_inprocess("log", machine=a).stdout
    devices = cli_inprocess("devices", machine=a).stdout
    assert "laptop (this machine)" in devices and "desktop" in devices
    assert cli_inprocess("devices", "--rename", "ann-mbp", machine=a).exit_code == 0
    a.write("rules/s.md", "x\n")
    a.run("push")
    assert "ann-mbp (this machine)" in cli_inprocess("devices", machine=a).stdout
    assert cli_inprocess("devices", "--rename", " ", machine=a).exit_code == 2


def test_restore_in_place_and_to_target(make_machine, repo_dir, tmp_path):
    a, _ = two_snapshots(make_machine, repo_dir)
    target = tmp_path / "restored"
    a.run("restore", "--snapshot", "1", "--target", str(target))
    assert (target / "agents/x.md").read_text() == "version 1\n"
    assert not (target / "agents/y.md").exists()
    a.write("agents/x.md", "unsynced work\n")
    refused = a.run("restore", "agents/x.md", "--snapshot", "1", check=False)
    assert refused.returncode == 1 and "1 file has changes not pushed yet" in refused.stderr
    assert (a.claude / "agents/x.md").read_text() == "unsynced work\n"
    a.run("push")
    a.run("restore", "agents", "--snapshot", "1")
    assert (a.claude / "agents/x.md").read_text() == "version 1\n"
    assert a.json("push")["pushed"] == []  # the restore pushed the restored version itself
    assert a.json("log")["snapshots"][-1]["changed"] == 1
    assert a.run("restore", "--snapshot", "9", check=False).returncode == 2
    assert a.run("restore", "nope", "--snapshot", "1", check=False).returncode == 2


def test_a_restore_that_fails_leaves_no_empty_folders(make_machine, repo_dir, tmp_path):
    """A restore whose data cannot be read fails before anything is moved into place: the
    folders it made for its files (and the target it made) go too."""
    a, _ = two_snapshots(make_machine, repo_dir)
    a.write("agents/deep/er/z.md", "z\n")
    a.run("push")
    for pack in (repo_dir / "data").rglob("*"):
        if pack.is_file():
            pack.write_bytes(b"damaged")
    target = tmp_path / "new" / "restored"
    failed = a.run("restore", "--snapshot", "3", "--target", str(target), check=False)
    assert failed.returncode == 1, failed.stderr
    assert not (tmp_path / "new").exists()
    shutil.rmtree(a.claude / "agents")
    failed = a.run("restore", "agents", "--snapshot", "3", check=False)
    assert failed.returncode == 1, failed.stderr
    assert not (a.claude / "agents").exists()


def test_restore_to_a_target_never_replaces_what_is_there(make_machine, repo_dir, tmp_path):
    """A target that holds the files already (an earlier copy, or the Claude folder itself
    by another name) is not written over: unpushed work there may exist nowhere else."""
    a, _ = two_snapshots(make_machine, repo_dir)
    target = tmp_path / "copy"
    (target / "agents").mkdir(parents=True)
    (target / "agents/x.md").write_text("precious\n")
    refused = a.run("restore", "--snapshot", "1", "--target", str(target), check=False)
    assert refused.returncode == 2 and "already exist" in refused.stderr
    assert (target / "agents/x.md").read_text() == "precious\n"
    a.run("restore", "--snapshot", "1", "--target", str(target), "--force")
    assert (target / "agents/x.md").read_text() == "version 1\n"
    a.write("agents/x.md", "unsynced work\n")
    (tmp_path / "live").symlink_to(a.claude)
    for live in (a.claude, tmp_path / "live"):
        refused = a.run("restore", "--snapshot", "1", "--target", str(live), check=False)
        assert refused.returncode == 1 and "not pushed yet" in refused.stderr
    assert (a.claude / "agents/x.md").read_text() == "unsynced work\n"


def test_verify_finds_missing_and_damaged_data(make_machine, repo_dir):
    a, _ = two_snapshots(make_machine, repo_dir)
    assert "No problems found" in a.run("verify", "--read-data").stdout
    pack = sorted((repo_dir / "data").rglob("*"))[-1]
    original = pack.read_bytes()
    pack.write_bytes(original[:10] + bytes([original[10] ^ 1]) + original[11:])
    assert a.run("verify").returncode == 0  # presence only
    damaged = a.run("verify", "--read-data", check=False)
    assert damaged.returncode == 1 and "problem:" in damaged.stderr
    pack.unlink()
    missing = a.run("verify", check=False)
    assert missing.returncode == 1 and "packs are missing" in missing.stderr


def test_rollback_swap_and_truncation_are_detected(make_machine, repo_dir, tmp_path):
    _, b = two_snapshots(make_machine, repo_dir)
    before = snapshot_tree(b.claude)
    snaps = repo_dir / "snapshots"
    newest = snaps / "0000000002"
    saved = tmp_path / "saved"
    shutil.copy(newest, saved)
    # A storage provider serving an older state (the newest snapshot withheld):
    newest.unlink()
    proc = b.run("pull", check=False)
    assert proc.returncode == 1 and "rollback" in proc.stderr
    assert snapshot_tree(b.claude) == before
    assert b.run("pull", "--allow-rollback").returncode == 0
    # Accepted, as asked, but what this machine had from the withheld snapshot is not
    # replaced by the older version: it is a local change again, pushed by the next push.
    assert (b.claude / "agents/x.md").read_text() == "version 2\n"
    assert b.json("status")["pushed"] == ["agents/x.md", "agents/y.md"]
    before = snapshot_tree(b.claude)
    # A snapshot copied under another name (replay/swap):
    shutil.copy(snaps / "0000000001", newest)
    proc = b.run("pull", check=False)
    assert proc.returncode == 1 and "failed authentication" in proc.stderr
    checked = b.run("verify", check=False)
    assert checked.returncode == 1 and "failed authentication" in checked.stderr
    # Truncated:
    newest.write_bytes(saved.read_bytes()[:40])
    proc = b.run("pull", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error:")
    assert snapshot_tree(b.claude) == before
    shutil.copy(saved, newest)
    assert b.run("pull").returncode == 0


def test_lost_state_database_rebuilds_without_duplicates_or_losses(make_machine, repo_dir):
    a, b = two_snapshots(make_machine, repo_dir)
    # (recorded yesterday: a pull fetches sessions updated within cleanupPeriodDays)
    a.write("projects/-srv-app/s.jsonl", '{"uuid": "1", "timestamp": "' + DAY0 + 'T01:00:00Z"}\n')
    a.run("push")
    b.run("pull")
    b.write("agents/x.md", "version 3 from B\n")
    b.append("projects/-srv-app/s.jsonl", '{"uuid": "2", "timestamp": "' + DAY0 + 'T02:00:00Z"}\n')
    b.run("push")
    a.append("projects/-srv-app/s.jsonl", '{"uuid": "3", "timestamp": "' + DAY0 + 'T03:00:00Z"}\n')
    a.write("rules/new.md", "new on A\n")
    for path in a.config_dir.glob("state*.db*"):
        path.unlink()
    result = a.json("sync")
    assert result["conflicts"] == []
    assert (a.claude / "agents/x.md").read_text() == "version 3 from B\n"
    assert not list(a.claude.rglob("*claude-sync-conflict*"))
    lines = (a.claude / "projects/-srv-app/s.jsonl").read_text().splitlines()
    assert [json_uuid(line) for line in lines] == ["1", "2", "3"]
    b.run("pull")
    assert snapshot_tree(b.claude).keys() == snapshot_tree(a.claude).keys()
    assert (b.claude / "rules/new.md").read_text() == "new on A\n"
    assert a.json("sync")["pushed"] == [] and a.json("status")["pulled"] == []


def json_uuid(line: str) -> str:
    return str(json.loads(line)["uuid"])


def repo_bytes(repo_dir) -> int:
    return sum(p.stat().st_size for p in repo_dir.rglob("*") if p.is_file())


def test_prune_drops_old_snapshots_and_unused_data(make_machine, repo_dir):
    a = make_machine("a")
    a.run("init", str(repo_dir))
    for i in range(4):
        a.write("agents/big.md", f"version {i}\n" + f"{i} distinct content line\n" * 20000)
        a.run("push")
    before = repo_bytes(repo_dir)
    dry = a.run("prune", "--keep-last", "1", "--dry-run").stdout
    assert "Would remove 3 snapshots and mark 3 unused packs" in dry, dry
    assert repo_bytes(repo_dir) == before
    out = a.run("prune", "--keep-last", "1", "--grace", "0").stdout
    assert "Removed 3 snapshots" in out and "deleted 3 packs" in out
    assert repo_bytes(repo_dir) < before / 2
    assert len(list((repo_dir / "index").iterdir())) == 1  # four indexes became one
    assert [s["seq"] for s in a.json("log")["snapshots"]] == [4]
    assert "No problems found" in a.run("verify", "--read-data").stdout
    b = make_machine("b")
    b.run("init", str(repo_dir))
    b.run("pull")
    assert (b.claude / "agents/big.md").read_text().startswith("version 3\n")
    a.write("agents/other.md", "more\n")
    assert a.json("push")["pushed"] == ["agents/other.md"]


def test_prune_is_two_phase_and_marked_data_is_not_reused(make_machine, repo_dir):
    a = make_machine("a")
    a.run("init", str(repo_dir))
    v1 = "".join(f"{i} {hashlib.sha256(str(i).encode()).hexdigest()}\n" for i in range(5000))
    a.write("agents/x.md", v1)
    a.run("push")
    a.write("agents/x.md", "v2\n")
    a.run("push")
    out = a.run("prune", "--keep-last", "1").stdout  # default grace: mark only
    assert "marked 1 unused pack; deleted 0 packs" in out
    assert list((repo_dir / "prune").iterdir())
    # A push after the mark that needs v1's data again must not lean on the marked pack.
    a.write("agents/x.md", v1)
    pushed = a.json("push")
    assert pushed["uploaded_bytes"] > 100_000  # re-uploaded, not deduplicated
    out = a.run("prune", "--keep-last", "1", "--grace", "0").stdout
    assert "deleted 2 packs" in out  # the marked v1 pack and the newly unused v2 pack
    assert "No problems found" in a.run("verify", "--read-data").stdout
    b = make_machine("b")
    b.run("init", str(repo_dir))
    b.run("pull")
    assert (b.claude / "agents/x.md").read_text() == v1
    assert a.run("prune", "--keep-within", "nonsense", check=False).returncode == 2


def test_prune_collects_packs_no_index_names(make_machine, repo_dir):
    a = make_machine("a")
    a.write("agents/x.md", "x\n")
    a.run("init", str(repo_dir))
    a.run("push")
    orphan = repo_dir / "data" / "ab" / ("ab" + "0" * 62)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a killed push")
    assert "marked 1 unused pack; deleted 0 packs" in a.run("prune").stdout
    assert orphan.exists()  # within the grace period a running push may still index it
    assert "deleted 1 pack " in a.run("prune", "--grace", "0").stdout
    assert not orphan.exists()
    assert "No problems found" in a.run("verify", "--read-data").stdout


def test_a_damaged_snapshot_error_names_the_way_out(make_machine, repo_dir):
    """push and log stopped by a damaged snapshot say which command gets the user out."""
    a, b = two_snapshots(make_machine, repo_dir)
    b.write("agents/z.md", "from b\n")
    for part in (repo_dir / "manifest").rglob("*"):
        if part.is_file():
            data = part.read_bytes()
            part.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    shutil.rmtree(a.config_dir / "cache", ignore_errors=True)
    shutil.rmtree(b.config_dir / "cache", ignore_errors=True)
    for m, command in ((b, "push"), (a, "log")):
        proc = m.run(command, check=False)
        assert proc.returncode == 1 and proc.stderr.startswith("error:"), proc.stderr
        assert "claude-sync repair" in proc.stderr or "claude-sync verify" in proc.stderr, (
            command,
            proc.stderr,
        )


def test_a_missing_pack_error_names_the_way_out(make_machine, repo_dir):
    """A pack deleted from the storage (not by prune) is damage too: joining says how to get out."""
    two_snapshots(make_machine, repo_dir)
    for pack in (repo_dir / "data").rglob("*"):
        if pack.is_file():
            pack.unlink()
    proc = make_machine("c").run("init", str(repo_dir), "--sync", check=False)
    # Every file is named with why; the last line is the error saying how to get out.
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error:"), proc.stderr
    assert "is missing" in proc.stderr and "claude-sync repair" in proc.stderr, proc.stderr


def test_a_renamed_device_is_listed_once_under_its_new_name(cli_inprocess, make_machine, repo_dir):
    """devices --rename renames this machine in the list, here at once and on the others
    after its next push; old snapshots keep the name they were written with."""
    a, b = two_snapshots(make_machine, repo_dir)

    def listed(m: Machine) -> list[str]:
        code, out, _ = cli_inprocess("devices", machine=m)
        assert code == 0
        lines = out.splitlines()[1:]
        return sorted(line.split()[0] for line in lines if line.strip())

    code, renamed, _ = cli_inprocess("devices", "--rename", "ann-mbp", machine=a)
    assert code == 0
    assert "ann-mbp (this machine)" in renamed and "laptop" not in renamed, renamed
    a.write("rules/s.md", "x\n")
    a.run("push")
    assert listed(a) == ["ann-mbp"]
    assert listed(b) == ["ann-mbp"]
    b.run("push")  # nothing to push: b never pushed, so it is not listed
    log = json.loads(cli_inprocess("log", "--json", machine=b).stdout)
    assert [s["device"] for s in log["snapshots"]] == ["laptop", "laptop", "ann-mbp"]


def test_devices_and_keys_as_json(cli_inprocess, make_machine, repo_dir):
    """`--json`, before or after the command, gives scripts the lists the tables show."""
    a, _ = two_snapshots(make_machine, repo_dir)
    devices = json.loads(cli_inprocess("devices", "--json", machine=a).stdout)["devices"]
    assert [(d["device"], d["snapshots"], d["this_machine"]) for d in devices] == [
        ("laptop", 2, True)
    ]
    keys = json.loads(cli_inprocess("--json", "key", "list", machine=a).stdout)["keys"]
    assert len(keys) == 1 and keys[0]["label"] == "laptop" and keys[0]["created"].endswith("Z")


def test_setting_a_machine_up_again_keeps_its_name(cli_inprocess, make_machine, repo_dir):
    """`init --force` (a lost key file, a new passphrase) is still the same machine."""
    a = make_machine("a")
    a.write("CLAUDE.md", "memory\n")
    a.run("init", str(repo_dir))
    a.run("push")
    before = json.loads(cli_inprocess("devices", "--json", machine=a).stdout)["devices"]
    a.run("init", str(repo_dir), "--force")
    a.write("CLAUDE.md", "memory 2\n")
    a.run("push")
    after = json.loads(cli_inprocess("devices", "--json", machine=a).stdout)["devices"]
    assert [d["device"] for d in after] == [d["device"] for d in before]
    assert after[0]["snapshots"] == 2 and after[0]["this_machine"]
