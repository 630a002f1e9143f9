"""Reliability under crashes, network faults and concurrency, through the real CLI.

Three families of tests, each against real backends on 127.0.0.1:

* **kill -9**: `push`, `pull` and `prune` are SIGKILLed at a random moment (seeded; spread
  over a whole normal run, measured first) over the folder backend and S3 (moto). After each
  kill: no file under ~/.claude is half-written (each is its old or its new full content;
  the only extra files are claude-sync's own hidden `.NAME.claude-sync-tmp-*` temporaries,
  which later runs ignore, never sync and remove once stale), `verify --read-data` passes,
  and the next `sync` of both machines completes with every change of both on both.
* **faulty network**: two machines sync through a proxy (tests/fault_proxy.py) that resets
  connections, loses responses, truncates bodies, delays and answers 500/503. A command may
  fail, but only with one `error:` line and exit 1, never a traceback; once the faults stop,
  every command succeeds at the first try, `verify --read-data` passes and nothing is lost.
* **six machines at once**: rounds of concurrent `sync` over S3 (moto) and git (`git daemon`),
  each machine changing its own files and appending to one shared transcript and history:
  never a conflict, and after a final sequential round all six are byte-identical with every
  change. A concurrent `sync` may give up with exit 1 and "another machine kept pushing at the
  same time; try again": the push backs off with jitter but stops after MAX_PUSH_ATTEMPTS
  lost snapshot races, and six machines at once can make one lose more (a sync whose shared
  file moved meanwhile pushes twice). That refusal is clean and retryable, so it is counted
  (and printed), not failed.

Environment variables:

``CLAUDE_SYNC_FAULT_TRIALS``
    kill -9 trials per kind; there are six kinds (folder/S3 x push/pull/prune). Default 3, i.e.
    18 trials, to keep the normal suite fast; 13 or more (>= 78 trials) is the full setting and
    also switches on the heavy variants: more faulty-network rounds and 4 instead of 2 rounds
    of six concurrent machines.
``CLAUDE_SYNC_FAULT_SEED``
    base seed of every random choice (default 8). A failure message names the trial and seed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING

import pytest
from conftest import Machine, transcript
from fault_proxy import FaultProxy, Faults
from git_servers import git_server

from claude_sync.resources import CONFLICT_MARKER, TMP_MARKER

if TYPE_CHECKING:
    from cloud_servers import Server

# The session fixture moto_server (imported only this way, so pytest rewrites its asserts).
pytest_plugins = ["cloud_servers"]

TRIALS = int(os.environ.get("CLAUDE_SYNC_FAULT_TRIALS", "3"))
HEAVY = TRIALS >= 13
SEED = int(os.environ.get("CLAUDE_SYNC_FAULT_SEED", "8"))
PROJECT = "-home-ann-code-app"
SHARED = f"projects/{PROJECT}/shared-session.jsonl"
HISTORY = "history.jsonl"
# Every CLI call is bounded: a hang is a failure, not a stuck test run.
TIMEOUT = 180
# A temporary of the engine, beside its destination: `.{name}{TMP_MARKER}-{random}`, or a
# pull's staged download `{TMP_MARKER}-{random}`, short so a name near NAME_MAX still fits.
TMP_NAME = re.compile(rf"^(\.(?P<dest>.+))?{re.escape(TMP_MARKER)}-[^/]+$")


# -- the model of what every machine must end with ---------------------------------------------


#: when the simulated work happens: recently, as pull fetches only sessions updated within
#: Claude Code's cleanupPeriodDays
RECORDED = int(time.time()) - 86400


@dataclass
class Expected:
    """Every change made so far, by every machine: what all machines must end with."""

    #: files with one writer: their latest full content
    files: dict[str, bytes] = field(default_factory=dict)
    #: uuids of the records appended to the shared transcript, by any machine
    shared: set[str] = field(default_factory=set)
    #: lines appended to history.jsonl, by any machine
    history: set[bytes] = field(default_factory=set)
    clock: int = 0  # orders the timestamps of appended records across machines

    def tick(self) -> int:
        self.clock += 1
        return self.clock


def shared_record(record_id: str, tick: int) -> str:
    # One writer per uuid and one timestamp per uuid: the "realistic" input of merge.py.
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(RECORDED + tick))
    return (
        json.dumps(
            {
                "uuid": record_id,
                "parentUuid": None,
                "sessionId": "shared-session",
                "timestamp": f"{stamp}.000Z",
                "type": "user",
                "message": {"role": "user", "content": f"record {record_id} " + "text " * 30},
            }
        )
        + "\n"
    )


def history_line(text: str, tick: int) -> str:
    return json.dumps({"display": text, "timestamp": RECORDED * 1000 + tick, "project": "/p"})


def change(m: Machine, label: str, expected: Expected, rng: Random, big: bool = True) -> None:
    """One burst of work on machine m: its own files, the shared transcript and history."""
    name = m.home.name
    own = f"projects/{PROJECT}/{name}-own.jsonl"
    path = m.claude / own
    if path.exists():
        m.append(own, transcript(f"{name}-own", 20, start=rng.randrange(10**6)))
    else:
        m.write(own, transcript(f"{name}-own", 40))
    expected.files[own] = path.read_bytes()
    for rel, text in (
        (f"commands/{name}-{label}.md", f"{name} {label}\n"),
        (f"agents/{name}.md", f"---\nname: {name}\n---\nlast changed in {label}\n"),
    ):
        m.write(rel, text)
        expected.files[rel] = text.encode()
    if big:
        # Incompressible data of a random size: pushes and pulls long enough to be killed
        # while packs travel, not only while Python starts.
        rel = f"projects/{PROJECT}/shared-session/tool-results/{name}-{label}.txt"
        data = base64.b64encode(rng.randbytes(rng.randrange(200_000, 1_500_000)))
        m.write(rel, data)
        expected.files[rel] = data
    if not (m.claude / SHARED).exists():
        m.write(SHARED, "")
    for i in range(3):
        record_id = f"{name}-{label}-{i}"
        m.append(SHARED, shared_record(record_id, expected.tick()))
        expected.shared.add(record_id)
    line = history_line(f"{name} {label}", expected.tick())
    if not (m.claude / HISTORY).exists():
        m.write(HISTORY, "")
    m.append(HISTORY, line + "\n")
    expected.history.add(line.encode())


def tree(m: Machine) -> dict[str, bytes]:
    """Every file under ~/.claude, temporaries included, with its bytes."""
    return {
        p.relative_to(m.claude).as_posix(): p.read_bytes()
        for p in sorted(m.claude.rglob("*"))
        if p.is_file()
    }


def is_tmp(rel: str) -> bool:
    return TMP_MARKER in rel.rsplit("/", 1)[-1]


def synced(m: Machine) -> dict[str, bytes]:
    return {p: data for p, data in tree(m).items() if not is_tmp(p)}


def assert_converged(machines: list[Machine], expected: Expected, context: str) -> None:
    """All machines byte-identical, with every change of every machine, and no conflict."""
    views = [synced(m) for m in machines]
    for m, view in zip(machines, views, strict=True):
        stray = sorted(p for p in view if CONFLICT_MARKER in p)
        assert not stray, f"{context}: conflict copies on {m.home.name}: {stray}"
        diff = sorted(set(view) ^ set(views[0]) | {p for p in view if view[p] != views[0].get(p)})
        assert not diff, f"{context}: {m.home.name} differs from {machines[0].home.name}: {diff}"
    view = views[0]
    for path, data in expected.files.items():
        assert view.get(path) == data, f"{context}: {path} is not its last version"
    records = [json.loads(line)["uuid"] for line in view[SHARED].splitlines() if line.strip()]
    assert len(records) == len(set(records)), f"{context}: a shared record is duplicated"
    assert set(records) == expected.shared, (
        f"{context}: shared transcript lost {sorted(expected.shared - set(records))}"
    )
    lines = {line for line in view[HISTORY].splitlines() if line.strip()}
    assert lines == expected.history, f"{context}: history lost {expected.history - lines}"


# -- running the CLI ------------------------------------------------------------------------------


def start(m: Machine, *args: str) -> subprocess.Popen[str]:
    # A session of its own, so that kill -9 reaches the CLI and any helper it started.
    return m.start(*args, start_new_session=True)


def kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.communicate()
        raise AssertionError(f"claude-sync {proc.args[3:]} did not finish in {timeout} s") from None


def sync_json(m: Machine, context: str) -> dict[str, object]:
    proc = m.run("sync", "--json", check=False, timeout=TIMEOUT)
    assert proc.returncode == 0, f"{context}: sync on {m.home.name}: {proc.stderr}"
    result: dict[str, object] = json.loads(proc.stdout)
    assert result["conflicts"] == [], f"{context}: conflicts on {m.home.name}: {result}"
    return result


def assert_clean_failure(proc: subprocess.CompletedProcess[str], context: str) -> None:
    """A failed command says why in one `error:` line and exits 1: never a traceback."""
    assert "Traceback" not in proc.stderr + proc.stdout, f"{context}: {proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, f"{context}: exit {proc.returncode}: {proc.stderr}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{context}: {proc.stderr}"


# -- backends -------------------------------------------------------------------------------------


@dataclass
class Remote:
    url: str
    init_args: list[str]
    env: dict[str, str]
    #: how many snapshot objects the backend holds, looked at directly (not through the CLI)
    snapshots: Callable[[], int] = lambda: 0

    def machine(self, make_machine: Callable[[str], Machine], name: str) -> Machine:
        m = make_machine(name)
        m.env.update(self.env)
        # Machines never wait long for each other's lock: there is one CLI per machine anyway.
        m.env["CLAUDE_SYNC_LOCK_TIMEOUT"] = "30"
        return m

    def join(self, m: Machine) -> None:
        m.run("init", self.url, *self.init_args, "--device", m.home.name, timeout=TIMEOUT)


def s3_remote(server: Server, endpoint: str | None = None) -> Remote:
    bucket = "t-" + uuid.uuid4().hex[:16]
    server.make_bucket(bucket)

    def snapshots() -> int:
        return sum(k.startswith("claude/snapshots/") for k in server.objects(bucket))

    return Remote(
        f"s3://{bucket}/claude",
        ["--endpoint-url", endpoint or server.endpoint_url or ""],
        server.env,
        snapshots,
    )


@pytest.fixture
def remote_for(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Remote]:
    def make(kind: str) -> Remote:
        if kind == "folder":
            repo = tmp_path / "repository"
            repo.mkdir(exist_ok=True)
            return Remote(str(repo), [], {}, lambda: len(list(repo.glob("snapshots/*"))))
        return s3_remote(request.getfixturevalue("moto_server"))

    return make


# -- 1. kill -9 at random points of push and pull -------------------------------------------------


@dataclass
class KillStats:
    trials: int = 0
    killed_mid_run: int = 0  # the process was still running when the signal came
    after_snapshot: int = 0  # ... and had already written its snapshot (killed while finishing)
    leftover_temps: int = 0


def run_trial(
    op: str,
    remote: Remote,
    a: Machine,
    b: Machine,
    label: str,
    expected: Expected,
    rng: Random,
    delay: float,
    stats: KillStats,
) -> float | None:
    """Both machines change things; `op` runs on its victim and is killed after `delay` s.
    Returns how long the run took when it finished before the kill, else None."""
    context = f"{op} trial {label} (seed {SEED})"
    change(a, label, expected, rng)
    if op == "pull":
        a.run("push", timeout=TIMEOUT)
    change(b, label, expected, rng, big=False)
    victim, other = (a, b) if op == "push" else (b, a)

    before = tree(victim)
    snapshots = remote.snapshots()
    started = time.monotonic()
    proc = start(victim, op)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=delay)
    finished = None
    if proc.poll() is None:
        stats.killed_mid_run += 1
        stats.after_snapshot += remote.snapshots() > snapshots
    else:
        finished = time.monotonic() - started
    kill_group(proc)
    finish(proc)
    stats.trials += 1
    during = tree(victim)

    if op == "push":
        # A push only reads ~/.claude: whenever it dies, nothing there has changed.
        assert during == before, f"{context}: push changed local files"
    temps = sorted(p for p in during if is_tmp(p))
    for rel in temps:
        folder, _, name = rel.rpartition("/")
        match = TMP_NAME.match(name)
        assert op == "pull" and match, f"{context}: unexpected temporary {rel}"
        targets = set(before) | set(expected.files) | {SHARED, HISTORY}
        if match["dest"]:
            dest = f"{folder}/{match['dest']}" if folder else match["dest"]
            assert dest in targets, rel
        else:
            assert any(t.rpartition("/")[0] == folder for t in targets), rel
    stats.leftover_temps += len(temps)

    victim.run("verify", "--read-data", timeout=TIMEOUT)
    sync_json(victim, context)
    if sync_json(other, context)["pushed"]:
        sync_json(victim, context)
    assert_converged([a, b], expected, context)

    after = tree(victim)
    # Every file the killed command may have touched is its old or its new full content.
    for path in (set(before) | set(during)) - set(temps):
        assert during.get(path) in (before.get(path), after.get(path)), (
            f"{context}: {path} was left half-written or lost by the kill"
        )
    # The next runs ignore the temporaries: never synced, never in the way.
    assert not any(is_tmp(p) for p in tree(other)), f"{context}: a temporary was synced"
    return finished


def joined_pair(
    remote: Remote, make_machine: Callable[[str], Machine], rng: Random
) -> tuple[Machine, Machine, Expected, dict[str, float]]:
    """A pushes its files, B joins and pulls; with how long that push and pull took."""
    a, b = remote.machine(make_machine, "a"), remote.machine(make_machine, "b")
    expected = Expected()
    change(a, "setup", expected, rng)
    remote.join(a)
    started = time.monotonic()
    a.run("push", timeout=TIMEOUT)
    pushed = time.monotonic()
    remote.join(b)
    pulling = time.monotonic()
    b.run("pull", timeout=TIMEOUT)
    timings = {"push": pushed - started, "pull": time.monotonic() - pulling}
    assert_converged([a, b], expected, "setup")
    return a, b, expected, timings


@pytest.mark.parametrize("op", ["push", "pull"])
@pytest.mark.parametrize("backend", ["folder", "s3"])
def test_kill_9_at_random_points(
    backend: str, op: str, make_machine: Callable[[str], Machine], remote_for
) -> None:
    rng = Random(f"{SEED}-{backend}-{op}")
    remote = remote_for(backend)
    # The set-up's own push and pull are the normal runs the kill moments are drawn from:
    # they span the whole run (and a little beyond, so that some kills come just too late).
    a, b, expected, timings = joined_pair(remote, make_machine, rng)
    normal = timings[op]

    stats = KillStats()
    for t in range(TRIALS):
        # A trial moves less than the set-up did: a run that finished before its kill tells
        # how long such a run takes, and later kill moments are drawn within that.
        delay = rng.uniform(0, 1.1 * normal)
        took = run_trial(op, remote, a, b, f"t{t}", expected, rng, delay, stats)
        if took is not None:
            normal = min(normal, took)
    print(
        f"\nkill -9 of {op} over {backend}: {stats.trials} trials, {stats.killed_mid_run} "
        f"killed mid-run ({stats.after_snapshot} of them after writing the snapshot), "
        f"{stats.leftover_temps} temporaries left (ignored), normal run "
        f"{normal:.2f} s"
    )
    # Kills that all came after the run ended would test nothing.
    assert stats.killed_mid_run >= max(1, TRIALS // 2), stats


# -- 2. a network that resets, loses, truncates, delays and fails requests -----------------------


def test_faulty_network_never_damages(moto_server: Server, make_machine) -> None:
    rng = Random(f"{SEED}-proxy")
    rounds = 8 if HEAVY else 2
    with FaultProxy(moto_server.endpoint_url or "", seed=SEED) as proxy:
        remote = s3_remote(moto_server, proxy.url)
        a, b = remote.machine(make_machine, "a"), remote.machine(make_machine, "b")
        expected = Expected()
        change(a, "setup", expected, rng)
        remote.join(a)
        a.run("push", timeout=TIMEOUT)
        remote.join(b)
        sync_json(b, "setup")

        proxy.enabled = True
        outcomes: list[int] = []
        for r in range(rounds):
            for m in (a, b):
                change(m, f"r{r}", expected, rng, big=r % 2 == 0)
                context = f"round {r} on {m.home.name} (seed {SEED})"
                proc = m.run("sync", "--json", check=False, timeout=TIMEOUT)
                outcomes.append(proc.returncode)
                if proc.returncode == 0:
                    assert json.loads(proc.stdout)["conflicts"] == [], context
                else:
                    assert_clean_failure(proc, context)
        faults = {k: v for k, v in proxy.stats.items() if k not in ("requests", "pass")}

        # A dead network: the command gives up within seconds, with one error line.
        change(a, "dead", expected, rng, big=False)
        proxy.faults = Faults(reset=1.0)
        began = time.monotonic()
        assert_clean_failure(a.run("sync", check=False, timeout=TIMEOUT), "every request reset")
        assert time.monotonic() - began < 60

        # Once the network is healthy every command succeeds at once, and nothing was lost.
        proxy.enabled = False
        for m in (a, b, a):
            sync_json(m, "after the faults")
        for m in (a, b):
            m.run("verify", "--read-data", timeout=TIMEOUT)
        assert_converged([a, b], expected, "after the faults")
    print(
        f"\nfaulty network: {len(outcomes)} syncs, {outcomes.count(0)} succeeded, "
        f"{outcomes.count(1)} failed cleanly; {proxy.stats['requests']} requests, faults {faults}"
    )
    assert sum(faults.values()) > 0


# -- 3. six machines syncing at the same time -----------------------------------------------------

GAVE_UP = "error: another machine kept pushing at the same time; try again"


@contextlib.contextmanager
def six_machine_remote(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Remote]:
    if backend == "s3":
        yield s3_remote(request.getfixturevalue("moto_server"))
        return
    with git_server("daemon", tmp_path) as srv:
        yield Remote(srv.create("busy.git"), [], srv.env)


def run_all(machines: list[Machine], *args: str) -> list[tuple[int, str, str]]:
    procs = [start(m, *args) for m in machines]
    results = []
    for proc in procs:
        out, err = finish(proc)
        results.append((proc.returncode, out, err))
    return results


def six_machines(remote: Remote, make_machine, expected: Expected, rng: Random) -> list[Machine]:
    """Six machines on one repository, which holds a first machine's files."""
    ms = [remote.machine(make_machine, f"m{i}") for i in range(6)]
    change(ms[0], "setup", expected, rng, big=False)
    remote.join(ms[0])
    ms[0].run("push", timeout=TIMEOUT)
    joins = [
        start(m, "init", remote.url, *remote.init_args, "--device", m.home.name) for m in ms[1:]
    ]
    for m, proc in zip(ms[1:], joins, strict=True):
        _, err = finish(proc)
        assert proc.returncode == 0, (m.home.name, err)
    # No pull yet: the others start the shared transcript and history on their own, so the
    # first round also merges files that have no common base.
    return ms


