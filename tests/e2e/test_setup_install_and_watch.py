"""Automatic sync: Claude Code hooks, git hooks and the watcher, run for real."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from conftest import Machine, transcript
from processes import stop, wait_for_line

from claude_sync import hook_install

# Root writes anywhere: without these capabilities, a folder of mode 500 is read-only.
UNPRIVILEGED = ("setpriv", "--inh-caps=-dac_override", "--bounding-set=-dac_override")

PROJECT = "-srv-code-app"


def settings_doc() -> dict[str, object]:
    return {
        "model": "opus",
        "hooks": {
            "SessionStart": [{"hooks": [{"type": "command", "command": "echo mine"}]}],
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "x"}]}],
        },
        "permissions": {"allow": ["Bash(ls)"]},
    }


def test_install_is_idempotent_and_uninstall_restores(make_machine, repo_dir):
    m: Machine = make_machine("m")
    original = json.dumps(settings_doc(), indent=2) + "\n"
    m.write("settings.json", original)
    m.run("init", str(repo_dir))
    m.run("install")
    m.run("install")
    data = json.loads((m.claude / "settings.json").read_text())
    for event, verb in (("SessionStart", "session-start"), ("SessionEnd", "session-end")):
        commands = [h["command"] for g in data["hooks"][event] for h in g["hooks"]]
        assert sum(f"hook {verb}" in c for c in commands) == 1, commands
    assert "echo mine" in json.dumps(data["hooks"]["SessionStart"])
    assert data["permissions"] == {"allow": ["Bash(ls)"]}
    assert "Nothing to change" in m.run("install").stdout
    m.run("install", "--uninstall")
    assert (m.claude / "settings.json").read_text() == original
    # Without any settings file: install creates one, uninstall leaves an empty object.
    project = m.home / "proj"
    m.run("install", "--project", str(project))
    assert "SessionEnd" in (project / ".claude/settings.json").read_text()
    m.run("install", "--project", str(project), "--uninstall")
    assert json.loads((project / ".claude/settings.json").read_text()) == {}


def test_hooks_installed_with_another_config_dir_use_it(make_machine, repo_dir):
    """Claude Code runs the hook's command line alone: a config folder chosen by option or
    variable at install must be on it (the hooks exited 0 and synced nothing)."""
    m: Machine = make_machine("m")
    chosen = m.home / "elsewhere config"
    m.write("agents/a.md", "mine\n")
    m.run("--config-dir", str(chosen), "init", str(repo_dir))
    m.env["CLAUDE_SYNC_CONFIG_DIR"] = str(chosen)
    m.run("install")
    data = json.loads((m.claude / "settings.json").read_text())
    command = data["hooks"]["SessionEnd"][0]["hooks"][0]["command"]
    assert "--config-dir" in command
    # The plugin's fixed command cannot name it: refused, the hooks stay.
    refused = m.run("install", "--plugin", check=False)
    assert refused.returncode == 2 and "use `claude-sync install`" in refused.stderr
    assert json.loads((m.claude / "settings.json").read_text()) == data
    del m.env["CLAUDE_SYNC_CONFIG_DIR"]
    event = json.dumps({"session_id": "s1", "hook_event_name": "SessionEnd", "cwd": "/srv"})
    env = m.environ() | {"PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("CLAUDE_SYNC_CONFIG_DIR", None)
    done = subprocess.run(command, shell=True, input=event, env=env, capture_output=True, text=True)
    assert done.returncode == 0
    log = chosen / "hooks.log"
    for _ in range(150):  # the hook syncs in the background
        if log.exists() and "session-end: pushed 2" in log.read_text():
            break
        time.sleep(0.1)
    assert "session-end: pushed 2" in log.read_text()  # the agent and settings.json
    m.env["CLAUDE_SYNC_CONFIG_DIR"] = str(chosen)
    assert m.json("status")["pushed"] == []


def hook(m: Machine, event: str, payload: dict[str, object], timeout: float = 10):
    return m.run("hook", event, "--timeout", str(timeout), stdin=json.dumps(payload))


def test_session_end_pushes_just_that_session(machines, repo_dir):
    a, b = machines
    a.write("CLAUDE.md", "memory\n")
    a.run("init", str(repo_dir))
    a.run("push")
    b.run("init", str(repo_dir))
    t1 = a.write(f"projects/{PROJECT}/s1.jsonl", transcript("s1", 3))
    a.write(f"projects/{PROJECT}/s1/subagents/agent-1.jsonl", transcript("g", 2))
    a.write(f"projects/{PROJECT}/s2.jsonl", transcript("s2", 3))
    a.write("history.jsonl", '{"display": "x", "timestamp": 1}\n')
    # What the session's project and sub-agents learnt goes with it.
    a.write(f"projects/{PROJECT}/memory/MEMORY.md", "- uses pytest\n")
    a.write("agent-memory/reviewer/MEMORY.md", "- prefers early returns\n")
    a.write("agents/other.md", "not the session's\n")
    event = {
        "session_id": "s1",
        "transcript_path": str(t1),
        "hook_event_name": "SessionEnd",
        "cwd": "/srv/code/app",
    }
    proc = hook(a, "session-end", event)
    assert proc.returncode == 0 and proc.stdout == ""
    assert sorted(a.json("status")["pushed"]) == ["agents/other.md", f"projects/{PROJECT}/s2.jsonl"]
    start = {"session_id": "s9", "hook_event_name": "SessionStart", "source": "startup"}
    assert hook(b, "session-start", start).stdout == ""
    assert (b.claude / f"projects/{PROJECT}/s1.jsonl").exists()
    assert (b.claude / f"projects/{PROJECT}/s1/subagents/agent-1.jsonl").exists()
    assert (b.claude / "history.jsonl").exists()
    assert (b.claude / f"projects/{PROJECT}/memory/MEMORY.md").exists()
    assert (b.claude / "agent-memory/reviewer/MEMORY.md").exists()
    assert not (b.claude / f"projects/{PROJECT}/s2.jsonl").exists()
    log = (b.config_dir / "hooks.log").read_text()
    assert "session-start: pushed 0, pulled" in log


def test_a_session_end_with_the_agents_memory_linked_away_deletes_nothing(machines, repo_dir):
    """agent-memory a link to a folder not there now (a dotfiles checkout, a drive): the
    session's push, which names that folder, took its files for deleted everywhere, where a
    whole push skips the link."""
    a, b = machines
    a.write("agent-memory/reviewer/MEMORY.md", "- prefers early returns\n")
    t1 = a.write(f"projects/{PROJECT}/s1.jsonl", transcript("s1", 3))
    a.run("init", str(repo_dir))
    a.run("push")
    (a.claude / "agent-memory").rename(a.home / "unmounted")
    (a.claude / "agent-memory").symlink_to(a.home / "gone")
    a.append(f"projects/{PROJECT}/s1.jsonl", transcript("s1", 1, start=3))
    event = {"session_id": "s1", "transcript_path": str(t1), "hook_event_name": "SessionEnd"}
    assert hook(a, "session-end", event).returncode == 0
    b.run("init", str(repo_dir), "--sync")
    assert (b.claude / "agent-memory/reviewer/MEMORY.md").read_text() == "- prefers early returns\n"
    assert len((b.claude / f"projects/{PROJECT}/s1.jsonl").read_text().splitlines()) == 4


def test_session_start_with_remote_gone_returns_0_in_time(make_machine, repo_dir, tmp_path):
    m: Machine = make_machine("m")
    m.write("CLAUDE.md", "memory\n")
    m.run("init", str(repo_dir))
    repo_dir.rename(tmp_path / "unplugged")
    began = time.monotonic()
    proc = hook(m, "session-start", {"hook_event_name": "SessionStart"}, timeout=3)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    assert time.monotonic() - began < 8
    assert "session-start: warning:" in (m.config_dir / "hooks.log").read_text()
    # Not set up at all: still silent success.
    fresh = make_machine("fresh")
    assert hook(fresh, "session-start", {}).returncode == 0


def git(repo, *args):
    subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
            "PATH": "/usr/bin:/bin",
            "HOME": str(repo.parent),
        },
    )


def wait_for(predicate, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_git_hooks_chain_with_existing_hook(make_machine, repo_dir):
    m: Machine = make_machine("m")
    m.write("CLAUDE.md", "memory\n")
    m.run("init", str(repo_dir))
    project = m.home / "project"
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    existing = project / ".git/hooks/pre-commit"
    existing.write_text(f"#!/bin/sh\necho ran >> {m.home}/chained.txt\n")
    existing.chmod(0o755)
    m.run("install", "--git-hooks", str(project))
    assert (project / ".git/hooks/pre-commit.pre-claude-sync").exists()
    (project / "f.txt").write_text("x")
    git(project, "add", "f.txt")
    m.write("agents/new.md", "new agent\n")
    m.env["PATH"] = f"{sys.executable.rsplit('/', 1)[0]}:/usr/bin:/bin"
    subprocess.run(
        ["git", "-C", str(project), "commit", "-qm", "x"],
        check=True,
        env=m.environ()
        | {
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )
    assert (m.home / "chained.txt").read_text() == "ran\n"
    assert wait_for(lambda: (repo_dir / "snapshots").exists()), "the pre-commit push never landed"
    assert wait_for(lambda: m.json("status")["pushed"] == [])
    # A failing chained hook still stops the commit.
    existing = project / ".git/hooks/pre-commit.pre-claude-sync"
    existing.write_text("#!/bin/sh\nexit 1\n")
    (project / "g.txt").write_text("y")
    git(project, "add", "g.txt")
    failed = subprocess.run(
        ["git", "-C", str(project), "commit", "-qm", "y"], env=m.environ(), capture_output=True
    )
    assert failed.returncode != 0
    m.run("install", "--git-hooks", str(project), "--uninstall")
    assert (project / ".git/hooks/pre-commit").read_text() == "#!/bin/sh\nexit 1\n"
    assert not (project / ".git/hooks/post-checkout").exists()


def test_hooks_an_older_version_wrote_are_made_safe_when_they_fire(make_machine, repo_dir):
    """Hooks written before `-P` (`python -m claude_sync`, where claude-sync was not on
    PATH) import a `claude_sync` folder of the project they run in: the first one to fire
    where there is none writes them all again with -P, in the user's and the project's
    settings (a dotfiles link staying a link) and in a repository's git hooks."""
    m: Machine = make_machine("m")
    m.write("agents/a.md", "mine\n")
    m.run("init", str(repo_dir))
    older = f"{sys.executable} -m claude_sync hook"
    doc = settings_doc()
    hooks = doc["hooks"]
    assert isinstance(hooks, dict)
    hooks["SessionStart"].append(
        {"hooks": [{"type": "command", "command": f"{older} session-start"}]}
    )
    hooks["SessionEnd"] = [{"hooks": [{"type": "command", "command": f"{older} session-end"}]}]
    dotfiles = m.home / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "settings.json").write_text(json.dumps(doc, indent=2) + "\n")
    (m.claude / "settings.json").symlink_to(dotfiles / "settings.json")
    project = m.home / "project"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude/settings.json").write_text(
        json.dumps({"hooks": {"SessionEnd": hooks["SessionEnd"]}})
    )
    git(project, "init", "-q", "-b", "main")
    git(project, "commit", "-q", "--allow-empty", "-m", "first")
    post_checkout = project / ".git/hooks/post-checkout"
    post_checkout.write_text(
        f"#!/bin/sh\n{hook_install.GIT_MARKER}\n"
        f"( {sys.executable} -m claude_sync pull -q >/dev/null 2>&1 & )\n"
    )
    post_checkout.chmod(0o755)
    env = m.environ() | {"PYTHONPATH": os.pathsep.join(sys.path)}
    event = {"session_id": "s1", "hook_event_name": "SessionEnd", "cwd": str(project)}
    done = subprocess.run(
        f"{older} session-end",
        shell=True,
        cwd=project,
        input=json.dumps(event).encode(),
        env=env,
        capture_output=True,
    )
    assert done.returncode == 0
    assert wait_for(lambda: "session-end: pushed" in (m.config_dir / "hooks.log").read_text())
    for settings in (m.claude / "settings.json", project / ".claude/settings.json"):
        assert not hook_install.has_unsafe_hooks(settings)
        assert "-P -m claude_sync hook session-end" in settings.read_text()
    assert (m.claude / "settings.json").is_symlink()
    data = json.loads((dotfiles / "settings.json").read_text())
    assert data["permissions"] == doc["permissions"] and data["model"] == "opus"
    assert data["hooks"]["PreToolUse"] == hooks["PreToolUse"]
    assert data["hooks"]["SessionStart"][0] == {
        "hooks": [{"type": "command", "command": "echo mine"}]
    }
    assert "now run `python -P -m claude_sync`" in (m.config_dir / "hooks.log").read_text()
    # The git hook: rewritten when it fires (its pull runs all the same).
    subprocess.run(
        ["git", "-C", str(project), "checkout", "-q", "-b", "other"], check=True, env=env
    )
    assert wait_for(lambda: not hook_install.UNSAFE_GIT.search(post_checkout.read_text()))
    text = post_checkout.read_text()
    assert hook_install.GIT_MARKER in text and "pull -q" in text
    assert os.access(post_checkout, os.X_OK)
    assert "✗" not in m.run("doctor", check=False).stdout.split("hooks", 1)[1].splitlines()[0]


