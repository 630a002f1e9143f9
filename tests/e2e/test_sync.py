"""push, pull, sync and status: two machines, one folder repository, the real CLI. What a
push and a pull carry, what they never carry, how they fail, and what status and dry runs
say beforehand."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import Machine, snapshot_tree, transcript
from scenarios import PROJECT, SENTINEL, populate, set_up_pair, synced_view

from claude_sync import compression, crypto
from claude_sync.repository import Repository, group_by_pack
from claude_sync.store.folder import FolderStore


def test_push_then_pull_is_byte_identical_with_mtimes(machines, repo_dir):
    a, b = machines
    populate(a)
    set_up_pair(a, b, repo_dir)
    result = b.json("pull")
    expected = synced_view(a)
    got = snapshot_tree(b.claude)
    assert got == expected  # bytes and mtimes, and nothing else
    assert sorted(result["pulled"]) == sorted(expected)
    assert result["conflicts"] == [] and result["downloaded_bytes"] > 0
    assert not (b.home / ".claude.json").exists()
    assert "agents/link-in.md" in got  # a symlink inside the root is synced as a file


def test_a_first_push_of_thousands_of_small_files_arrives_whole(machines, repo_dir):
    """A heavy user's first push: thousands of small transcripts, sub-agents and tool
    results, read by worker processes (reading.WORKER_FILES). The other machine gets each
    file as it is, and each session's title from the summaries the workers made."""
    a, b = machines
    populate(a)
    for p in range(30):
        for n in range(70):
            sid = str(uuid.UUID(int=p * 1000 + n + 1))
            rel = f"projects/-home-ann-code-p{p}/{sid}"
            a.write(f"{rel}.jsonl", transcript(sid, 2 + n % 5, cwd=f"/home/ann/code/p{p}"))
            if n % 7 == 0:
                a.write(f"{rel}/tool-results/r{n}.txt", f"output {p} {n}\n" * (1 + n))
    set_up_pair(a, b, repo_dir)
    b.run("pull", "--all")
    assert snapshot_tree(b.claude) == synced_view(a)
    listed = {s["id"]: s for s in b.json("sessions")}
    sid = str(uuid.UUID(int=29 * 1000 + 69 + 1))
    assert listed[sid]["records"] == 2 + 69 % 5 and listed[sid]["title"].startswith("message 0")


def test_second_push_sends_little_more_than_the_change(machines, repo_dir):
    a, _ = machines
    populate(a)
    big = transcript("big", 3000)
    a.write(f"projects/{PROJECT}/big.jsonl", big)
    a.run("init", str(repo_dir))
    a.run("push")
    before = snapshot_tree(repo_dir)

    # Nothing changed: the backend folder is untouched, byte for byte.
    assert a.json("push")["pushed"] == []
    assert snapshot_tree(repo_dir) == before

    # One small file changed: about that file compressed plus a manifest goes up.
    a.write("agents/reviewer.md", "---\nname: reviewer\n---\nReview code twice.\n")
    result = a.json("push")
    assert result["pushed"] == ["agents/reviewer.md"]
    after = snapshot_tree(repo_dir)
    added = sum(len(v[0]) for k, v in after.items() if k not in before)
    assert added == result["uploaded_bytes"]
    assert added < 8 * 1024, added

    # Appending to a large transcript uploads the tail, not the whole file.
    a.append(f"projects/{PROJECT}/big.jsonl", transcript("big", 20, start=3000))
    result = a.json("push")
    size = (a.claude / f"projects/{PROJECT}/big.jsonl").stat().st_size
    assert size > 1_000_000
    assert result["uploaded_bytes"] < size / 3, (result["uploaded_bytes"], size)


