"""The git backend over a path, `git daemon` and ssh, against real git servers."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Machine, snapshot_tree, transcript
from git_servers import GitServer, bare_repo, free_port, git, git_server, sshd, sshd_missing

from claude_sync.errors import BackendError, ConfigError, ObjectNotFoundError
from claude_sync.store import RemoteOptions, normalize_remote, open_store
from claude_sync.store import git as gitstore

PROJECT = "-home-ann-code-app"
TRANSPORTS = ["file", "daemon", "ssh"]


@pytest.fixture(params=TRANSPORTS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GitServer]:
    if request.param == "ssh" and (why := sshd_missing()):
        pytest.fail(f"{why}: scripts/test.sh installs it")
    with git_server(request.param, tmp_path) as srv:
        yield srv


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[GitServer]:
    with git_server("file", tmp_path) as srv:
        yield srv


@pytest.fixture
def new_machine(
    make_machine: Callable[[str], Machine],
) -> Callable[[str, GitServer], Machine]:
    def make(name: str, srv: GitServer) -> Machine:
        m = make_machine(name)
        m.env.update(srv.env)
        return m

    return make


#: an mtime a pull keeps (younger than Claude Code's clean-up period)
RECENT = int(time.time()) - 86400


def populate(m: Machine) -> str:
    session = str(uuid.uuid4())
    m.write(f"projects/{PROJECT}/{session}.jsonl", transcript(session, 300), mtime=RECENT)
    m.write(f"projects/{PROJECT}/memory/notes.md", "# memory\nuse pytest\n")
    m.write("settings.json", '{"model": "opus"}\n')
    m.write("CLAUDE.md", "Be terse.\n")
    m.write("agents/reviewer.md", "---\nname: reviewer\n---\nReview code.\n")
    m.write(".credentials.json", '{"token": "never"}')
    return session


def synced(m: Machine) -> dict[str, tuple[bytes, int]]:
    return {k: v for k, v in snapshot_tree(m.claude).items() if k != ".credentials.json"}


def commits(bare: Path, ref: str = "--all") -> int:
    return int(git("--git-dir", bare, "rev-list", "--count", ref).strip())


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# -- the core scenario, on every transport --------------------------------------------------


def test_two_machines(server: GitServer, new_machine, tmp_path: Path) -> None:
    a, b = new_machine("a", server), new_machine("b", server)
    # A hostile global git config: hooks that fail, commit signing with no key.
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("pre-push", "pre-commit", "commit-msg", "post-commit"):
        (hooks / hook).write_text("#!/bin/sh\nexit 1\n")
        (hooks / hook).chmod(0o755)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(
        f"[core]\n\thooksPath = {hooks}\n[commit]\n\tgpgSign = true\n[push]\n\tgpgSign = true\n"
        "[user]\n\tsigningKey = nosuchkey\n\tname = Ann Example\n\temail = ann@example.com\n"
    )
    for m in (a, b):
        m.env["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    session = populate(a)
    remote = server.create("sync.git")
    bare = server.path("sync.git")

    a.run("init", remote)
    a.run("push")
    b.run("init", remote)
    result = b.json("pull")
    assert synced(b) == synced(a)
    assert f"projects/{PROJECT}/{session}.jsonl" in result["pulled"]

    # Nothing changed: no push adds a commit.
    before = commits(bare)
    assert a.json("push")["pushed"] == []
    assert b.json("sync")["pushed"] == []
    assert commits(bare) == before

    # B's change comes back to A.
    b.append(f"projects/{PROJECT}/{session}.jsonl", transcript(session, 3, start=300))
    assert b.json("push")["pushed"] == [f"projects/{PROJECT}/{session}.jsonl"]
    assert commits(bare) == before + 1
    a.run("pull")
    assert synced(a) == synced(b)

    # Commits say nothing about who, where, when or what.
    log = git("--git-dir", bare, "log", "--format=%an|%ae|%cn|%ce|%at|%ct|%B", "main")
    assert set(log.split()) == {
        "claude-sync|claude-sync@localhost|claude-sync|claude-sync@localhost|"
        "946684800|946684800|claude-sync"
    }
    for needle in ("Ann", "ann@", socket.gethostname(), session, str(a.home)):
        assert needle not in log
    paths = git("--git-dir", bare, "ls-tree", "-r", "--name-only", "main").split()
    tops = {"config", "keys", "data", "index", "manifest", "snapshots"}
    assert {p.split("/")[0] for p in paths} == tops
    manifests = [p for p in paths if p.startswith("manifest/")]
    assert manifests and all(
        re.fullmatch(r"manifest/([0-9a-f]{2})/\1[0-9a-f]{62}", p) for p in manifests
    )
    assert not any(session in p or "reviewer" in p for p in paths)
    assert commits(bare) == commits(bare, "main")  # one branch only


def test_commit_identity_is_fixed(file_server: GitServer, new_machine) -> None:
    a = new_machine("a", file_server)
    populate(a)
    remote = file_server.create("id.git")
    a.run("init", remote)
    a.run("push")
    fmt = "%an <%ae> %at|%cn <%ce> %ct|%s"
    log = git("--git-dir", file_server.path("id.git"), "log", f"--format={fmt}", "main")
    lines = set(log.splitlines())
    ident = "claude-sync <claude-sync@localhost> 946684800"
    assert lines == {f"{ident}|{ident}|claude-sync"}


def test_prune_over_git_commits_once_per_step_not_per_object(
    file_server: GitServer, new_machine
) -> None:
    a, b = new_machine("a", file_server), new_machine("b", file_server)
    remote = file_server.create("prune.git")
    a.run("init", remote)
    for i in range(6):
        a.write("agents/x.md", f"version {i}\n" * 2000)
        a.run("push")
    bare = file_server.path("prune.git")
    before = commits(bare)
    out = a.run("prune", "--keep-last", "1", "--grace", "0").stdout
    assert "Removed 5 snapshots" in out and "deleted 5 packs" in out
    # snapshots, mark, merged index, old indexes, packs and parts, mark: not one per object
    assert commits(bare) - before <= 6
    assert "No problems found" in a.run("verify", "--read-data").stdout
    b.run("init", remote)
    b.run("pull")
    assert (b.claude / "agents/x.md").read_text() == "version 5\n" * 2000


# -- concurrency ------------------------------------------------------------------------------


def test_three_machines_sync_concurrently(tmp_path: Path, new_machine) -> None:
    rounds = 5
    with git_server("daemon", tmp_path) as srv:
        remote = srv.create("busy.git")
        ms = [new_machine(name, srv) for name in ("a", "b", "c")]
        ms[0].run("init", remote)
        for m in ms[1:]:
            m.run("init", remote)
        own = {m.home.name: f"projects/{PROJECT}/{m.home.name}-session.jsonl" for m in ms}
        started = time.monotonic()
        for r in range(rounds):
            for m in ms:
                name = m.home.name
                path = m.claude / own[name]
                if path.exists():
                    m.append(own[name], transcript(name, 2, start=2 * r))
                else:
                    m.write(own[name], transcript(name, 2))
                m.write(f"commands/{name}-{r}.md", f"{name} round {r}\n")
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "claude_sync", "sync", "--json"],
                    env=m.environ(),
                    cwd=m.home,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for m in ms
            ]
            for m, proc in zip(ms, procs, strict=True):
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, (m.home.name, r, err)
                assert json.loads(out)["conflicts"] == []
        elapsed = time.monotonic() - started
        for m in ms:
            m.run("sync")
        for m in ms:
            m.run("pull")
        views = [synced(m) for m in ms]
        assert views[0] == views[1] == views[2]
        for m in ms:
            name = m.home.name
            assert views[0][own[name]][0] == (m.claude / own[name]).read_bytes()
            for r in range(rounds):
                assert f"commands/{name}-{r}.md" in views[0]
        bare = srv.path("busy.git")
        assert commits(bare) == commits(bare, "main")
        print(f"\n{rounds} concurrent rounds of 3 machines over git daemon: {elapsed:.1f} s")


# -- branches -------------------------------------------------------------------------------


def test_default_branch_master_is_detected(file_server: GitServer, new_machine) -> None:
    a, b = new_machine("a", file_server), new_machine("b", file_server)
    populate(a)
    remote = file_server.create("m.git", branch="master")
    a.run("init", remote, "--git-branch", "master")
    a.run("push")
    b.run("init", remote)  # no branch given: HEAD says master
    b.run("pull")
    assert synced(b) == synced(a)
    heads = git("--git-dir", file_server.path("m.git"), "for-each-ref", "--format=%(refname)")
    assert heads.split() == ["refs/heads/master"]


def test_empty_remote_with_other_default_gets_main(file_server: GitServer, new_machine) -> None:
    a, b = new_machine("a", file_server), new_machine("b", file_server)
    populate(a)
    remote = file_server.create("t.git", branch="trunk")
    a.run("init", remote)
    a.run("push")
    b.run("init", remote)  # HEAD points at an unborn trunk; the repository is on main
    b.run("pull")
    assert synced(b) == synced(a)
    heads = git("--git-dir", file_server.path("t.git"), "for-each-ref", "--format=%(refname)")
    assert heads.split() == ["refs/heads/main"]


def test_configured_branch_beside_foreign_content(
    file_server: GitServer, new_machine, tmp_path: Path
) -> None:
    a, b = new_machine("a", file_server), new_machine("b", file_server)
    populate(a)
    remote = file_server.create("shared.git")
    bare = file_server.path("shared.git")
    work = tmp_path / "work"
    git("clone", "-q", bare, work)
    (work / "README.md").write_text("someone else's project\n")
    git("add", "README.md", cwd=work)
    git("-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "readme", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    main_before = git("--git-dir", bare, "rev-parse", "main")

    proc = a.run("init", remote, check=False)
    assert proc.returncode == 2
    assert "holds no claude-sync repository" in error_line(proc)

    a.run("init", remote, "--git-branch", "claude")
    a.run("push")
    b.run("init", remote, "--git-branch", "claude")
    b.run("pull")
    assert synced(b) == synced(a)
    assert git("--git-dir", bare, "rev-parse", "main") == main_before
    files = git("--git-dir", bare, "ls-tree", "-r", "--name-only", "claude").split()
    assert "README.md" not in files and "config" in files


# -- size -----------------------------------------------------------------------------------


def _objects_size(bare: Path) -> int:
    return sum(p.stat().st_size for p in (bare / "objects").rglob("*") if p.is_file())


def _session_bytes(size: int, seed: int) -> bytes:
    """Session-like JSONL that compresses about as badly as real tool output does."""
    rng = random.Random(seed)
    lines, total, i = [], 0, 0
    while total < size:
        noise = rng.randbytes(300).hex()
        line = json.dumps({"uuid": f"u{i}", "type": "assistant", "message": noise}) + "\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines).encode()  # whole records: a half line is not pushed yet


def test_append_grows_repository_by_little(file_server: GitServer, new_machine) -> None:
    a = new_machine("a", file_server)
    rel = f"projects/{PROJECT}/big.jsonl"
    a.write(rel, _session_bytes(20 * 1024 * 1024, 1))
    remote = file_server.create("size.git")
    bare = file_server.path("size.git")
    a.run("init", remote)
    a.run("push")
    before = _objects_size(bare)
    with (a.claude / rel).open("ab") as fh:
        fh.write(_session_bytes(64 * 1024, 2))
    a.run("push")
    growth = _objects_size(bare) - before
    print(f"\nrepository objects: {before} bytes after 20 MiB, +{growth} after a 64 KiB append")
    assert growth < 2 * 1024 * 1024, growth
    assert before > 5 * 1024 * 1024  # the session really went up


# -- errors -----------------------------------------------------------------------------------


def test_unreachable_remote(new_machine, tmp_path: Path) -> None:
    with git_server("daemon", tmp_path) as srv:
        pass  # stopped: its port is closed now
    a = new_machine("a", srv)
    proc = a.run("init", srv.remote("gone.git"), check=False)
    assert proc.returncode == 1
    line = error_line(proc)
    assert "cannot reach git+git://127.0.0.1:" in line
    assert not (a.config_dir / "config.json").exists()


def test_credentials_in_urls_are_never_shown(new_machine, tmp_path: Path) -> None:
    a = new_machine("a", GitServer("https", tmp_path, ""))
    port = free_port()
    remote = f"git+https://ann:s3cr3t-t0ken@127.0.0.1:{port}/repo.git"
    proc = a.run("init", remote, check=False)
    assert proc.returncode == 1
    assert "cannot reach git+https://127.0.0.1:" in error_line(proc)
    assert "s3cr3t" not in proc.stderr + proc.stdout
    assert "ann:" not in error_line(proc) and "ann@" not in error_line(proc)


def test_not_a_claude_sync_repository(file_server: GitServer, new_machine) -> None:
    a = new_machine("a", file_server)
    populate(a)
    remote = file_server.create("foreign.git")
    work = file_server.root / "work"
    git("clone", "-q", file_server.path("foreign.git"), work)
    (work / "notes.txt").write_text("hello\n")
    git("add", ".", cwd=work)
    git("-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "x", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    proc = a.run("init", remote, check=False)
    assert proc.returncode == 2
    assert "not empty and holds no claude-sync repository" in error_line(proc)


def test_missing_repository_path(file_server: GitServer, new_machine) -> None:
    a = new_machine("a", file_server)
    proc = a.run("init", file_server.remote("nothing-here.git"), check=False)
    assert proc.returncode == 1
    assert "cannot reach" in error_line(proc)


def test_ssh_authentication_failure(new_machine, tmp_path: Path) -> None:
    assert sshd_missing() is None, f"{sshd_missing()}: scripts/test.sh installs it"
    with sshd(tmp_path / "sshd") as keys:
        bare = bare_repo(tmp_path / "r.git")
        remote = f"git+ssh://{keys.user}@127.0.0.1:{keys.port}{bare}"
        a = new_machine("a", GitServer("ssh", tmp_path, ""))
        a.env["GIT_SSH_COMMAND"] = keys.ssh_command(keys.wrong_key)
        proc = a.run("init", remote, check=False)
    assert proc.returncode == 1
    line = error_line(proc)
    assert "authentication to git+ssh://127.0.0.1:" in line and "Permission denied" in line


def test_bad_remotes_are_usage_errors() -> None:
    for bad in ("git+ftp://host/x", "git+ssh:///x", "git+file://host/x", "git+https://host/"):
        with pytest.raises(ConfigError):
            normalize_remote(bad)
    assert normalize_remote("git+ssh://git@host/x.git/") == "git+ssh://git@host/x.git"


# -- the store itself ---------------------------------------------------------------------------


def _store(tmp_path: Path, url: str, name: str, branch: str | None = None) -> gitstore.GitStore:
    store = open_store(url, RemoteOptions(git_branch=branch, cache_dir=tmp_path / name))
    assert isinstance(store, gitstore.GitStore)
    return store


def _pack(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"data/{digest[:2]}/{digest}"


def test_snapshot_names_are_compare_and_swap(tmp_path: Path) -> None:
    url = f"git+file://{bare_repo(tmp_path / 'r.git')}"
    one, two = _store(tmp_path, url, "one"), _store(tmp_path, url, "two")
    assert one.list("") == [] and two.list("snapshots/") == []
    pack = _pack(b"two's pack")
    assert two.put_if_absent(pack, b"two's pack")  # staged, waits for a snapshot
    assert one.put_if_absent("snapshots/0000000001", b"one")
    assert not two.put_if_absent("snapshots/0000000001", b"two")  # taken meanwhile
    assert two.get("snapshots/0000000001") == b"one"
    assert two.put_if_absent("snapshots/0000000002", b"two")
    three = _store(tmp_path, url, "three")
    assert sorted(three.list("snapshots/")) == ["snapshots/0000000001", "snapshots/0000000002"]
    assert three.get(pack) == b"two's pack"  # went up with two's snapshot
    assert not three.put_if_absent("snapshots/0000000002", b"again")
    for store in (one, two, three):
        store.close()
    tree = git("--git-dir", tmp_path / "r.git", "ls-tree", "-r", "--name-only", "main").split()
    assert "snapshots/00000000/0000000002" in tree  # fanned out


def test_staged_objects_are_pushed_on_close(tmp_path: Path) -> None:
    url = f"git+file://{bare_repo(tmp_path / 'r.git')}"
    one = _store(tmp_path, url, "one")
    pack = _pack(b"orphan")
    index = "index/" + "ab" * 32
    assert one.put_if_absent(pack, b"orphan") and one.put_if_absent(index, b"i")
    assert not one.put_if_absent(pack, b"orphan")
    assert one.get(index) == b"i"
    one.close()
    two = _store(tmp_path, url, "two")
    assert sorted(two.list("")) == sorted([pack, index])
    two.close()


def test_unpushed_snapshot_is_dropped_and_staged_packs_kept(tmp_path: Path) -> None:
    url = f"git+file://{bare_repo(tmp_path / 'r.git')}"
    one = _store(tmp_path, url, "one")
    pack = _pack(b"p")
    one.put_if_absent(pack, b"p")
    # As if the process died half-way through a snapshot's put: it is in the index only.
    blob = one._out("hash-object", "-w", "--stdin", data=b"s")
    one._apply({"snapshots/00000000/0000000001": blob})
    again = _store(tmp_path, url, "one")
    assert again.list("snapshots/") == []
    assert again.list("data/") == [pack]
    again.close()
    assert _store(tmp_path, url, "other").list("") == [pack]


def test_retries_exhausted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"git+file://{bare_repo(tmp_path / 'r.git')}"
    busy, rival = _store(tmp_path, url, "busy"), _store(tmp_path, url, "rival")
    busy.list("")
    rival.list("")
    monkeypatch.setattr(gitstore, "PUSH_ATTEMPTS", 3)
    push = gitstore.GitStore._push
    counter = iter(range(100))

    def racing_push(self: gitstore.GitStore, commit: str) -> bool:
        if self is busy:  # another machine always gets in first
            rival.put_if_absent(f"keys/{next(counter)}", b"k")
        return push(self, commit)

    monkeypatch.setattr(gitstore.GitStore, "_push", racing_push)
    with pytest.raises(BackendError, match="retries exhausted"):
        busy.put_if_absent("snapshots/0000000001", b"s")
    assert "snapshots/0000000001" not in busy.list("")  # not left staged


def test_refused_push_is_one_clear_error(tmp_path: Path) -> None:
    bare = bare_repo(tmp_path / "r.git")
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'quota exceeded' >&2\nexit 1\n")
    hook.chmod(0o755)
    store = _store(tmp_path, f"git+file://{bare}", "one")
    with pytest.raises(BackendError, match="refused the push") as info:
        store.put_if_absent("config", b"c")
    assert "\n" not in str(info.value)
    assert store.list("") == []


def test_redact() -> None:
    assert gitstore.redact("git+https://u:p@h/x and ssh://git@h/y") == (
        "git+https://h/x and ssh://h/y"
    )
    assert "tok" not in gitstore.redact("fatal: unable to access 'https://tok@github.com/x/'")


def test_git_environment_is_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from inside another repository's hook, GIT_DIR must not leak into our commands."""
    other = bare_repo(tmp_path / "other.git")
    monkeypatch.setenv("GIT_DIR", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "other-index"))
    url = f"git+file://{bare_repo(tmp_path / 'r.git')}"
    store = _store(tmp_path, url, "one")
    assert store.put_if_absent("config", b"c")
    store.close()
    assert os.listdir(other / "refs" / "heads") == []