def test_hooks_that_cannot_be_made_safe_still_sync(make_machine, repo_dir):
    """A project's settings that cannot be written (a read-only checkout, another user's
    folder): said in the hooks log, and the hook syncs all the same."""
    m: Machine = make_machine("m")
    m.write("agents/a.md", "mine\n")
    m.run("init", str(repo_dir))
    older = f"{sys.executable} -m claude_sync hook session-end"
    project = m.home / "project"
    (project / ".claude").mkdir(parents=True)
    settings = project / ".claude/settings.json"
    settings.write_text(json.dumps({"hooks": {"SessionEnd": [{"hooks": [{"command": older}]}]}}))
    (project / ".claude").chmod(0o500)
    event = {"session_id": "s1", "hook_event_name": "SessionEnd", "cwd": str(project)}
    env = m.environ() | {"PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        done = subprocess.run(
            [*UNPRIVILEGED, "sh", "-c", older],
            cwd=project,
            input=json.dumps(event).encode(),
            env=env,
            capture_output=True,
        )
        assert done.returncode == 0
        log = m.config_dir / "hooks.log"
        assert wait_for(lambda: "session-end: pushed 1" in log.read_text()), log.read_text()
    finally:
        (project / ".claude").chmod(0o700)
    assert f"warning: cannot add -P to the hooks in {settings}" in log.read_text()
    assert hook_install.has_unsafe_hooks(settings)