def concurrent_round(ms: list[Machine], label: str, expected: Expected, rng: Random) -> int:
    """Every machine changes things, then all sync at once; how many gave up (exit 1)."""
    for m in ms:
        change(m, label, expected, rng, big=False)
    gave_up = 0
    for m, (code, out, err) in zip(ms, run_all(ms, "sync", "--json"), strict=True):
        context = f"{label} on {m.home.name} (seed {SEED})"
        if code == 1 and err.strip() == GAVE_UP:
            # A clean, retryable refusal after 8 lost snapshot races (see the module doc).
            gave_up += 1
            continue
        assert code == 0, f"{context}: exit {code}: {err}"
        assert json.loads(out)["conflicts"] == [], f"{context}: {out}"
    return gave_up


@pytest.mark.parametrize("backend", ["s3", "git"])
def test_six_machines_sync_concurrently(
    backend: str, make_machine, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    rounds = 4 if HEAVY else 2
    rng = Random(f"{SEED}-six-{backend}")
    expected = Expected()
    with six_machine_remote(backend, request, tmp_path) as remote:
        ms = six_machines(remote, make_machine, expected, rng)
        started = time.monotonic()
        gave_up = sum(concurrent_round(ms, f"r{r}", expected, rng) for r in range(rounds))
        elapsed = time.monotonic() - started

        # A sequential round brings everybody's changes to the last machine and the head;
        # then a pull (concurrent: pulls only read the remote) brings the head everywhere.
        for m in ms:
            sync_json(m, f"final round over {backend}")
        for m, (code, _, err) in zip(ms, run_all(ms, "pull", "--json"), strict=True):
            assert code == 0, f"final pull on {m.home.name}: {err}"
        assert_converged(ms, expected, f"six machines over {backend}")
        ms[0].run("verify", "--read-data", timeout=TIMEOUT)
    print(
        f"\n{rounds} concurrent rounds of 6 machines over {backend}: {elapsed:.1f} s, "
        f"{gave_up} of {6 * rounds} syncs gave up"
    )


# -- 4. kill -9 at random points of prune ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["folder", "s3"])
def test_kill_9_during_prune(
    backend: str, make_machine: Callable[[str], Machine], remote_for
) -> None:
    """However a prune dies, the repository stays whole and later runs finish its work."""
    rng = Random(f"{SEED}-{backend}-prune")
    remote = remote_for(backend)
    a, b, expected, _ = joined_pair(remote, make_machine, rng)
    killed = 0
    for t in range(TRIALS):
        for k in range(2):  # old snapshots whose data the prune may drop
            change(a, f"p{t}-{k}", expected, rng)
            a.run("push", timeout=TIMEOUT)
        started = time.monotonic()
        proc = start(a, "prune", "--keep-last", "1", "--grace", "0")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=rng.uniform(0, 1.5))
        killed += proc.poll() is None
        kill_group(proc)
        finish(proc)
        context = (
            f"prune trial {t} over {backend} (seed {SEED}, {time.monotonic() - started:.2f} s)"
        )
        a.run("verify", "--read-data", timeout=TIMEOUT)
        b.run("verify", "--read-data", timeout=TIMEOUT)
        sync_json(b, context)
        sync_json(a, context)
        sync_json(b, context)
        assert_converged([a, b], expected, context)
    a.run("prune", "--keep-last", "1", "--grace", "0", timeout=TIMEOUT)
    a.run("prune", "--keep-last", "1", "--grace", "0", timeout=TIMEOUT)
    a.run("verify", "--read-data", timeout=TIMEOUT)
    fresh = remote.machine(make_machine, "fresh")
    remote.join(fresh)
    fresh.run("pull", timeout=TIMEOUT)
    assert_converged([a, b, fresh], expected, "after the last prune")
    print(f"\nkill -9 of prune over {backend}: {TRIALS} trials, {killed} killed mid-run")
