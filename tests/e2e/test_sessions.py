"""The session catalog (`sessions`), lazy pull and `resume`, on two machines whose home
directories differ (`…/Users/ann` and `…/home/ann`), with realistic transcripts; `export` and
`import` of one session. `where` and `map`: test_sessions_anywhere.py."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pexpect
import pytest
from claude_cli import resumed, run_claude
from conftest import Machine, Outcome, transcript
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync import config
from claude_sync.errors import CorruptionError
from claude_sync.pathmap import MAX_NAME, claude_folder, encode
from claude_sync.repository import FileEntry, Repository, Snapshot
from claude_sync.session_summary import TITLE_MAX, summarize
from claude_sync.store.folder import FolderStore

DAY = 86400
NOW = time.time()
CLEANUP = 30 * DAY


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")[:-6] + "Z"


def realistic(
    sid: str,
    cwd: str,
    start: float,
    end: float,
    prompt: str,
    summary: str | None = None,
    branch: str = "main",
) -> str:
    """A transcript as Claude Code 2.x writes it: records without uuid or timestamp, meta and
    command records before the first typed prompt, a tool call and its result, a sub-agent
    record on a sidechain, a compaction boundary and its summary, a summary record."""
    u = [str(uuid.uuid4()) for _ in range(10)]

    def rec(kind: str, i: int, parent: str | None, when: float, **extra: object) -> dict:
        return {
            "type": kind,
            "uuid": u[i],
            "parentUuid": parent,
            "sessionId": sid,
            "timestamp": stamp(when),
            "cwd": cwd,
            "gitBranch": "main" if when == start else branch,
            "isSidechain": False,
            "userType": "external",
            "version": "2.0.50",
            **extra,
        }

    def user(i: int, parent: str | None, when: float, content: object, **extra: object) -> dict:
        return rec("user", i, parent, when, message={"role": "user", "content": content}, **extra)

    def assistant(i: int, parent: str, when: float, content: list) -> dict:
        message = {
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "id": f"msg_{i}",
            "type": "message",
            "content": content,
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 10, "output_tokens": 10},
        }
        return rec("assistant", i, parent, when, message=message)

    records: list[dict] = [
        {"type": "file-history-snapshot", "messageId": u[0], "snapshot": {}, "isSnapshotUpdate": 0},
        user(0, None, start, "Caveat: The messages below were generated locally.", isMeta=True),
        user(1, u[0], start, "<command-name>/model</command-name>"),
        user(2, u[1], start, [{"type": "text", "text": prompt}]),
        assistant(3, u[2], start, [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]),
        user(4, u[3], start, [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]),
        user(5, u[4], start, "a sub-agent's prompt, not the user's", isSidechain=True),
        rec("system", 6, None, end, subtype="compact_boundary", content="Conversation compacted"),
        user(7, u[6], end, "This session is being continued.", isCompactSummary=True),
        assistant(8, u[7], end, [{"type": "text", "text": "Done."}]),
        {"type": "last-prompt", "lastPrompt": prompt, "sessionId": sid},
    ]
    if summary is not None:
        records.insert(0, {"type": "summary", "summary": summary, "leafUuid": u[8]})
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Machine, Machine]:
    a = Machine(tmp_path / "a" / "Users" / "ann")
    b = Machine(tmp_path / "b" / "home" / "ann")
    for m in (a, b):
        (m.home / "code" / "app").mkdir(parents=True)
    return a, b


def folder(m: Machine, project: str = "app") -> str:
    return encode(str(m.home / "code" / project))


def write_sessions(a: Machine) -> dict[str, str]:
    """On A: a recent session with sub-agent and tool results, an old one with a summary and
    a compaction, and a recent one in a project that does not exist on B."""
    ids = {"new": str(uuid.uuid4()), "old": str(uuid.uuid4()), "other": str(uuid.uuid4())}
    app, other = str(a.home / "code" / "app"), str(a.home / "code" / "other")
    long_prompt = "Fix the flaky login test\n\n  in auth.py " + "and explain why " * 10
    new = realistic(ids["new"], app, NOW - 2 * DAY, NOW - DAY, long_prompt, branch="login")
    a.write(f"projects/{folder(a)}/{ids['new']}.jsonl", new, mtime=NOW - DAY)
    a.write(f"projects/{folder(a)}/{ids['new']}/subagents/agent-1.jsonl", '{"x": 1}\n')
    a.write(f"projects/{folder(a)}/{ids['new']}/tool-results/r1.txt", "output " * 50)
    old = realistic(
        ids["old"], app, NOW - 401 * DAY, NOW - 400 * DAY, "old prompt", "Refactor billing"
    )
    a.write(f"projects/{folder(a)}/{ids['old']}.jsonl", old, mtime=NOW - 400 * DAY)
    a.write(f"projects/{folder(a)}/{ids['old']}/subagents/agent-2.jsonl", '{"y": 2}\n')
    a.write(f"projects/{folder(a)}/memory/notes.md", "# notes\n", mtime=NOW - 60 * DAY)
    a.write(
        f"projects/{folder(a, 'other')}/{ids['other']}.jsonl",
        realistic(ids["other"], other, NOW - 3 * DAY, NOW - 3 * DAY, "elsewhere"),
    )
    return ids


def set_up(a: Machine, b: Machine, repo: Path) -> dict[str, str]:
    ids = write_sessions(a)
    a.run("init", str(repo), "--create", "--device", "ann-mac")
    a.run("push")
    b.run("init", str(repo), "--device", "ann-linux")
    return ids


@pytest.fixture
def catalog(cli_inprocess: Callable[..., Outcome]) -> Callable[..., list[dict]]:
    """`sessions --json` on a machine, run in-process: it only reads and prints."""

    def read(m: Machine, *args: str) -> list[dict]:
        code, out, err = cli_inprocess("sessions", "--json", *args, machine=m)
        assert code == 0, err
        return json.loads(out)

    return read


def test_catalog_lists_every_session_without_downloading(catalog, cli_inprocess, pair, repo_dir):
    a, b = pair
    ids = set_up(a, b, repo_dir)
    listed = catalog(b)
    assert [s["id"] for s in listed] == [ids["new"], ids["other"], ids["old"]]  # newest first
    new, other, old = listed
    assert (
        new["title"]
        == "Fix the flaky login test in auth.py "
        + ("and explain why " * 10)[: TITLE_MAX - len("Fix the flaky login test in auth.py ") - 1]
        + "…"
    )
    assert len(new["title"]) == TITLE_MAX
    assert new["project"] == str(b.home / "code" / "app")  # where it resumes here
    assert new["device"] == "ann-mac" and new["local"] is False
    assert new["updated"] == iso(NOW - DAY) and new["records"] == 11
    assert new["branch"] == "login" and new["cwd"] == str(a.home / "code" / "app")
    transcript = a.claude / f"projects/{folder(a)}/{ids['new']}.jsonl"
    assert new["bytes"] == transcript.stat().st_size + len('{"x": 1}\n') + len("output " * 50)
    assert old["title"] == "Refactor billing" and old["records"] == 12
    assert old["updated"] == iso(NOW - 400 * DAY) and old["branch"] == "main"
    assert other["project"] == "~-code-other"  # no such directory here: the stored name
    assert other["title"] == "elsewhere"
    assert not (b.claude / "projects").exists()  # listing downloaded no transcript
    # --json before the command, as for every other command.
    assert json.loads(cli_inprocess("--json", "sessions", machine=b).stdout) == listed

    # The filters.
    app = str(b.home / "code" / "app")
    assert [s["id"] for s in catalog(b, "--project", app)] == [ids["new"], ids["old"]]
    assert catalog(b, "--device", "nobody") == []
    assert [s["id"] for s in catalog(b, "--limit", "1")] == [ids["new"]]
    assert [s["id"] for s in catalog(b, "--grep", "BILLING")] == [ids["old"]]
    assert catalog(b, "--grep", "compacted") == []
    found = catalog(b, "--grep", "Conversation compacted", "--content")
    assert {s["id"] for s in found} == set(ids.values())
    code, text, _ = cli_inprocess("sessions", machine=b)
    assert code == 0 and ids["old"] in text and "Refactor billing" in text
    bad = cli_inprocess("sessions", "--here", "--project", app, machine=b)
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr


def test_lazy_pull_leaves_old_sessions_remote(catalog, pair, repo_dir):
    a, b = pair
    ids = set_up(a, b, repo_dir)
    # Before the pull, only what it will leave behind counts as remote-only.
    assert b.json("status")["remote_only_sessions"] == 1
    pulled = b.json("pull")["pulled"]
    here = b.claude / "projects" / folder(b)
    assert (here / f"{ids['new']}.jsonl").exists()
    assert (here / ids["new"] / "subagents" / "agent-1.jsonl").exists()
    assert (here / ids["new"] / "tool-results" / "r1.txt").exists()
    assert (here / "memory" / "notes.md").exists()
    assert not (here / f"{ids['old']}.jsonl").exists() and not (here / ids["old"]).exists()
    assert not any(ids["old"] in p for p in pulled)
    assert {s["id"]: s["local"] for s in catalog(b)} == {
        ids["new"]: True,
        ids["other"]: True,
        ids["old"]: False,
    }
    assert b.json("status")["remote_only_sessions"] == 1
    assert "1 session is only in the repository" in b.run("status").stdout

    # Remote-only is not a deletion: B's pushes and A's pulls keep the old session.
    b.write("CLAUDE.md", "from b\n")
    b.run("push")
    assert a.json("pull")["deleted"] == []
    assert (a.claude / f"projects/{folder(a)}/{ids['old']}.jsonl").exists()

    # Neither is Claude Code's clean-up of a pulled session here.
    (here / f"{ids['new']}.jsonl").unlink()
    assert b.json("push")["pushed"] == []
    assert {s["id"]: s["local"] for s in catalog(b)}[ids["new"]] is False
    assert b.json("status")["remote_only_sessions"] == 2
    assert catalog(a)[0]["id"] == ids["new"]

    # A pull that was already complete is not "up to date" once the window grows.
    b.run("config", "sessions.window", "all")
    assert any(ids["old"] in p for p in b.json("pull")["pulled"])
    assert (here / ids["old"] / "subagents" / "agent-2.jsonl").exists()


def test_status_counts_the_sessions_of_the_head_it_sees(pair, repo_dir):
    # status keeps the head's transcripts between runs: a new head must not be counted by
    # the old one's list, nor a local transcript deleted since.
    a, b = pair
    ids = set_up(a, b, repo_dir)
    b.run("pull")
    assert b.json("status")["remote_only_sessions"] == 1
    older = str(uuid.uuid4())
    app = str(a.home / "code" / "app")
    a.write(
        f"projects/{folder(a)}/{older}.jsonl",
        realistic(older, app, NOW - 501 * DAY, NOW - 500 * DAY, "older prompt"),
        mtime=NOW - 500 * DAY,
    )
    a.run("push")
    status = b.json("status")
    assert status["head"] == 2 and status["remote_only_sessions"] == 2
    assert b.json("status")["remote_only_sessions"] == 2
    (b.claude / f"projects/{folder(b)}/{ids['new']}.jsonl").unlink()
    assert b.json("status")["remote_only_sessions"] == 3


def test_pull_all_and_window_setting(cli_inprocess, pair, repo_dir):
    a, b = pair
    ids = set_up(a, b, repo_dir)

    def window(*value: str) -> Outcome:
        return cli_inprocess("config", "sessions.window", *value, machine=b)

    assert window("500d").exit_code == 0
    assert "500d" in window().stdout
    bad = window("soon")
    assert bad.exit_code == 2 and bad.stderr.startswith("error:")
    assert window("default").exit_code == 0
    assert "30d" in window().stdout
    b.run("pull")
    assert b.json("status")["remote_only_sessions"] == 1
    b.run("pull", "--all")
    assert (b.claude / f"projects/{folder(b)}/{ids['old']}.jsonl").exists()
    assert b.json("status")["remote_only_sessions"] == 0
    # Claude Code cleans the old session up here: it stays in the repository, and `pull
    # --all` brings it back, as status says (it said "up to date" and brought nothing).
    old = b.claude / f"projects/{folder(b)}/{ids['old']}.jsonl"
    old.unlink()
    shutil.rmtree(old.with_suffix(""))
    assert b.json("push")["removed"] == []
    assert b.json("status")["remote_only_sessions"] == 1
    pulled = b.json("pull", "--all")["pulled"]
    assert any(p.endswith(f"{ids['old']}.jsonl") for p in pulled)
    assert old.exists() and (old.with_suffix("") / "subagents" / "agent-2.jsonl").exists()
    assert b.json("status")["remote_only_sessions"] == 0


def test_resume_print_places_an_old_session_that_survives_cleanup(catalog, pair, repo_dir):
    a, b = pair
    ids = set_up(a, b, repo_dir)
    b.run("pull")
    proc = b.run("resume", ids["old"][:8], "--print")
    directory = b.home / "code" / "app"
    assert proc.stdout.strip() == f"cd {directory} && claude --resume {ids['old']}"
    placed = b.claude / "projects" / encode(str(directory)) / f"{ids['old']}.jsonl"
    source = a.claude / f"projects/{folder(a)}/{ids['old']}.jsonl"
    assert placed.read_bytes() == source.read_bytes()  # records keep their true times
    assert (placed.parent / ids["old"] / "subagents" / "agent-2.jsonl").exists()
    # Claude Code deletes files whose mtime is older than cleanupPeriodDays at start-up.
    for path in (placed, placed.parent / ids["old"] / "subagents" / "agent-2.jsonl"):
        assert path.stat().st_mtime > time.time() - CLEANUP + DAY
    listed = {s["id"]: s for s in catalog(b)}[ids["old"]]
    assert listed["local"] is True and listed["updated"] == iso(NOW - 400 * DAY)
    assert b.json("push")["pushed"] == []  # placing it changed nothing to push

    # By title, too; and the ordinary pull's mtime rule: an old file gets a fresh mtime.
    assert ids["old"] in b.run("resume", "refactor", "--print").stdout


def test_pulled_session_with_an_old_mtime_gets_a_fresh_one(pair, repo_dir):
    a, b = pair
    ids = set_up(a, b, repo_dir)
    recent = a.claude / f"projects/{folder(a)}/{ids['new']}.jsonl"
    os.utime(recent, (NOW - 60 * DAY, NOW - 60 * DAY))  # e.g. copied from a backup
    a.run("push")
    b.run("pull")
    got = b.claude / f"projects/{folder(b)}/{ids['new']}.jsonl"
    assert got.read_bytes() == recent.read_bytes()
    assert got.stat().st_mtime > time.time() - CLEANUP + DAY
    memory = b.claude / f"projects/{folder(b)}/memory/notes.md"
    kept = (a.claude / f"projects/{folder(a)}/memory/notes.md").stat().st_mtime_ns
    assert memory.stat().st_mtime_ns == kept  # not a session file: Claude Code keeps it


def test_resume_errors_and_cwd(cli_inprocess, pair, repo_dir, tmp_path):
    a, b = pair
    ids = set_up(a, b, repo_dir)
    missing = cli_inprocess("resume", ids["other"], "--print", machine=b)
    assert missing.exit_code == 1 and "Traceback" not in missing.stderr
    # The directory as it would be here, not as recorded on a (another home).
    assert f"({b.home / 'code' / 'other'})" in missing.stderr, missing.stderr
    assert "--cwd" in missing.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli_inprocess("resume", ids["other"], "--print", "--cwd", str(elsewhere), machine=b)
    assert proc.exit_code == 0
    assert proc.stdout.strip() == f"cd {elsewhere} && claude --resume {ids['other']}"
    assert (b.claude / "projects" / encode(str(elsewhere)) / f"{ids['other']}.jsonl").exists()
    for query, expect in (("zzz-no-such", "no session matches"), ("i", "sessions match")):
        proc = cli_inprocess("resume", query, "--print", machine=b)
        assert proc.exit_code == 2 and expect in proc.stderr, proc.stderr


def test_resume_asks_on_a_terminal_when_several_match(pair, repo_dir):
    a, b = pair
    ids = set_up(a, b, repo_dir)
    child = b.on_terminal("resume", "i", "--print")
    child.expect("Which session")
    listing = child.before
    assert ids["old"] in listing and ids["new"] in listing
    number = next(line.split(".")[0].strip() for line in listing.splitlines() if ids["old"] in line)
    child.sendline(number)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert f"claude --resume {ids['old']}" in child.before


def test_real_claude_resumes_the_placed_session(pair, repo_dir):
    a, b = pair
    ids = set_up(a, b, repo_dir)
    b.run("pull")
    directory = b.home / "code" / "app"
    assert str(directory) in b.run("resume", ids["old"], "--print").stdout
    taken = resumed(b.home, ids["old"])
    found = run_claude(
        "-p", "hi", "--resume", ids["old"], home=b.home, cwd=directory, timeout=20, until=taken
    )
    # Past the look-up: offline and logged out, it stops at the login instead.
    assert "No conversation found" not in found.stdout + found.stderr
    assert "valid session ID" not in found.stdout + found.stderr
    assert taken()
    other = str(uuid.uuid4())
    unknown = run_claude("-p", "hi", "--resume", other, home=b.home, cwd=directory, timeout=20)
    assert "No conversation found" in unknown.stdout + unknown.stderr


def test_a_project_whose_folder_name_is_too_long_here_is_resumed_where_claude_looks(
    catalog, make_machine, repo_dir
):
    """A project folder name just short enough where it was pushed is over 200 characters
    on a machine with a longer home, where Claude Code cuts it and adds a hash of the path.
    A pull said the project was mapped to a label, and `resume` that its directory did not
    exist: the pull says why it stays, `resume` places the session in the folder Claude Code
    cuts the name to (the real CLI finds it there), and what is added there syncs back."""
    a, b = make_machine("a"), make_machine("b" * 40)
    rest = "code/" + "p" * (MAX_NAME - len(encode(str(a.home))) - 10)
    here, there = a.home / rest, b.home / rest
    assert len(encode(str(here))) <= MAX_NAME < len(encode(str(there)))
    there.mkdir(parents=True)
    sid = str(uuid.uuid4())
    source = a.write(f"projects/{encode(str(here))}/{sid}.jsonl", transcript(sid, 3, cwd=str(here)))
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    b.run("init", str(repo_dir))
    assert "over 200 characters here" in b.run("pull", "--all").stderr
    assert b.run("resume", sid, "--print").stdout.strip() == f"cd {there} && claude --resume {sid}"
    placed = b.claude / "projects" / claude_folder(str(there)) / f"{sid}.jsonl"
    assert placed.read_bytes() == source.read_bytes()
    taken = resumed(b.home, sid)
    found = run_claude("-p", "hi", "--resume", sid, home=b.home, cwd=there, timeout=20, until=taken)
    assert "No conversation found" not in found.stdout + found.stderr
    assert taken()
    with placed.open("a") as fh:
        fh.write(transcript(sid, 1, start=3, cwd=str(there)))
    assert b.json("push")["pushed"] == [
        f"projects/~{encode(str(here))[len(encode(str(a.home))) :]}/{sid}.jsonl"
    ]
    a.run("pull")
    # (Claude Code 2.1.332 writes its own records into the session it was asked to resume,
    # offline too: what it wrote comes along, between the two.)
    assert source.read_bytes() == placed.read_bytes()
    assert source.read_text().startswith(transcript(sid, 3, cwd=str(here)))
    assert source.read_text().endswith(transcript(sid, 1, start=3, cwd=str(there)))
    assert b.json("status")["pulled"] == [] and a.json("status")["pulled"] == []
    # Resumed again: from where it was placed, which `sessions` lists as here.
    assert b.run("resume", sid, "--print").stdout.strip() == f"cd {there} && claude --resume {sid}"
    assert {s["id"]: s["local"] for s in catalog(b)} == {sid: True}


def strip_summaries(a: Machine, repo_dir: Path) -> None:
    """What a claude-sync from before summaries would have pushed: the same files, no
    `session` field (a new snapshot written with the repository's own key)."""
    settings = config.load_settings(a.config_dir)
    master = config.load_master_key(a.config_dir, settings.repo_id)
    repo = Repository.open(FolderStore(repo_dir), master)
    head = repo.load_snapshot(repo.head_seq() or 0)
    files = {p: dataclasses.replace(e, session=None) for p, e in head.files.items()}
    assert repo.write_snapshot(Snapshot(head.seq + 1, head.seq, "old", time.time(), files))


def test_sessions_pushed_without_summaries_are_listed_and_resumable(catalog, pair, repo_dir):
    a, b = pair
    ids = set_up(a, b, repo_dir)
    strip_summaries(a, repo_dir)
    listed = {s["id"]: s for s in catalog(b)}
    old = listed[ids["old"]]
    assert old["title"] == "" and old["records"] == 0 and old["local"] is False
    assert old["updated"] == iso(NOW - 400 * DAY)  # the file's mtime stands in
    b.run("pull")
    assert not (b.claude / f"projects/{folder(b)}/{ids['old']}.jsonl").exists()
    # resume reads where the session ran from the transcript itself.
    printed = b.run("resume", ids["old"], "--print").stdout.strip()
    assert printed == f"cd {b.home / 'code' / 'app'} && claude --resume {ids['old']}"


# -- the summary itself -------------------------------------------------------------------


def test_summary_tolerates_half_written_and_foreign_lines():
    data = realistic("s", "/w", 1_700_000_000, 1_700_000_100, "hello there").encode()
    summary = summarize(data + b'{"type": "user", "timest', "dev")
    assert summary.title == "hello there" and summary.records == 12
    assert summary.first == 1_700_000_000 and summary.last == 1_700_000_100
    assert summarize(b"", "dev").title == "" and summarize(b"[1]\nnot json\n", "d").records == 2


def test_entries_without_summary_stay_readable_and_bad_ones_are_refused():
    entry = {"sha256": "0" * 64, "size": 0, "mtime_ns": 1, "mode": 0o600, "chunks": []}
    assert FileEntry.from_json(entry, "x").session is None
    with_summary = FileEntry.from_json(
        entry
        | {
            "session": {
                "title": "t",
                "cwd": "/w",
                "first": None,
                "last": 5.0,
                "records": 3,
                "branch": "",
                "device": "d",
                "future": "ignored",
            }
        },
        "x",
    )
    assert with_summary.session is not None and with_summary.session.last == 5.0
    for bad in ({"title": "t"}, {**with_summary.to_json()["session"], "records": -1}, "x"):
        with pytest.raises(CorruptionError):
            FileEntry.from_json(entry | {"session": bad}, "x")


@settings(max_examples=200, print_blob=True)
@given(st.text(), st.text(max_size=30))
def test_title_is_one_short_line(prompt, summary):
    data = realistic("s", "/w", 0, 1, prompt, summary or None).encode()
    title = summarize(data, "d").title
    assert len(title) <= TITLE_MAX and "\n" not in title and title == title.strip()


def test_a_session_resumed_elsewhere_syncs_as_the_same_session(catalog, pair, repo_dir, tmp_path):
    """resume --cwd places the session in another folder's project; what is added there
    goes back to the same session, not to a copy in a new project."""
    a, b = pair
    ids = set_up(a, b, repo_dir)
    sid = ids["other"]
    elsewhere = b.home / "scratch"
    elsewhere.mkdir()
    b.run("resume", sid, "--print", "--cwd", str(elsewhere))
    placed = f"projects/{encode(str(elsewhere))}/{sid}.jsonl"
    # `where` counts it where a pull places it: there, and no longer in its project.
    assert "Sessions after a pull: 1" in b.run("where", str(elsewhere)).stdout
    original_dir = b.home / "code" / "other"
    original_dir.mkdir(parents=True)
    assert sid not in b.run("where", str(original_dir)).stdout
    # And `sessions --here` lists it where `claude --resume` finds it.
    assert [s["id"] for s in catalog(b, "--project", str(elsewhere))] == [sid]
    assert sid not in [s["id"] for s in catalog(b, "--project", str(original_dir))]
    b.append(
        placed, json.dumps({"uuid": "b-added", "sessionId": sid, "cwd": str(elsewhere)}) + "\n"
    )
    b.run("sync")
    assert [s["id"] for s in catalog(b)].count(sid) == 1, catalog(b)
    a.run("pull")
    original = a.claude / f"projects/{folder(a, 'other')}/{sid}.jsonl"
    assert "b-added" in original.read_text()
    assert not list((a.claude / "projects").glob(f"*scratch*/{sid}.jsonl"))
    # And what A adds later reaches the copy B resumed.
    with original.open("a") as fh:
        fh.write(json.dumps({"uuid": "a-added", "sessionId": sid}) + "\n")
    a.run("push")
    b.run("pull")
    assert "a-added" in (b.claude / placed).read_text()


def test_a_growing_transcripts_summary_resumes_only_where_its_bytes_are_unchanged(
    catalog, make_machine, repo_dir
):
    """Each push reads a transcript's summary from where the last one stopped (a multi-GiB
    transcript is not read again per push), but only while the file begins with the bytes
    that summary covers: a file changed before that point is read from the start."""
    a = make_machine("a")
    a.run("init", str(repo_dir), "--create")
    sid = "5e551011-0000-4000-8000-000000000001"
    path = f"projects/-p/{sid}.jsonl"

    def record(i: int) -> str:
        # varied text, so that content-defined cuts fall between records
        noise = hashlib.sha256(str(i).encode()).hexdigest() * (i % 16)
        content = "hello" if i == 0 else f"step {i} {noise}"
        uuid = {"uuid": f"r{i}"} if i == 10 else {}
        return json.dumps({"type": "user", **uuid, "message": {"content": content}}) + "\n"

    a.write(path, "".join(record(i) for i in range(6000)))  # ~3 MiB: several chunks
    a.run("push")
    a.append(path, json.dumps({"type": "summary", "summary": "Grown"}) + "\n")
    a.append(path, "".join(record(i) for i in range(6000, 7000)))
    a.run("push")
    (listed,) = catalog(a)
    assert (listed["title"], listed["records"]) == ("Grown", 7001)
    # An early record split in place into two (same size; the first keeps its uuid, so a
    # push's merge keeps one of it), and more appended: the count must take in the new
    # record, not follow the stale checkpoint.
    data = (a.claude / path).read_bytes()
    start = data.index(record(10).encode())
    first = json.dumps({"type": "user", "uuid": "r10", "message": {"content": "x"}}) + "\n"
    second = {"type": "user", "uuid": "r10b", "message": {"content": ""}}
    second["message"]["content"] = "y" * (
        len(record(10)) - len(first) - len(json.dumps(second)) - 1
    )
    edited = (first + json.dumps(second) + "\n").encode()
    assert len(edited) == len(record(10))
    blanked = data[:start] + edited + data[start + len(record(10)) :]
    # Enough appended that the new last chunk starts past the old checkpoint (chunks are
    # at most 2 MiB), where the stale one could be taken.
    more = "".join(record(i) for i in range(7000, 13000)).encode()
    (a.claude / path).write_bytes(blanked + more)
    a.run("push")
    (listed,) = catalog(a)
    assert (listed["title"], listed["records"]) == ("Grown", 13002)


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


def test_a_first_pull_uses_the_clean_up_period_it_brings(pair, repo_dir):
    """A new machine's first pull brought settings.json with a longer clean-up period, but
    chose sessions by the default one: the next pull brought more, right after a join
    that said it was done."""
    a, b = pair
    ids = set_up(a, b, repo_dir)
    a.write("settings.json", json.dumps({"cleanupPeriodDays": 1000}) + "\n")
    a.run("push")
    result = b.json("pull")
    assert any(p.endswith(f"{ids['old']}.jsonl") for p in result["pulled"])  # 400 days old
    assert b.json("pull")["pulled"] == []
    assert b.json("status")["remote_only_sessions"] == 0


def test_a_session_already_here_moves_with_resume_cwd_and_back(catalog, pair, repo_dir):
    """A pull put the session in its project's folder (whose directory is not here yet):
    `resume --cwd` moves it, a later `resume` goes on where it is, and `resume --cwd` into
    its own directory brings it back. One copy all along, and what is added syncs (a copy
    left behind was the same session twice, and what it got never synced)."""
    a, b = pair
    sid = set_up(a, b, repo_dir)["other"]
    a.write(f"projects/{folder(a, 'other')}/{sid}/subagents/agent-9.jsonl", '{"z": 9}\n')
    a.run("push")
    b.run("pull")
    own = b.home / "code" / "other"
    at_home = b.claude / f"projects/{encode(str(own))}/{sid}.jsonl"
    assert at_home.exists()
    elsewhere = b.home / "scratch"
    elsewhere.mkdir()
    b.run("resume", sid, "--print", "--cwd", str(elsewhere))
    placed = b.claude / f"projects/{encode(str(elsewhere))}/{sid}.jsonl"
    assert placed.exists() and not at_home.exists()
    assert (placed.parent / sid / "subagents" / "agent-9.jsonl").exists()
    assert not (at_home.parent / sid).exists() and at_home.parent.is_dir()
    own.mkdir(parents=True)  # the project cloned here since
    again = b.run("resume", sid, "--print").stdout.strip()
    assert again == f"cd {elsewhere} && claude --resume {sid}"
    with placed.open("a") as fh:
        fh.write(json.dumps({"uuid": "b-added", "sessionId": sid}) + "\n")
    b.run("sync")
    original = a.claude / f"projects/{folder(a, 'other')}/{sid}.jsonl"
    a.run("pull")
    assert "b-added" in original.read_text()

    b.run("resume", sid, "--print", "--cwd", str(own))
    assert at_home.exists() and not placed.exists()
    with at_home.open("a") as fh:
        fh.write(json.dumps({"uuid": "b-again", "sessionId": sid}) + "\n")
    b.run("sync")
    a.run("pull")
    assert "b-again" in original.read_text()
    assert [s["id"] for s in catalog(b)].count(sid) == 1


def test_a_move_remembered_by_the_previous_version_is_resumed_where_it_went_on(pair, repo_dir):
    """claude-sync 0.1 remembered a `--cwd` move without its directory: a plain `resume`
    asked for --cwd again. The transcript's own records say where Claude Code ran it."""
    a, b = pair
    sid = set_up(a, b, repo_dir)["other"]
    b.run("pull")
    elsewhere = b.home / "scratch"
    elsewhere.mkdir()
    b.run("resume", sid, "--print", "--cwd", str(elsewhere))
    settings = json.loads((b.config_dir / "config.json").read_text())
    settings["moved_sessions"][sid] = settings["moved_sessions"][sid][:2]  # as 0.1 kept it
    (b.config_dir / "config.json").write_text(json.dumps(settings))
    placed = b.claude / f"projects/{encode(str(elsewhere))}/{sid}.jsonl"
    with placed.open("a") as fh:
        fh.write(json.dumps({"uuid": "b-1", "sessionId": sid, "cwd": str(elsewhere)}) + "\n")
    again = b.run("resume", sid, "--print").stdout.strip()
    assert again == f"cd {elsewhere} && claude --resume {sid}"
    kept = json.loads((b.config_dir / "config.json").read_text())["moved_sessions"][sid]
    assert kept[2] == str(elsewhere)


def test_a_session_under_a_label_not_mapped_here_continues_with_resume_cwd(pair, repo_dir):
    """A's projects are stored under a label (`map ~/code work`) that B does not map: resume
    says how to map it, and a session resumed with --cwd syncs back (it was never pushed:
    its path was left out as a label with no place here)."""
    a, b = pair
    sid = str(uuid.uuid4())
    app = str(a.home / "code" / "app")
    a.write(f"projects/{folder(a)}/{sid}.jsonl", realistic(sid, app, NOW - DAY, NOW, "hello"))
    a.run("init", str(repo_dir), "--create")
    a.run("map", str(a.home / "code"), "work")
    a.run("push")
    b.run("init", str(repo_dir))
    refused = b.run("resume", sid, "--print", check=False)
    assert refused.returncode == 1 and "claude-sync map DIR work" in refused.stderr, refused.stderr
    elsewhere = b.home / "scratch"
    elsewhere.mkdir()
    b.run("resume", sid, "--print", "--cwd", str(elsewhere))
    placed = b.claude / f"projects/{encode(str(elsewhere))}/{sid}.jsonl"
    with placed.open("a") as fh:
        fh.write(json.dumps({"uuid": "b-added", "sessionId": sid}) + "\n")
    assert b.json("push")["pushed"] == [f"projects/@work-app/{sid}.jsonl"]
    a.run("pull")
    assert "b-added" in (a.claude / f"projects/{folder(a)}/{sid}.jsonl").read_text()


def test_resume_brings_a_session_here_up_to_date_first(pair, repo_dir):
    """The copy here is behind: the session went on on another machine. resume brings the
    new records (merged with any added here) before Claude Code goes on from it."""
    a, b = pair
    sid = set_up(a, b, repo_dir)["new"]
    b.run("pull")
    mine = b.claude / f"projects/{folder(b)}/{sid}.jsonl"
    theirs = a.claude / f"projects/{folder(a)}/{sid}.jsonl"
    with theirs.open("a") as fh:
        fh.write(json.dumps({"uuid": "a-went-on", "sessionId": sid}) + "\n")
    a.run("push")
    with mine.open("a") as fh:
        fh.write(json.dumps({"uuid": "b-unpushed", "sessionId": sid}) + "\n")
    b.run("resume", sid, "--print")
    text = mine.read_text()
    assert "a-went-on" in text and "b-unpushed" in text


def test_where_promises_only_what_a_pull_brings(pair, repo_dir):
    """A session older than the window stays in the repository at a pull: `where` lists it
    apart, not among the sessions a pull places here."""
    a, b = pair
    ids = set_up(a, b, repo_dir)
    where = b.run("where", str(b.home / "code" / "app")).stdout
    assert "Sessions after a pull: 1" in where, where
    assert f"+ {ids['new']} (from the remote)" in where
    assert f"~ {ids['old']} (older: `claude-sync resume` or `pull --all`)" in where
    b.run("pull")
    assert "Sessions here:      1" in b.run("where", str(b.home / "code" / "app")).stdout


def test_resume_cwd_moves_all_of_a_session_and_merges_a_copy_already_there(pair, repo_dir):
    """What no push took yet (a sub-agent started here) moves with the session; a copy
    already where it goes (an older claude-sync copied instead of moving) keeps every
    record of both. One transcript remains, and it all syncs."""
    a, b = pair
    sid = set_up(a, b, repo_dir)["other"]
    b.run("pull")
    home_copy = b.claude / f"projects/{encode(str(b.home / 'code' / 'other'))}"
    (home_copy / sid / "subagents").mkdir(parents=True)
    (home_copy / sid / "subagents" / "agent-b.jsonl").write_text('{"uuid": "sub-b"}\n')
    with (home_copy / f"{sid}.jsonl").open("a") as fh:
        fh.write(json.dumps({"uuid": "b-home", "sessionId": sid}) + "\n")
    elsewhere = b.home / "scratch"
    elsewhere.mkdir()
    there = b.claude / f"projects/{encode(str(elsewhere))}"
    there.mkdir(parents=True)
    stale = (home_copy / f"{sid}.jsonl").read_text().splitlines()[:-1]
    extra = json.dumps({"uuid": "b-there", "sessionId": sid})
    (there / f"{sid}.jsonl").write_text("\n".join([*stale, extra]) + "\n")
    b.run("resume", sid, "--print", "--cwd", str(elsewhere))
    assert not (home_copy / f"{sid}.jsonl").exists() and not (home_copy / sid).exists()
    merged = (there / f"{sid}.jsonl").read_text()
    assert "b-home" in merged and "b-there" in merged
    assert (there / sid / "subagents" / "agent-b.jsonl").exists()
    b.run("sync")
    a.run("pull")
    original = a.claude / f"projects/{folder(a, 'other')}"
    lines = (original / f"{sid}.jsonl").read_text().splitlines()
    assert {"b-home", "b-there"} <= {json.loads(line).get("uuid") for line in lines}
    assert (original / sid / "subagents" / "agent-b.jsonl").exists()
    assert len(list((b.claude / "projects").rglob(f"{sid}.jsonl"))) == 1


def test_a_project_beside_the_home_is_not_taken_for_a_home_project(pair, repo_dir, tmp_path):
    """/Users/ann-work/site is Claude Code's `-…-Users-ann-work-site`, also the name of
    ~/work/site: it was pushed as a home project and placed under b's home. And b's
    ~/work/notes, whose name on a is that of a folder beside a's home, stays in the
    repository with a warning until `resume --cwd` places it."""
    a, b = pair
    site = a.home.parent / "ann-work" / "site"
    site.mkdir(parents=True)
    sid, mine = str(uuid.uuid4()), str(uuid.uuid4())
    a.write(f"projects/{encode(str(site))}/{sid}.jsonl", realistic(sid, str(site), NOW, NOW, "x"))
    a.run("init", str(repo_dir), "--create")
    a.run("push")
    b.run("init", str(repo_dir))
    b.run("pull")
    assert (b.claude / "projects" / encode(str(site)) / f"{sid}.jsonl").is_file()
    assert not (b.claude / "projects" / f"{encode(str(b.home))}-work-site").exists()

    notes = b.home / "work" / "notes"
    notes.mkdir(parents=True)
    b.write(
        f"projects/{encode(str(notes))}/{mine}.jsonl", realistic(mine, str(notes), NOW, NOW, "y")
    )
    b.run("push")
    pulled = a.run("pull")
    assert "folder beside your home" in pulled.stderr, pulled.stderr
    assert not (a.claude / "projects" / f"{encode(str(a.home))}-work-notes").exists()
    refused = a.run("resume", mine, "--print", check=False)
    assert refused.returncode == 1 and "--cwd" in refused.stderr
    there = tmp_path / "notes-here"
    there.mkdir()
    a.run("resume", mine, "--print", "--cwd", str(there))
    assert (a.claude / "projects" / encode(str(there)) / f"{mine}.jsonl").is_file()


def test_sessions_started_where_the_folder_name_is_cut_sync_under_the_projects_name(
    make_machine, repo_dir
):
    """On b (a longer home) Claude Code cuts the project's folder name: sessions started
    there were pushed under the cut name, which a keeps as it is, where its Claude Code
    never looks. They go under the project's name, and a's come into b's cut folder."""
    a, b = make_machine("a"), make_machine("b" * 40)
    rest = "code/" + "p" * (MAX_NAME - len(encode(str(a.home))) - 10)
    here, there = a.home / rest, b.home / rest
    here.mkdir(parents=True)
    there.mkdir(parents=True)
    cut = claude_folder(str(there))
    assert len(encode(str(there))) > MAX_NAME and cut != encode(str(there))
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    b.write(f"projects/{cut}/{first}.jsonl", transcript(first, 3, cwd=str(there)))
    b.run("init", str(repo_dir), "--create")
    assert b.json("push")["pushed"] == [
        f"projects/~{encode(str(here))[len(encode(str(a.home))) :]}/{first}.jsonl"
    ]
    a.run("init", str(repo_dir))
    a.run("pull")
    assert (a.claude / "projects" / encode(str(here)) / f"{first}.jsonl").is_file()
    a.write(f"projects/{encode(str(here))}/{second}.jsonl", transcript(second, 2, cwd=str(here)))
    a.run("push")
    b.run("pull")
    assert (b.claude / "projects" / cut / f"{second}.jsonl").is_file()
    assert sorted(p.name for p in (b.claude / "projects").iterdir()) == [cut]
    taken = resumed(b.home, second)
    found = run_claude(
        "-p", "hi", "--resume", second, home=b.home, cwd=there, timeout=20, until=taken
    )
    assert "No conversation found" not in found.stdout + found.stderr
    assert taken()