def test_watch_pushes_new_session_and_stops_on_sigterm(machines, repo_dir):
    a, b = machines
    a.write("CLAUDE.md", "memory\n")
    a.run("init", str(repo_dir))
    b.run("init", str(repo_dir))
    with watching(a, "--debounce", "0.5", "--interval", "1") as ended:
        a.write(f"projects/{PROJECT}/new.jsonl", transcript("new", 4))

        def landed() -> bool:
            b.run("pull")
            return (b.claude / f"projects/{PROJECT}/new.jsonl").exists()

        assert wait_for(landed, 40), "the watcher did not push the new session"
        # And it pulls what other machines push.
        b.write("agents/from-b.md", "hello\n")
        b.run("push")
        assert wait_for(lambda: (a.claude / "agents/from-b.md").exists(), 30)
    code, out, err = ended
    assert code == 0, err
    assert "Stopped." in out


@contextlib.contextmanager
def watching(m: Machine, *args: str, prefix: tuple[str, ...] = ()) -> Iterator[list]:  # type: ignore[type-arg]
    """`watch` running on m once it observes changes; stopped by SIGTERM on the way out,
    its exit code, output and errors then in the list given."""
    ended: list = []  # type: ignore[type-arg]
    watcher = subprocess.Popen(
        [*prefix, sys.executable, "-m", "claude_sync", "watch", *args],
        env=m.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(watcher, "Watching")  # printed once changes are observed
        yield ended
    finally:
        watcher.send_signal(signal.SIGTERM)
        try:
            out, err = watcher.communicate(timeout=30)
        finally:
            stop(watcher)  # a hung watcher must not outlive the test
        ended += [watcher.returncode, out, err]


def test_watch_pushes_what_no_event_told_it_of(machines, repo_dir):
    """A session written while the watch was not running (or whose events the kernel
    dropped: its queue overflows on a burst of writes) waited for the next change."""
    a, b = machines
    a.write("CLAUDE.md", "memory\n")
    a.run("init", str(repo_dir))
    b.run("init", str(repo_dir))
    a.write(f"projects/{PROJECT}/before.jsonl", transcript("before", 4))
    with watching(a, "--debounce", "60", "--interval", "1") as ended:

        def landed() -> bool:
            b.run("pull")
            return (b.claude / f"projects/{PROJECT}/before.jsonl").exists()

        assert wait_for(landed, 40), "the watcher did not push the session written before"
    assert ended[0] == 0, ended[2]


def test_selective_sync_by_type_and_glob(machines, repo_dir):
    a, b = machines
    a.write("history.jsonl", '{"display": "x", "timestamp": 1}\n')
    a.write("todos/t.json", "[]\n")
    a.write(f"projects/{PROJECT}/s.jsonl", transcript("s", 2))
    a.write(f"projects/{PROJECT}/s/tool-results/big.txt", "output\n")
    a.run("init", str(repo_dir))
    listing = a.run(
        "types",
        "--disable",
        "history",
        "--enable",
        "todos",
        "--exclude",
        "projects/*/tool-results/*",
    ).stdout
    assert "exclude: projects/*/tool-results/*" in listing
    assert sorted(a.json("push")["pushed"]) == [f"projects/{PROJECT}/s.jsonl", "todos/t.json"]
    b.run("init", str(repo_dir))
    assert "todos/t.json" not in b.json("pull")["pulled"]  # opt-in on B too
    a.run("types", "--clear-globs")
    assert a.json("push")["pushed"] == [f"projects/{PROJECT}/s/tool-results/big.txt"]
    assert b.run("types", "--enable", "nonsense", check=False).returncode == 2


#: watch in a user namespace of its own whose limit of file watches is lower than the
#: Claude folder's count of folders (the limit a user meets on a big projects folder)
def _few_watches(limit: int, of: str = "watches") -> tuple[str, ...]:
    return (
        "unshare", "-U", "-r", "sh", "-c",
        f'echo {limit} > /proc/sys/user/max_inotify_{of} && exec "$@"', "watch-limited",
    )  # fmt: skip


def _limits_watches() -> bool:
    probe = subprocess.run([*_few_watches(5), "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.parametrize("of, limit", [("watches", 5), ("instances", 0)])
def test_watch_where_the_kernel_gives_no_more_watches_pushes_on_a_timer(
    machines, repo_dir, of, limit
):
    """It failed with "unexpected OSError: inotify watch limit reached" (or "instance limit":
    a watching process each)."""
    if not _limits_watches():
        pytest.skip("no user namespace to lower the watch limit in")
    a, b = machines
    for n in range(8):
        a.write(f"projects/{PROJECT}-{n}/s.jsonl", transcript(f"s{n}", 2))
    a.run("init", str(repo_dir))
    b.run("init", str(repo_dir))
    with watching(a, "--interval", "1", prefix=_few_watches(limit, of)) as ended:
        a.write(f"projects/{PROJECT}-3/new.jsonl", transcript("new", 3))

        def landed() -> bool:
            b.run("pull")
            return (b.claude / f"projects/{PROJECT}-3/new.jsonl").exists()

        assert wait_for(landed, 40), "the watcher did not push the new session"
    code, _, errors = ended
    assert code == 0, errors
    assert errors.count("warning: cannot watch") == 1 and f"max_user_{of}" in errors, errors


def test_watch_says_once_when_the_kernel_refuses_watches_on_new_folders(machines, repo_dir):
    """watchdog printed a line of its own per folder ("Unable to watch b'…': [Errno 28]
    …"), and what changed in those folders waited for the next pull's push."""
    if not _limits_watches():
        pytest.skip("no user namespace to lower the watch limit in")
    a, b = machines
    a.write(f"projects/{PROJECT}/s.jsonl", transcript("s", 2))
    a.run("init", str(repo_dir))
    b.run("init", str(repo_dir))
    folders = sum(1 for p in a.claude.rglob("*") if p.is_dir()) + 1
    with watching(a, "--debounce", "0.5", prefix=_few_watches(folders + 1)) as ended:
        for n in range(4):
            a.write(f"projects/{PROJECT}-{n}/new.jsonl", transcript(f"new{n}", 3))

        def landed() -> bool:
            b.run("pull")
            return all((b.claude / f"projects/{PROJECT}-{n}/new.jsonl").exists() for n in range(4))

        assert wait_for(landed, 40), "the watcher did not push the new sessions"
    code, _, errors = ended
    assert code == 0, errors
    assert errors.count("warning: cannot watch") == 1, errors
    assert "Unable to watch" not in errors