@pytest.mark.parametrize("transfers", ["1", "8"])
def test_a_push_cut_off_midway_is_not_sent_again(machines, repo_dir, transfers):
    """A long push indexes the packs it sent as it goes: killed (a laptop closed, a
    connection dropped), the next push sends only what they lack."""
    a, b = machines
    files = {f"rules/data/part-{i}.bin": os.urandom(6 << 20) for i in range(6)}
    for rel, data in files.items():
        a.write(rel, data)
    a.run("init", str(repo_dir))
    a.env["CLAUDE_SYNC_INDEX_EVERY"] = "0"  # an index after each pack, not each 30 s
    a.env["CLAUDE_SYNC_TRANSFERS"] = transfers
    push = a.start("push", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any((repo_dir / "index").glob("*")) and push.poll() is None:
            assert time.monotonic() < deadline, "no index written while the push ran"
            time.sleep(0.005)
    finally:
        push.kill()
        push.wait()
    assert not any((repo_dir / "snapshots").glob("*")), "killed too late: push finished"
    sent = sum(f.stat().st_size for f in (repo_dir / "data").rglob("*") if f.is_file())
    assert sent > 0

    result = a.json("push")
    total = sum(f.stat().st_size for f in (repo_dir / "data").rglob("*") if f.is_file())
    assert sent < total * 3 / 4, "the first index came only once everything was sent"
    assert result["uploaded_bytes"] < total - sent / 2, (result["uploaded_bytes"], sent, total)
    b.run("init", str(repo_dir))
    b.run("pull")
    for rel, data in files.items():
        assert (b.claude / rel).read_bytes() == data
    assert a.run("verify", "--read-data").returncode == 0


def _repository_data(repo_dir: Path) -> int:
    return sum(f.stat().st_size for f in (repo_dir / "data").rglob("*") if f.is_file())


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_push_stops_sending_and_says_so(machines, repo_dir, stop):
    """Ctrl-C or `kill` stops a first push within a few packs (it used to read, seal and
    send every file first), with one line; the next push finishes the job."""
    a, b = machines
    files = {f"rules/data/part-{i}.bin": os.urandom(6 << 20) for i in range(12)}
    for rel, data in files.items():
        a.write(rel, data)
    a.run("init", str(repo_dir))
    a.env["CLAUDE_SYNC_TRANSFERS"] = "1"
    push = a.start("push")
    deadline = time.monotonic() + 60
    while not _repository_data(repo_dir) and push.poll() is None:
        assert time.monotonic() < deadline, "the push sent nothing"
        time.sleep(0.005)
    push.send_signal(stop)
    _, stderr = push.communicate(timeout=60)
    assert push.returncode == 1, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted"
    assert not any((repo_dir / "snapshots").glob("*"))
    whole = sum(len(d) for d in files.values())
    assert _repository_data(repo_dir) < whole * 0.6, "the push went on after the signal"

    a.run("push")
    # What the stopped push sent was indexed as it stopped: nothing was sent twice.
    assert "mark 0 unused packs" in a.run("prune", "--dry-run").stdout
    b.run("init", str(repo_dir))
    b.run("pull")
    assert all((b.claude / rel).read_bytes() == data for rel, data in files.items())


def test_output_into_a_closed_pipe_ends_quietly(machines, repo_dir):
    """`claude-sync log | head -1`: the reader went away, which is no error to report."""
    a, _ = machines
    populate(a)
    a.run("init", str(repo_dir))
    a.run("push")
    for command in (["log"], ["sessions"], ["status"], ["sessions", "--json"], ["--help"]):
        read, write = os.pipe()
        os.close(read)
        proc = a.start(*command, stdout=write)
        _, stderr = proc.communicate(timeout=60)
        os.close(write)
        assert (proc.returncode, stderr) == (128 + signal.SIGPIPE, ""), command


def test_output_that_cannot_be_written_is_one_line(machines, repo_dir):
    """`claude-sync --help > /dev/full` (printed while the options are read, before any
    command runs) was a traceback; `status > /dev/full` ended with Python's own message and
    status 120 once the output was buffered (as it is without PYTHONUNBUFFERED), and
    `--json status` with two tracebacks. Buffered or not, each says the output is at fault
    (not the disk of the data)."""
    a, _ = machines
    a.write("agents/x.md", "x\n")
    a.run("init", str(repo_dir), "--create")
    buffered = {k: v for k, v in a.environ().items() if k != "PYTHONUNBUFFERED"}
    for env, args in itertools.product(
        (buffered, a.environ()),
        (
            ["--help"],
            ["--version"],
            ["push", "--help"],
            ["init", "--help"],  # longer than a buffer: written straight through
            ["status"],
            ["--json", "status"],
            ["types"],  # a table, through Rich
            ["--json", "types"],
        ),
    ):
        with open("/dev/full", "w") as full:
            proc = a.start(*args, stdout=full, env=env)
            _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 1, (args, stderr)
        assert stderr == "error: cannot write the output (No space left on device)\n", args


def test_a_push_with_nothing_to_do_loads_little(machines, repo_dir):
    """Hooks run a push many times a day, most with nothing to send: it prints its line
    without loading Rich (a twentieth of its time) or any cloud SDK."""
    a, _ = machines
    a.write("agents/x.md", "x\n")
    a.write(f"{PROJECT}/s.jsonl", transcript("s", 3))
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    loaded = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'rich', 'boto3', 'botocore', 'google'}), file=sys.stderr))\n"
    )
    proc = a.run_after(loaded, "push")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Nothing to push: nothing changed here since the last sync.\n"
    assert proc.stderr == "[]\n"


def test_a_log_of_both_streams_has_the_lines_in_order(machines, repo_dir):
    """A hook's log (`>> log 2>&1`) takes both streams, and stdout is buffered there (no
    PYTHONUNBUFFERED): each line is written out in the order it was printed."""
    a, _ = machines
    a.write("agents/a.md", "x\n")
    a.write("agents/b\x01.md", "y\n")
    a.run("init", str(repo_dir), "--create")
    env = {k: v for k, v in a.environ().items() if k != "PYTHONUNBUFFERED"}
    for args, first, then in (
        (["status"], "Remote: ", "warning: agents/b?.md"),
        (["-v", "push"], "    push agents/a.md", "warning: agents/b?.md"),
    ):
        proc = a.start(*args, env=env, stderr=subprocess.STDOUT)
        log, _ = proc.communicate(timeout=60)
        lines = log.splitlines()
        at = [next(i for i, line in enumerate(lines) if line.startswith(s)) for s in (first, then)]
        assert at[0] < at[1], (args, log)


def test_ctrl_c_while_starting_is_one_line(machines):
    """Loading the program takes a fifth of a second: Ctrl-C then is no traceback."""
    a, _ = machines
    for delay in (0.06, 0.09, 0.12, 0.15, 0.18, 0.21):
        proc = a.start("status")
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        # (On a loaded machine the interpreter itself may still be starting: a traceback
        # there, through none of the program's frames, is not the program's to catch.)
        assert "Traceback" not in stderr or "claude_sync" not in stderr, (delay, stderr)


def test_backend_holds_nothing_readable(machines, repo_dir):
    a, b = machines
    ids = populate(a)
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    needles = [
        PROJECT,
        "home-ann",
        ids["session"],
        ids["agent"],
        str(a.home),
        str(b.home),
        "reviewer",
        "SKILL",
        "history.jsonl",
        "pytest-of",
        SENTINEL,
    ]
    host = socket.gethostname()
    if len(host) >= 5:
        needles.append(host)
    for path in repo_dir.rglob("*"):
        rel = path.relative_to(repo_dir).as_posix()
        for needle in needles:
            assert needle not in rel, (needle, rel)
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                assert needle.encode() not in data, (needle, rel)


def all_plaintexts(repo_dir: Path, master: bytes) -> list[bytes]:
    """Decrypt every object of the repository with the master key."""
    keys = crypto.KeyRing(master)
    store = FolderStore(repo_dir)
    repo = Repository.open(store, master)
    plains = [keys.open("config", store.get("config"))]
    for seq in repo.snapshot_seqs():
        name = f"snapshots/{seq:010d}"
        plains.append(compression.unpack(keys.open(name, store.get(name)), name))
    for name in repo.index_names():
        plains.append(compression.unpack(keys.open(name, store.get(name)), name))
        for pack, wanted in group_by_pack(repo.load_index(name).items()).items():
            plains.extend(repo.read_pack(pack, wanted).values())
    return plains


