"""Prune cannot make a snapshot point at deleted data, whatever the
machines' clocks say and however long a push is stopped half-way."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from conftest import Machine

CLOCK = Path(__file__).parent / "clock"
HOUR = 3600.0


def on_clock(m: Machine, skew: float = 0.0, **extra: str) -> None:
    """Run m's commands with its clock `skew` seconds off (and the pause hook available)."""
    m.env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(CLOCK), os.environ.get("PYTHONPATH", "")]),
            "CLAUDE_SYNC_TEST_SKEW": str(skew),
            # The real minimum grace: these tests are about what it protects.
            "CLAUDE_SYNC_MIN_GRACE": str(15 * 60),
            **extra,
        }
    )


def age_marks(repo_dir: Path, seconds: float) -> None:
    """Make the folder store's prune marks look `seconds` older by the storage's clock."""
    for mark in (repo_dir / "prune").iterdir():
        written = mark.stat().st_mtime - seconds
        os.utime(mark, (written, written))


def unique_text(seed: int) -> str:
    rng = random.Random(seed)
    return "".join(f"{rng.getrandbits(64):016x}\n" for _ in range(20000))


def start_paused_push(a: Machine, release: Path) -> subprocess.Popen[str]:
    """A push that stops after uploading its new data, before its index and snapshot."""
    on_clock(a, CLAUDE_SYNC_TEST_PAUSE=str(release), CLAUDE_SYNC_TEST_PAUSE_AT="index/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "claude_sync", "push"],
        env=a.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=a.home,
    )
    paused = Path(str(release) + ".paused")
    deadline = time.monotonic() + 60
    while not paused.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def setup(make_machine, repo_dir: Path) -> tuple[Machine, Machine, Machine, str]:
    """A pushed a big file, then replaced it: its pack is used only by snapshot 1. A's local
    cache still knows where that data is, so a push of the same content leans on it."""
    a, b, c = make_machine("a"), make_machine("b"), make_machine("c")
    big = unique_text(1)
    a.write("agents/x.md", big)
    a.run("init", str(repo_dir))
    a.run("push")
    a.write("agents/x.md", "small now\n")
    a.run("push")
    for m in (b, c):
        m.run("init", str(repo_dir))
        m.run("pull")
    a.write("agents/copy.md", big)  # the same content again: nothing new to upload for it
    a.write("agents/new.md", unique_text(2))
    return a, b, c, big


def finish(proc: subprocess.Popen[str], release: Path) -> None:
    release.touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (out, err)


def assert_nothing_lost(make_machine, repo_dir: Path, big: str) -> None:
    d = make_machine("d")
    d.run("init", str(repo_dir))
    d.run("pull")
    assert (d.claude / "agents/copy.md").read_text() == big
    assert "No problems found" in d.run("verify", "--read-data").stdout


def test_marks_of_a_machine_hours_behind_are_not_swept_early(make_machine, repo_dir, tmp_path):
    a, b, c, big = setup(make_machine, repo_dir)
    release = tmp_path / "release"
    push = start_paused_push(a, release)
    on_clock(b, -2 * HOUR)  # B's clock is two hours behind: its mark looks old to others
    assert "marked" in b.run("prune", "--keep-last", "1").stdout
    on_clock(c, +2 * HOUR)  # and C's two hours ahead
    out = c.run("prune", "--keep-last", "1").stdout
    assert "deleted 0 packs" in out  # C has known the mark for no time at all
    finish(push, release)
    assert_nothing_lost(make_machine, repo_dir, big)


def test_a_push_stopped_past_the_grace_period_uploads_again(make_machine, repo_dir, tmp_path):
    a, b, _, big = setup(make_machine, repo_dir)
    release = tmp_path / "release"
    push = start_paused_push(a, release)
    on_clock(b)
    b.run("prune", "--keep-last", "1")  # marks the pack the stopped push leans on
    # Two hours later, by B's clock and the storage's, the push still asleep.
    on_clock(b, +2 * HOUR)
    age_marks(repo_dir, 2 * HOUR)
    # Swept: the old pack, and the one the push wrote but had not indexed yet.
    assert "deleted 2 packs" in b.run("prune", "--keep-last", "1").stdout
    finish(push, release)  # it wakes up: its data was swept, so it uploads it again
    assert_nothing_lost(make_machine, repo_dir, big)


def test_a_clock_jumping_ahead_does_not_age_a_mark(make_machine, repo_dir, tmp_path):
    """C marks with its clock right, then its clock runs two hours ahead: by C's clock the
    mark is old, by the storage's it is seconds old, and the stopped push's data stays."""
    a, _, c, big = setup(make_machine, repo_dir)
    release = tmp_path / "release"
    push = start_paused_push(a, release)
    on_clock(c)
    assert "marked" in c.run("prune", "--keep-last", "1").stdout
    on_clock(c, +2 * HOUR)
    assert "deleted 0 packs" in c.run("prune", "--keep-last", "1").stdout
    finish(push, release)
    assert_nothing_lost(make_machine, repo_dir, big)