def test_staged_objects_never_go_to_a_new_repository_at_the_same_place(tmp_path: Path) -> None:
    bare = bare_repo(tmp_path / "r.git")
    url = f"git+file://{bare}"
    one = _store(tmp_path, url, "one")
    assert one.put_if_absent("config", b"first repository")
    pack = _pack(b"sealed with the first key")
    one.put_if_absent(pack, b"sealed with the first key")  # staged; then the process dies
    shutil.rmtree(bare)
    bare_repo(bare)
    other = _store(tmp_path, url, "other")
    assert other.put_if_absent("config", b"second repository")
    again = _store(tmp_path, url, "one")
    assert again.list("") == ["config"]
    assert again.put_if_absent("snapshots/0000000001", b"s")
    again.close()
    tree = git("--git-dir", bare, "ls-tree", "-r", "--name-only", "main").split()
    assert pack not in tree


def test_delete_get_and_odd_options(tmp_path: Path) -> None:
    bare = bare_repo(tmp_path / "r.git")
    url = f"git+file://{bare}"
    store = open_store(url, RemoteOptions())  # no cache folder: a temporary clone
    assert isinstance(store, gitstore.GitStore)
    assert store.put_if_absent("keys/one", b"k") and store.put_if_absent("keys/two", b"k")
    before = commits(bare)
    store.delete("keys/one")
    store.delete("keys/missing")  # not an error, and no commit
    assert commits(bare) == before + 1  # history is kept, never rewritten
    with pytest.raises(ObjectNotFoundError):
        store.get("keys/one")
    clone = store.git_dir
    store.close()
    assert not clone.exists()
    assert _store(tmp_path, url, "other").list("keys/") == ["keys/two"]
    with pytest.raises(ConfigError, match="invalid git branch"):
        _store(tmp_path, url, "bad", branch="no..dots").list("")


def test_a_silent_server_times_out(make_machine, tmp_path):
    """A server that accepts the connection and never answers: a clear error, in time."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    m = make_machine("m")
    m.env["CLAUDE_SYNC_GIT_TIMEOUT"] = "2"
    try:
        proc = m.run("init", f"git+git://127.0.0.1:{port}/x.git", check=False, timeout=60)
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert proc.returncode == 1
    assert "gave no answer within 2 s" in proc.stderr and "Traceback" not in proc.stderr