def test_credentials_sentinel_is_in_no_decrypted_object(machines, repo_dir):
    a, _ = machines
    populate(a)
    a.run("init", str(repo_dir))
    a.run("push")
    key = json.loads((a.config_dir / "key").read_text())
    plains = all_plaintexts(repo_dir, crypto.unb64(key["master_key"], "key"))
    assert len(plains) > 5
    assert any(b"Review code." in p for p in plains)  # the decryption really worked
    assert not any(SENTINEL.encode() in p for p in plains)


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def test_any_flipped_byte_fails_pull_cleanly(machines, repo_dir, tmp_path):
    a, b = machines
    populate(a)
    set_up_pair(a, b, repo_dir)
    b.write("CLAUDE.md", "B's own memory\n")
    clean_config = tmp_path / "clean-config"
    shutil.copytree(b.config_dir, clean_config)
    before = snapshot_tree(b.claude)
    objects = [p for p in repo_dir.rglob("*") if p.is_file() and p.parent.name != "keys"]
    assert {p.relative_to(repo_dir).parts[0] for p in objects} == {
        "config",
        "data",
        "index",
        "manifest",
        "snapshots",
    }
    for obj in objects:
        original = obj.read_bytes()
        for offset in (0, len(original) // 2, len(original) - 1):
            shutil.rmtree(b.config_dir)
            shutil.copytree(clean_config, b.config_dir)
            flip_byte(obj, offset)
            try:
                proc = b.run("pull", check=False)
            finally:
                obj.write_bytes(original)
            assert proc.returncode == 1, (obj, offset, proc.stdout, proc.stderr)
            lines = proc.stderr.strip().splitlines()
            # One error; before it, only the files a damaged pack keeps from this pull, and
            # the conflict over CLAUDE.md, whose versions a merge reads by range (each blob
            # authenticated: damage elsewhere in their pack does not touch them).
            assert lines[-1].startswith("error:"), proc.stderr
            assert all(
                (line.startswith("warning:") and "could not be downloaded" in line)
                or line.startswith("conflict: CLAUDE.md")
                for line in lines[:-1]
            ), proc.stderr
            assert "Traceback" not in proc.stderr
            after = snapshot_tree(b.claude)
            copies = {p for p in after if "claude-sync-conflict" in p}
            assert {p: v for p, v in after.items() if p not in copies} == before, obj
            assert all(after[p][0] == snapshot_tree(a.claude)["CLAUDE.md"][0] for p in copies)
            for copy in copies:
                (b.claude / copy).unlink()
    assert b.run("pull", "--strategy", "local").returncode == 0


def test_flipped_key_object_or_wrong_passphrase_writes_nothing(machines, repo_dir):
    a, b = machines
    populate(a)
    a.run("init", str(repo_dir))
    a.run("push")
    b.write("CLAUDE.md", "mine\n")
    before = snapshot_tree(b.claude)
    proc = b.run("init", str(repo_dir), check=False, passphrase="not the passphrase")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: wrong passphrase for this repository (")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not b.config_dir.exists()
    assert snapshot_tree(b.claude) == before
    (key_obj,) = (repo_dir / "keys").iterdir()
    original = key_obj.read_bytes()
    for field in (b'"data": "', b'"salt": "'):
        # A changed wrapped key or salt no longer opens (the label is sealed on its own).
        flip_byte(key_obj, original.index(field) + len(field) + 5)
        proc = b.run("init", str(repo_dir), check=False)
        key_obj.write_bytes(original)
        assert proc.returncode == 1 and proc.stderr.startswith("error:")
        assert not b.config_dir.exists()
        assert not (b.home / ".local").exists()


def test_types_and_selective_push(machines, repo_dir):
    a, b = machines
    populate(a)
    listing = a.run("types").stdout
    for name in ("sessions", "history", "agents", "commands", "skills", "settings", "hooks"):
        assert name in listing
    a.run("init", str(repo_dir))
    result = a.json("push", "agents", "commands")
    assert sorted(result["pushed"]) == [
        "agents/link-in.md",
        "agents/reviewer.md",
        "commands/deploy.md",
    ]
    b.run("init", str(repo_dir))
    assert sorted(b.json("pull")["pulled"]) == sorted(result["pushed"])
    assert "settings.json" in a.json("push")["pushed"]
    assert "settings.json" in b.json("pull", "settings")["pulled"]
    assert not (b.claude / "history.jsonl").exists()
    proc = a.run("push", "nonsense", check=False)
    assert proc.returncode == 2


def test_a_pull_after_the_selection_grew_takes_what_the_last_pull_left_out(machines, repo_dir):
    """A head pulled in full with fewer types or more excludes is not "up to date" for a
    wider selection: status, pull and a later push-then-pull see what was left out."""
    a, b = machines
    a.write("agents/one.md", "one\n")
    a.write("agents/secret.md", "secret v1\n")
    a.write("todos/t1.json", '[{"content": "do it", "status": "pending"}]\n')
    a.run("init", str(repo_dir))
    a.run("types", "--enable", "todos")
    a.run("push")
    b.run("init", str(repo_dir))
    b.run("types", "--exclude", "agents/secret*")
    b.run("pull")
    assert not (b.claude / "todos").exists() and not (b.claude / "agents/secret.md").exists()
    b.run("types", "--enable", "todos")
    assert "todos/t1.json" in b.run("status").stdout
    assert b.json("pull")["pulled"] == ["todos/t1.json"]
    b.run("types", "--clear-globs")
    b.run("push")  # records the head as current again: still not pulled with this selection
    assert b.json("pull")["pulled"] == ["agents/secret.md"]
    # Disabled, then enabled again after a deletion elsewhere: the deletion arrives.
    b.run("types", "--disable", "agents")
    (a.claude / "agents/one.md").unlink()
    a.run("push")
    b.run("pull")
    assert (b.claude / "agents/one.md").exists()
    b.run("types", "--enable", "agents")
    assert b.json("pull")["deleted"] == ["agents/one.md"]
    assert b.run("pull").stdout.strip() == "Everything is up to date."
    # Disabled ("not on this machine"), removed here, enabled again: they come back, and
    # are deleted nowhere. The same for a file excluded, removed, then included again.
    a.write("agents/two.md", "two\n")
    a.run("push")
    b.run("pull")
    b.run("types", "--disable", "agents")
    shutil.rmtree(b.claude / "agents")
    b.run("sync")
    b.run("types", "--enable", "agents", "--exclude", "agents/secret*")
    b.run("sync")
    assert sorted(p.name for p in (b.claude / "agents").iterdir()) == ["two.md"]
    b.run("types", "--clear-globs")
    b.run("sync")
    a.run("sync")
    for m in (a, b):
        assert sorted(p.name for p in (m.claude / "agents").iterdir()) == ["secret.md", "two.md"]


def test_true_conflict_keeps_both_and_exits_3(machines, repo_dir):
    a, b = machines
    populate(a)
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    a.write("agents/reviewer.md", "A's version\n")
    a.run("push")
    b.write("agents/reviewer.md", "B's version\n")
    proc = b.run("pull", "--verbose", check=False)
    assert proc.returncode == 3
    assert "conflict: agents/reviewer.md" in proc.stderr and "sha256" in proc.stderr
    assert (b.claude / "agents/reviewer.md").read_text() == "B's version\n"
    copies = list((b.claude / "agents").glob("reviewer.md.claude-sync-conflict-*"))
    assert [c.read_text() for c in copies] == ["A's version\n"]
    # A push does not overwrite the remote version while the conflict stands.
    push = b.json("push", expect=3)
    assert push["conflicts"] == ["agents/reviewer.md"] and push["pushed"] == []
    status = b.json("status", expect=3)  # a script sees that a conflict waits
    assert status["conflicts"] == ["agents/reviewer.md"]
    # The conflict copy is never synced back.
    assert not any("conflict" in p for p in b.json("push", expect=3)["pushed"])
    # --strategy local settles it in favour of this machine; the next push sends it.
    assert b.json("pull", "--strategy", "local")["conflicts"] == []
    assert b.json("push")["pushed"] == ["agents/reviewer.md"]
    a.run("pull")
    assert (a.claude / "agents/reviewer.md").read_text() == "B's version\n"


@pytest.mark.parametrize("strategy", ["remote", "both"])
def test_conflict_strategies(machines, repo_dir, strategy):
    a, b = machines
    populate(a)
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    a.write("commands/deploy.md", "A\n")
    a.run("push")
    b.write("commands/deploy.md", "B\n")
    result = b.json("sync", "--strategy", strategy)
    assert result["conflicts"] == []
    if strategy == "remote":
        assert (b.claude / "commands/deploy.md").read_text() == "A\n"
        assert result["pushed"] == []
    else:
        assert (b.claude / "commands/deploy.md").read_text() == "B\n"
        copies = list((b.claude / "commands").glob("deploy.md.claude-sync-conflict-*"))
        assert [c.read_text() for c in copies] == ["A\n"]
        assert result["pushed"] == ["commands/deploy.md"]


def test_deletions_three_way(machines, repo_dir):
    a, b = machines
    ids = populate(a)
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    session = f"projects/{PROJECT}/{ids['session']}.jsonl"
    (a.claude / session).unlink()  # Claude Code's own clean-up of an old transcript
    (a.claude / "commands/deploy.md").unlink()  # the user removed a command
    result = a.json("push")
    assert result["pushed"] == ["commands/deploy.md"]
    assert b.json("pull")["deleted"] == ["commands/deploy.md"]
    assert not (b.claude / "commands/deploy.md").exists()
    assert (b.claude / session).exists()
    c_view = b.json("status")
    assert c_view["pulled"] == [] and c_view["deleted"] == []


def test_concurrent_pushes_both_land(machines, repo_dir):
    a, b = machines
    populate(a)
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    a.write("agents/a-only.md", "from A\n")
    b.write("agents/b-only.md", "from B\n")
    a.run("push")
    b.run("push")  # B has not pulled A's push: it must build on it, not replace it
    c_home = a.json("pull")
    assert c_home["pulled"] == ["agents/b-only.md"]
    b.run("pull")
    assert (b.claude / "agents/a-only.md").read_text() == "from A\n"
    assert synced_view(a) == synced_view(b) | {
        k: v for k, v in synced_view(a).items() if k not in synced_view(b)
    }


def test_dry_run_changes_nothing(machines, repo_dir):
    a, b = machines
    populate(a)
    a.run("init", str(repo_dir))
    before = snapshot_tree(repo_dir)
    dry = a.json("push", "--dry-run")
    assert "CLAUDE.md" in dry["pushed"]
    assert snapshot_tree(repo_dir) == before
    a.run("push")
    b.run("init", str(repo_dir))
    assert "CLAUDE.md" in b.json("pull", "--dry-run")["pulled"]
    assert not b.claude.exists()
    out = b.run("pull", "--dry-run").stdout
    assert "would pull CLAUDE.md" in out


def test_status_reports_pending_work(cli_inprocess, machines, repo_dir):
    a, b = machines
    populate(a)
    set_up_pair(a, b, repo_dir)

    def status(*args: str) -> str:
        code, out, err = cli_inprocess("status", *args, machine=b)
        assert code == 0, err
        return out

    body = json.loads(status("--json"))
    assert "CLAUDE.md" in body["pulled"] and body["pushed"] == []
    assert "to pull: CLAUDE.md" in status()
    b.run("pull")
    assert "up to date" in status()
    b.write("rules/new.md", "new\n")
    assert json.loads(status("--json"))["pushed"] == ["rules/new.md"]
    # In step before, the head moved since: status reads it again.
    a.write("CLAUDE.md", "moved\n")
    a.run("push")
    body = json.loads(status("--json"))
    assert "CLAUDE.md" in body["pulled"] and body["head"] == 2


def test_quiet_and_verbose_output(cli_inprocess, machines, repo_dir):
    a, b = machines
    populate(a)
    a.run("init", str(repo_dir))
    assert cli_inprocess("push", "-q", machine=a)[:2] == (0, "")
    a.write("CLAUDE.md", "changed\n")
    code, out, _ = cli_inprocess("push", "-v", machine=a)
    assert code == 0 and "push CLAUDE.md" in out
    code, out, _ = cli_inprocess("pull", machine=a)
    assert code == 0 and "Everything is up to date." in out
    # A push with nothing to send does not look at the repository: it cannot say more.
    b.write("agents/x.md", "x\n")
    b.run("init", str(repo_dir))
    b.run("sync")
    code, out, _ = cli_inprocess("push", machine=b)
    assert code == 0 and out.strip() == "Nothing to push: nothing changed here since the last sync."


def test_claude_dir_and_config_dir_options(make_machine, repo_dir, tmp_path):
    m = make_machine("m")
    custom = tmp_path / "custom-claude"
    (custom / "agents").mkdir(parents=True)
    (custom / "agents/x.md").write_text("x\n")
    cfg = tmp_path / "cfg"
    m.run("init", str(repo_dir), "--config-dir", str(cfg))
    m.env["CLAUDE_CONFIG_DIR"] = str(custom)
    assert m.json("push", "--config-dir", str(cfg))["pushed"] == ["agents/x.md"]
    n = make_machine("n")
    n.env["CLAUDE_SYNC_CONFIG_DIR"] = str(tmp_path / "cfg-n")
    n.run("init", str(repo_dir))
    target = tmp_path / "target"
    assert n.json("pull", "--claude-dir", str(target))["pulled"] == ["agents/x.md"]
    assert (target / "agents/x.md").read_text() == "x\n"


def test_leftover_temporary_files_are_cleaned_up(machines, repo_dir):
    a, _ = machines
    populate(a)
    a.run("init", str(repo_dir))
    folder = a.claude / "projects" / PROJECT
    stale = folder / ".s.jsonl.claude-sync-tmp-abc123"
    fresh = folder / ".t.jsonl.claude-sync-tmp-def456"
    stale.write_text("half a file")
    fresh.write_text("being written")
    # A pull's downloaded file has its own old time: only what has not changed for ten
    # minutes is a dead claude-sync's (a killed pull's files wait for the next one).
    os.utime(stale, (1_700_000_000, 1_700_000_000))
    pushed = a.json("push")["pushed"]
    assert not any("claude-sync-tmp" in p for p in pushed)
    assert stale.exists() and fresh.exists()
    later = "import time\nfrom claude_sync import resources\n"
    later += "resources.time = type('T', (), {'time': lambda: time.time() + 601})\n"
    assert a.run_after(later, "push").returncode == 0
    assert not stale.exists() and not fresh.exists()


COUNT_DOWNLOADS = """
import errno, os, sys
from claude_sync import downloads
from claude_sync.errors import BackendError
download = downloads.Downloads.download
def counted(self, needed, deliver, *args, **kwargs):
    print(f"blobs to download: {len(needed)}", file=sys.stderr)
    if not os.environ.get("FAIL_AT"):
        return download(self, needed, deliver, *args, **kwargs)
    # FAIL_AT: how many blobs are delivered first (or, negative, how many are not)
    fail_at = int(os.environ["FAIL_AT"]) % len(needed)
    delivered = []
    def then_fail(blob_id, data, *rest):
        if len(delivered) == fail_at:
            if os.environ.get("FAIL_WITH") == "full":
                raise OSError(errno.ENOSPC, "No space left on device")
            raise BackendError("the network went away")
        delivered.append(blob_id)
        deliver(blob_id, data, *rest)
    return download(self, needed, then_fail, *args, **kwargs)
downloads.Downloads.download = counted
"""
# Two transcripts, and a file that may be cut short (a transcript cut short gets its records
# back from the repository: it only grows)
PULLED = ["projects/-p/s0.jsonl", "projects/-p/s1.jsonl", "projects/-p/notes.md"]


def pull_failing(
    b: Machine, at: str, fail_with: str = ""
) -> tuple[subprocess.CompletedProcess[str], int]:
    """B's pull, failing (unless at is "") once that many blobs arrived (negative: all but
    that many); and how many blobs it was to download."""
    env = {"FAIL_AT": at, "FAIL_WITH": fail_with}
    os.environ.update(env)
    try:
        proc = b.run_after(COUNT_DOWNLOADS, "--json", "pull")
    finally:
        for key in env:
            del os.environ[key]
    return proc, int(re.findall(r"blobs to download: (\d+)", proc.stderr)[-1])


def three_big_files(a: Machine, b: Machine, repo_dir: Path) -> None:
    for path in PULLED:  # several chunks each: incompressible, over the 2 MiB chunk maximum
        a.write(path, os.urandom(3 << 20).hex()[: 5 << 20] + "\n")
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    b.run("init", str(repo_dir))


def assert_pulled_whole(a: Machine, b: Machine) -> None:
    for path in PULLED:
        assert (b.claude / path).read_bytes() == (a.claude / path).read_bytes()
    assert sorted(p.name for p in (b.claude / "projects/-p").iterdir()) == sorted(
        Path(p).name for p in PULLED
    )


def test_a_pull_that_failed_midway_takes_up_what_it_downloaded(machines, repo_dir):
    """A fresh pull of gigabytes that fails near its end (the network, Ctrl-C, a kill) left
    nothing behind it could use: the next pull downloaded everything again. The staged
    files stay, and the next pull downloads only the chunks they do not hold."""
    a, b = machines
    three_big_files(a, b, repo_dir)
    failed, wanted = pull_failing(b, "3")
    assert failed.returncode != 0 and "the network went away" in failed.stderr, failed.stderr
    assert not (b.claude / PULLED[0]).exists()
    left = list((b.claude / "projects/-p").iterdir())
    assert left and all(p.name.startswith(".claude-sync-tmp-") for p in left), left
    # What is there is checked, not trusted: bytes changed, or more of them, are not taken.
    biggest = max(left, key=lambda p: p.stat().st_size)
    with biggest.open("r+b") as fh:
        fh.write(b"X" * 10)
        fh.seek(0, os.SEEK_END)
        fh.write(b"junk past the end" * 100)
    # One no file of this pull takes up (a claude-sync's that died) goes too.
    (b.claude / "projects/-p/.claude-sync-tmp-0123456789abcdef0123").write_bytes(b"old")
    done, still_wanted = pull_failing(b, "")
    assert done.returncode == 0, done.stderr
    assert wanted - 3 <= still_wanted < wanted  # at most one of the three spoiled
    assert_pulled_whole(a, b)


CUT_OFF_IN_THE_INSTALL = """
import os, signal
from claude_sync import install
install.WRITE_BATCH = 1
record = install.Installer._record
def cut_off(self, part, *args):
    if part[0].path != os.environ["CUT_AT"]:
        return record(self, part, *args)
    for s in part:
        os.utime(s.tmp, (1_700_000_000, 1_700_000_000))  # a file's own time: old
    if os.environ["CUT_WITH"] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise KeyboardInterrupt
install.Installer._record = cut_off
"""


@pytest.mark.parametrize("cut_with", ["interrupt", "kill"])
def test_a_pull_cut_off_while_moving_files_into_place_takes_them_up(machines, repo_dir, cut_with):
    """A pull interrupted while it moved the downloaded files into place removed those not
    moved yet, and the next pull downloaded them again (33.8 MiB of a 50,000-file pull); a
    killed one left them, but with their files' own old times, which the next scan took
    for a dead claude-sync's: they stay, and the next pull takes them up; nothing is lost
    or doubled."""
    a, b = machines
    three_big_files(a, b, repo_dir)
    os.environ.update(CUT_AT=sorted(PULLED)[1], CUT_WITH=cut_with)
    try:
        cut = b.run_after(CUT_OFF_IN_THE_INSTALL, "pull")
    finally:
        del os.environ["CUT_AT"], os.environ["CUT_WITH"]
    if cut_with == "kill":
        assert cut.returncode == -signal.SIGKILL
    else:
        assert cut.returncode != 0 and "interrupted" in cut.stderr, cut.stderr
    first = sorted(PULLED)[0]
    assert (b.claude / first).read_bytes() == (a.claude / first).read_bytes()
    left = [p for p in (b.claude / "projects/-p").iterdir() if p.name.startswith(".claude-")]
    assert len(left) == 2, left
    b.run("status")  # a scan in between (as a hook's would be) leaves them
    done, wanted = pull_failing(b, "")
    assert done.returncode == 0, done.stderr
    assert wanted == 0
    assert_pulled_whole(a, b)
    assert b.json("status")["pushed"] == [] and "Nothing to push" in b.run("push").stdout


def test_a_pull_started_again_after_the_files_grew_takes_up_what_it_downloaded(machines, repo_dir):
    """Transcripts grow: by the time a failed pull is started again, another machine may
    have pushed more of them (or cut one short). The chunks of the old version that the new
    one keeps at their places are taken from what the failed pull left, and no byte past
    the new end stays."""
    a, b = machines
    three_big_files(a, b, repo_dir)
    failed, _ = pull_failing(b, "-1")
    assert failed.returncode != 0, failed.stderr
    for path in PULLED[:2]:
        a.append(path, "a new record\n")
    shorter = (a.claude / PULLED[2]).read_bytes()[: 3 << 20]
    a.write(PULLED[2], shorter.decode() + "\n")
    a.run("push")
    done, still_wanted = pull_failing(b, "")
    assert done.returncode == 0, done.stderr
    # The one not downloaded before, and the chunks the new versions do not share with the
    # old ones (their new ends: how many depends on the repository's chunker seed).
    key = json.loads((a.config_dir / "key").read_text())
    repo = Repository.open(FolderStore(repo_dir), crypto.unb64(key["master_key"], "key"))
    old, new = (repo.load_snapshot(seq).files for seq in (1, 2))
    added = {c for p in PULLED for c in new[p].chunks} - {c for p in PULLED for c in old[p].chunks}
    assert still_wanted <= 1 + len(added) < 10
    assert_pulled_whole(a, b)


def test_a_history_a_failed_pull_left_half_written_arrives_whole_and_mapped(machines, repo_dir):
    """history.jsonl (stored with its project folders as tokens) is written as stored while
    its blobs arrive, not gathered in memory (megabytes through the whole download): what
    a failed pull left of it, bytes changed and junk past its end, is not taken; the next
    pull checks it whole and writes it with this machine's folders."""
    a, b = machines
    shown = [os.urandom(1500).hex() for _ in range(2000)]  # incompressible: several chunks

    def history(m: Machine) -> str:
        return "".join(
            json.dumps({"display": d, "timestamp": i, "project": str(m.home / f"app{i % 7}")})
            + "\n"
            for i, d in enumerate(shown)
        )

    a.write("history.jsonl", history(a))
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    b.run("init", str(repo_dir))
    failed, _ = pull_failing(b, "3")
    assert failed.returncode != 0 and "the network went away" in failed.stderr, failed.stderr
    left = [p for p in b.claude.iterdir() if p.name.startswith(".claude-sync-tmp-")]
    assert len(left) == 1 and not (b.claude / "history.jsonl").exists(), left
    with left[0].open("r+b") as fh:
        fh.write(b"X" * 10)
        fh.seek(0, os.SEEK_END)
        fh.write(b"junk past the end" * 100)
    done, _ = pull_failing(b, "")
    assert done.returncode == 0, done.stderr
    assert (b.claude / "history.jsonl").read_text() == history(b)
    assert [p.name for p in b.claude.iterdir()] == ["history.jsonl"]


def test_a_history_that_grew_elsewhere_costs_a_pull_its_new_lines(machines, repo_dir):
    """history.jsonl is stored with its project folders as tokens, so its copy here is not
    what is stored: each pull downloaded the whole history again for one new prompt (15 MiB
    in a user's run). Its chunks are now looked for in the copy here made logical again,
    once per pull; and a history merged from two machines' prompts keeps the repository's
    chunks as far as they match, so its push sends the new prompts, not the history."""
    a, b = machines
    # Random hex compresses ~2x: sizes below are about half the text's.
    shown = [os.urandom(750).hex() for _ in range(2000)]  # 3 MB: several chunks

    def line(m: Machine, i: int, d: str) -> str:
        return json.dumps({"display": d, "timestamp": i, "project": str(m.home / f"app{i % 7}")})

    def history(m: Machine, lines: list[tuple[int, str]]) -> str:
        return "".join(line(m, i, d) + "\n" for i, d in lines)

    lines = list(enumerate(shown))
    a.write("history.jsonl", history(a, lines))
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    assert (b.claude / "history.jsonl").read_text() == history(b, lines)
    # A prompt of 800 KB: downloaded once, with at most the old last chunk (cut again with
    # what follows when under the minimum chunk size, 128 KiB), it is under 600 KiB; twice,
    # over 800 KiB; the whole history, 1.6 MB.
    big = os.urandom(400_000).hex()
    a.append("history.jsonl", line(a, 5000, big) + "\n")
    a.run("push")
    result = b.json("pull")
    assert 350 << 10 < result["downloaded_bytes"] < 600 << 10, result
    lines.append((5000, big))
    assert (b.claude / "history.jsonl").read_text() == history(b, lines)
    # Both add a prompt, B's older than A's: merged, B's comes first, and the history
    # begins with neither machine's.
    a.append("history.jsonl", line(a, 9000, "from a") + "\n")
    a.run("push")
    b.append("history.jsonl", line(b, 8000, "from b") + "\n")
    result = b.json("sync")
    assert result["downloaded_bytes"] < 160 << 10, result
    assert result["uploaded_bytes"] < 160 << 10, result
    lines += [(8000, "from b"), (9000, "from a")]
    assert (b.claude / "history.jsonl").read_text() == history(b, lines)
    result = a.json("pull")
    assert result["downloaded_bytes"] < 160 << 10, result
    assert (a.claude / "history.jsonl").read_text() == history(a, lines)
    b.append("history.jsonl", line(b, 10000, "later") + "\n")
    result = b.json("push")
    assert 0 < result["uploaded_bytes"] < 160 << 10, result


def test_a_prompt_being_written_here_stays_at_the_end_through_a_history_pull(machines, repo_dir):
    """Claude Code may be writing a prompt line here while a pull brings another machine's
    prompts: the history is written from its merge (not downloaded again), the unfinished
    line stays at its end, unsynced, and goes once it is whole."""
    a, b = machines

    def line(m: Machine, i: int, d: str) -> str:
        return json.dumps({"display": d, "timestamp": i, "project": str(m.home / "app")})

    old = [(i, os.urandom(750).hex()) for i in range(400)]
    a.write("history.jsonl", "".join(line(a, i, d) + "\n" for i, d in old))
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    a.append("history.jsonl", line(a, 5000, "from a") + "\n")
    a.run("push")
    typing = line(b, 6000, "still typ")
    b.append("history.jsonl", typing[:-5])
    result = b.json("pull")
    assert result["pulled"] == ["history.jsonl"] and result["downloaded_bytes"] < 96 << 10, result
    mine = (b.claude / "history.jsonl").read_text()
    assert mine == "".join(line(b, i, d) + "\n" for i, d in [*old, (5000, "from a")]) + typing[:-5]
    assert "Everything is up to date." in b.run("status").stdout
    b.append("history.jsonl", typing[-5:] + "\n")
    b.run("push")
    a.run("pull")
    assert (
        (a.claude / "history.jsonl")
        .read_text()
        .endswith(line(a, 5000, "from a") + "\n" + line(a, 6000, "still typ") + "\n")
    )


def test_a_pull_that_filled_the_disk_gives_the_space_back(machines, repo_dir):
    a, b = machines
    three_big_files(a, b, repo_dir)
    failed, _ = pull_failing(b, "-1", "full")
    assert failed.returncode == 1 and "no space left" in failed.stderr, failed.stderr
    assert not [p for p in b.claude.rglob("*") if p.is_file()]


def test_pull_never_writes_through_a_folder_symlinked_out_of_the_claude_dir(
    machines, repo_dir, tmp_path
):
    a, b = machines
    a.write("skills/pdf/SKILL.md", "from A\n")
    a.write("agents/new/deep.md", "from A\n")
    set_up_pair(a, b, repo_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (b.claude / "skills").mkdir(parents=True)
    (b.claude / "skills" / "pdf").symlink_to(elsewhere)
    proc = b.run("pull", check=False)
    # That one path is skipped with a warning; the rest of the pull goes on.
    assert proc.returncode == 0 and "skills/pdf is a link to" in proc.stderr
    assert "outside the synced folder; skipped" in proc.stderr
    assert list(elsewhere.iterdir()) == []
    assert (b.claude / "agents/new/deep.md").read_text() == "from A\n"
    (b.claude / "skills" / "pdf").unlink()
    assert "Everything is up to date" not in b.run("pull").stdout
    assert (b.claude / "skills/pdf/SKILL.md").read_text() == "from A\n"


def test_an_unmounted_repository_folder_is_a_failure_not_a_setting(machines, repo_dir):
    """A repository folder that went away (an unplugged drive) fails with exit 1 and says
    so; a bad setting would be exit 2."""
    a, _ = machines
    a.write("agents/x.md", "x\n")
    a.run("init", str(repo_dir))
    a.run("push")
    repo_dir.rename(repo_dir.with_name("away"))
    # With nothing to send, a push would not need the repository: it still must not say
    # all is well.
    nothing_new = a.run("push", check=False)
    assert nothing_new.returncode == 1, nothing_new.stdout + nothing_new.stderr
    assert "up to date" not in nothing_new.stdout
    assert nothing_new.stderr.startswith("error: cannot reach the repository"), nothing_new.stderr
    a.write("agents/x.md", "changed\n")
    for command in ("push", "pull", "status"):
        proc = a.run(command, check=False)
        assert proc.returncode == 1, (command, proc.stderr)
        assert (
            proc.stderr.startswith("error: cannot reach the repository")
            and "does not exist" in proc.stderr
        )


# -- status and dry runs say what pull and push will do -------------------------------------------


def test_status_shows_conflicts_merges_and_deletions_as_pull_will_do(
    cli_inprocess, machines, repo_dir
):
    a, b = machines
    a.write("agents/x.md", "one\n")
    a.write("agents/gone.md", "bye\n")
    a.write("settings.json", json.dumps({"model": "opus"}) + "\n")
    a.run("init", str(repo_dir), "--sync")
    # b joins with its own settings.json: no base, keys on one side only are additions.
    b.write("settings.json", json.dumps({"theme": "dark"}) + "\n")
    b.run("init", str(repo_dir))
    code, status, _ = cli_inprocess("status", machine=b)
    assert code == 0 and re.search(r"will merge: settings\.json", status), status
    assert "to pull: agents/x.md" in status
    b.run("pull")
    assert json.loads((b.claude / "settings.json").read_text()) == {
        "theme": "dark",
        "model": "opus",
    }
    b.run("push")
    a.run("pull")
    # Both change agents/x.md, a deletes agents/gone.md: status says conflict and deletion.
    a.write("agents/x.md", "a's\n")
    (a.claude / "agents/gone.md").unlink()
    a.run("push")
    b.write("agents/x.md", "b's\n")
    proc = cli_inprocess("status", machine=b)
    assert proc.exit_code == 3  # a conflict is coming: a script learns it from the exit code
    assert "to pull: agents/x.md" not in proc.stdout
    assert "conflict: agents/x.md" in proc.stderr
    assert "to delete: agents/gone.md" in proc.stdout
    code, out, _ = cli_inprocess("status", "--json", machine=b)
    body = json.loads(out)
    assert code == 3
    assert body["conflicts"] == ["agents/x.md"] and body["deleted"] == ["agents/gone.md"]
    assert b.run("pull", check=False).returncode == 3  # as status said


def test_dry_runs_say_would_and_json_marks_them(machines, repo_dir):
    a, b = machines
    a.write("agents/x.md", "x" * 3000)
    a.write("agents/y.md", "y\n")
    a.run("init", str(repo_dir))
    out = a.run("push", "--dry-run").stdout
    assert re.search(r"would push 2 files \(≈2\.9 KiB\)", out), out
    assert "pushed" not in out
    body = a.json("push", "--dry-run")
    assert body["dry_run"] is True and body["pushed"] == ["agents/x.md", "agents/y.md"]
    assert "dry_run" not in a.json("push")
    a.write("agents/y.md", "y2\n")
    assert "pushed 1 file (" in a.run("push").stdout
    # Global options before the command.
    assert "push agents/" not in a.run("-v", "push").stdout  # nothing to do
    assert json.loads(a.run("--json", "status").stdout)["head"] == 2
    b.run("init", str(repo_dir))
    assert "would pull 2 files (≈" in b.run("pull", "--dry-run").stdout
    assert b.json("pull", "--dry-run")["dry_run"] is True
    assert "pull agents/x.md" in b.run("-v", "pull").stdout


def test_a_folder_replaced_by_a_file_and_back_arrives_in_one_pull(machines, repo_dir):
    """A folder's files deleted left the folder, which then took the place of the file of
    that name: the pull kept "the local version" on every sync, the machines differed and
    sync exited 0. The other way, the file was in the way of the folder for one pull."""
    a, b = machines
    a.write("commands/tools/a.md", "a\n")
    a.write("commands/tools/b.md", "b\n")
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    shutil.rmtree(a.claude / "commands/tools")
    a.write("commands/tools", "now a file\n")
    a.run("push")
    assert b.json("pull")["warnings"] == []
    assert (b.claude / "commands/tools").read_text() == "now a file\n"
    (a.claude / "commands/tools").unlink()
    a.write("commands/tools/x.md", "x\n")
    a.run("push")
    assert b.json("pull")["warnings"] == []
    assert (b.claude / "commands/tools/x.md").read_text() == "x\n"
    assert b.run("status").stdout.strip().endswith("Everything is up to date.")


def test_json_output_is_one_object_even_when_the_command_fails(machines, repo_dir, tmp_path):
    """A script asking for --json read nothing on stdout when the command failed."""
    a, _ = machines
    proc = a.run("status", "--json", check=False)
    assert proc.returncode == 2 and json.loads(proc.stdout)["exit_code"] == 2
    assert "not set up" in json.loads(proc.stdout)["error"]
    gone = tmp_path / "unplugged"
    a.write("agents/x.md", "x\n")
    a.run("init", str(gone), "--create")
    a.run("push")
    shutil.rmtree(gone)
    usage = a.run("--json", "push", "--bogus", check=False)
    assert usage.returncode == 2 and json.loads(usage.stdout)["exit_code"] == 2
    for command in (("push", "--json"), ("--json", "sync"), ("log", "--json")):
        proc = a.run(*command, check=False)
        assert proc.returncode == 1, command
        (line,) = proc.stdout.splitlines()
        assert "does not exist" in json.loads(line)["error"], command


def test_a_merge_of_a_small_file_reads_its_base_by_range(machines, repo_dir):
    """Merging a 2 KiB agent downloaded the whole pack of the first push its base was in
    (3.3 MiB in a user's run)."""
    a, b = machines
    a.write("agents/x.md", "".join(f"line {i}\n" for i in range(50)))
    a.write("rules/big/data.txt", os.urandom(3 << 20).hex())  # one big first pack
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    a.write("agents/x.md", (a.claude / "agents/x.md").read_text() + "last\n")
    a.run("push")
    b.write("agents/x.md", "first\n" + (b.claude / "agents/x.md").read_text())
    result = b.json("sync")
    assert result["conflicts"] == [] and result["pushed"] == ["agents/x.md"], result
    assert result["downloaded_bytes"] < 64 << 10, result
    merged = (b.claude / "agents/x.md").read_text()
    assert merged.startswith("first\n") and merged.endswith("last\n")


def test_a_file_where_another_machine_made_a_folder_is_held_back(machines, repo_dir):
    """With `--strategy local`, the repository held both rules/foo and rules/foo/x.md,
    and each machine warned on every sync, for good."""
    a, b = machines
    a.write("rules/foo", "a skill file\n")
    set_up_pair(a, b, repo_dir)
    b.run("pull")
    b.write("rules/foo", "B's edit\n")
    (a.claude / "rules/foo").unlink()
    a.write("rules/foo/x.md", "# skill\n")
    a.run("push")
    result = json.loads(b.run("--json", "sync", "--strategy", "local", check=False).stdout)
    assert "rules/foo" in result["skipped"], result
    assert any("rules/foo/x.md a file in the repository" in w for w in result["warnings"])
    a.run("pull")
    assert (a.claude / "rules/foo/x.md").read_text() == "# skill\n"
    assert (b.claude / "rules/foo").read_text() == "B's edit\n"  # kept here, not lost


def test_a_history_appended_out_of_order_arrives_as_it_is(machines, repo_dir):
    """A prompt line appended elsewhere with an older time: the machine that added nothing
    gets that history as it is, and has nothing to push back."""
    a, b = machines
    line = '{{"display":"{}","timestamp":{},"project":"/srv/app"}}\n'
    a.write("history.jsonl", line.format("one", 1000) + line.format("two", 3000))
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    b.run("init", str(repo_dir))
    b.run("pull")
    a.append("history.jsonl", line.format("older", 2000))
    a.run("push")
    b.run("pull")
    assert (b.claude / "history.jsonl").read_bytes() == (a.claude / "history.jsonl").read_bytes()
    assert "Everything is up to date." in b.run("status").stdout


def test_an_error_that_cannot_be_told_still_gives_its_code_and_json(machines):
    """Standard error full: the `error:` line is lost, but a script still gets the exit
    code and the JSON error object."""
    a, _ = machines
    with open("/dev/full", "w") as full:
        proc = a.start("--json", "status", stderr=full)
        stdout, _ = proc.communicate(timeout=60)
    got = json.loads(stdout)
    assert proc.returncode == got["exit_code"] == 2, (proc.returncode, stdout)