def test_grace_below_the_minimum_is_refused(make_machine, repo_dir):
    a = make_machine("a")
    a.write("agents/x.md", "x\n")
    a.run("init", str(repo_dir))
    a.run("push")
    on_clock(a)
    proc = a.run("prune", "--grace", "0", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --grace must be at least 15m")
    assert len(proc.stderr.strip().splitlines()) == 1


def pushed_twice(a: Machine, repo_dir: Path) -> None:
    """Two agents, pushed one at a time: two snapshots, two packs, two indexes."""
    a.write("agents/x.md", unique_text(3))
    a.run("init", str(repo_dir))
    a.run("push")
    a.write("agents/y.md", unique_text(4))
    a.run("push")


def assert_both_agents(m: Machine) -> None:
    assert (m.claude / "agents/x.md").read_text() == unique_text(3)
    assert (m.claude / "agents/y.md").read_text() == unique_text(4)


def test_repair_rebuilds_indexes_and_uploads_lost_data_again(make_machine, repo_dir):
    a, b = make_machine("a"), make_machine("b")
    pushed_twice(a, repo_dir)
    b.run("init", str(repo_dir))
    # The storage loses one pack and every index.
    packs = sorted(p for p in (repo_dir / "data").rglob("*") if p.is_file())
    packs[0].unlink()
    for index in (repo_dir / "index").iterdir():
        index.unlink()
    assert b.run("verify", check=False).returncode == 1
    # B has none of the files: it can re-index what is there, not bring back what is lost.
    proc = b.run("repair", check=False)
    assert proc.returncode == 1 and "run `claude-sync repair` on each machine" in proc.stderr
    assert "Indexed 1 pack no index" in proc.stdout
    out = a.run("repair").stdout
    assert "uploaded" in out and "uploaded 0" not in out
    assert "No problems found" in b.run("verify", "--read-data").stdout
    b.run("pull")
    assert_both_agents(b)


def test_repair_replaces_a_damaged_index(make_machine, repo_dir):
    """One flipped byte in an index stopped every new machine's pull, and `repair` (which
    the error names) failed on the same index: it now indexes those packs from their own
    headers and removes it."""
    a, c = make_machine("a"), make_machine("c")
    pushed_twice(a, repo_dir)
    index = max((p for p in (repo_dir / "index").rglob("*") if p.is_file()), key=os.path.getmtime)
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 1
    index.write_bytes(bytes(data))
    c.run("init", str(repo_dir))
    assert c.run("pull", check=False).returncode == 1
    assert "Indexed 1 pack no index" in a.run("repair").stdout
    assert "No problems found" in a.run("verify", "--read-data").stdout
    c.run("pull")
    assert_both_agents(c)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def test_repair_removes_a_damaged_head_and_its_machines_push_it_again(make_machine, repo_dir):
    """A damaged head snapshot blocked every command, repair included, though each error
    named repair. Repair now removes it; the machines that had it push its files again."""
    a, b, c = make_machine("a"), make_machine("b"), make_machine("c")
    pushed_twice(a, repo_dir)
    b.run("init", str(repo_dir))
    b.run("pull")
    flip_byte(repo_dir / "snapshots" / "0000000002")
    proc = b.run("pull", check=False)
    assert proc.returncode == 1 and "claude-sync repair" in proc.stderr
    proc = a.run("repair", check=False)
    assert proc.returncode == 1 and "1 snapshot (2) cannot be read" in proc.stderr
    assert "no machine keeps a copy" in proc.stderr and "--forget-damaged" in proc.stderr
    out = a.run("repair", "--forget-damaged").stdout
    assert "Removed damaged snapshots 2" in out and "--allow-rollback" in out
    # Its machines see a rollback, and are told how to accept it.
    proc = b.run("pull", check=False)
    assert proc.returncode != 0 and "--allow-rollback" in proc.stderr
    a.run("sync", "--allow-rollback")
    b.run("sync", "--allow-rollback")
    assert_both_agents(b)
    c.run("init", str(repo_dir))
    c.run("pull")
    assert_both_agents(c)
    assert "No problems found" in c.run("verify", "--read-data").stdout


def test_repair_puts_back_a_damaged_file_list_or_forgets_its_snapshot(make_machine, repo_dir):
    """A damaged manifest part blocked repair and prune for good. A machine holding a copy
    of it puts it back; one without removes the snapshot it belongs to, recorded as
    forgotten, so machines that saw that snapshot follow the history past it."""
    a, b, c = make_machine("a"), make_machine("b"), make_machine("c")
    a.write("agents/x.md", unique_text(3))
    a.run("init", str(repo_dir))
    a.run("push")
    (first_part,) = (repo_dir / "manifest").iterdir()
    b.run("init", str(repo_dir))
    b.run("pull")  # B's copy of snapshot 1's list
    a.write("agents/y.md", unique_text(4))
    a.run("push")  # A's copy of snapshot 2's list
    for part in (repo_dir / "manifest").iterdir():
        flip_byte(part)
    c.run("init", str(repo_dir))
    assert c.run("pull", check=False).returncode == 1
    # Each of A and B holds a copy of one snapshot's list; without a flag, neither
    # removes the snapshot it cannot mend.
    proc = a.run("repair", check=False)
    assert "Put back 1 damaged" in proc.stdout and "1 snapshot (1) cannot be read" in proc.stderr
    c.run("pull")
    assert_both_agents(c)
    assert "Put back 1 damaged" in b.run("repair").stdout
    assert "No problems found" in c.run("verify", "--read-data").stdout
    # Damaged again, where nobody has a copy: removed, recorded as forgotten, so B,
    # which saw snapshot 1 only, follows the history past it.
    flip_byte(first_part)
    out = c.run("repair", "--forget-damaged").stdout
    assert "Removed damaged snapshots 1" in out
    b.run("pull")
    assert_both_agents(b)
    assert "No problems found" in a.run("verify", "--read-data").stdout
    a.run("prune", "--keep-last", "1")


def test_a_damaged_history_record_or_prune_mark_stops_nobody(make_machine, repo_dir):
    """A flipped byte in a `forgotten/` record stopped every machine whose last snapshot
    was pruned (even `sync --allow-rollback`), and one in a prune mark stopped every prune;
    verify saw neither and repair did nothing. Both are now left out where read, named by
    verify and removed by repair."""
    a, b = make_machine("a"), make_machine("b")
    a.write("agents/x.md", unique_text(3))
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    b.run("pull")  # B last saw snapshot 1
    for n in range(3):
        a.write(f"agents/n{n}.md", unique_text(10 + n))
        a.run("push")
    a.run("prune", "--keep-last", "2")  # forgets 1 and 2, marks their packs
    for folder in ("forgotten", "prune"):
        for damaged in (repo_dir / folder).iterdir():
            flip_byte(damaged)
    b.write("agents/b.md", "from b\n")
    # The chain from the head no longer reaches what B saw: a fork, which B accepts.
    refused = b.run("sync", check=False)
    assert refused.returncode == 1 and "--allow-rollback" in refused.stderr
    b.run("sync", "--allow-rollback")
    a.run("pull")
    assert (a.claude / "agents/b.md").read_text() == "from b\n"
    assert sorted(p.name for p in (b.claude / "agents").iterdir()) == sorted(
        p.name for p in (a.claude / "agents").iterdir()
    )
    proc = a.run("verify", check=False)
    assert proc.returncode == 1 and proc.stderr.count("is damaged (`claude-sync repair`") == 2
    a.run("repair")
    assert "No problems found" in a.run("verify").stdout
    a.run("prune", "--keep-last", "1")


def test_forgetting_a_damaged_middle_snapshot_leaves_a_history_verify_accepts(
    make_machine, repo_dir
):
    a, c = make_machine("a"), make_machine("c")
    pushed_twice(a, repo_dir)
    a.write("agents/z.md", "third\n")
    a.run("push")
    flip_byte(repo_dir / "snapshots" / "0000000002")
    assert "Removed damaged snapshots 2" in a.run("repair", "--forget-damaged").stdout
    assert "No problems found" in a.run("verify").stdout
    c.run("init", str(repo_dir))
    c.run("pull")
    assert_both_agents(c)


def test_an_append_push_after_repair_sends_the_old_chunks_no_pack_holds(make_machine, repo_dir):
    """A pack lost and dropped by `repair` elsewhere (a machine without the file): the
    next push of the appended transcript sends its old chunks again, so the new snapshot
    is whole (found by a review: a push that took the head's chunks as stored left it
    naming blobs no pack holds)."""
    a, b = make_machine("a"), make_machine("b")
    session = "projects/-srv-app/0b7e2a94-5d7b-4a59-9d55-2f7f6e1c1a11.jsonl"
    rng = random.Random(7)
    records = "".join(
        f'{{"uuid": "r{i}", "text": "{rng.getrandbits(320_000):x}"}}\n' for i in range(40)
    )
    a.write(session, records)
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    b.run("init", str(repo_dir))
    for pack in (repo_dir / "data").rglob("*"):
        if pack.is_file():
            pack.unlink()
    b.run("repair", check=False)  # B has nothing to upload again: the loss is recorded
    a.write(session, records + '{"uuid": "r-new", "text": "appended"}\n')
    a.run("push")
    report = b.run("verify", check=False).stdout + b.run("verify", check=False).stderr
    assert "snapshot 2" not in report, report
    b.run("pull", "--all")
    assert (b.claude / session).read_text() == (a.claude / session).read_text()
