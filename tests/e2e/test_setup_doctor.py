"""`claude-sync doctor` passes on a healthy set-up and names each kind of failure.

The set-up runs the real CLI; doctor itself, which only reads and reports, runs in-process
(the cli_inprocess fixture)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from conftest import Machine, Outcome

if TYPE_CHECKING:
    from cloud_servers import Server

pytest_plugins = ["cloud_servers"]


def doctor(cli: Callable[..., Outcome], m: Machine, expect: int) -> dict[str, dict[str, object]]:
    code, stdout, stderr = cli("doctor", "--json", machine=m, passphrase=None)
    assert code == expect, stdout + stderr
    body = json.loads(stdout)
    assert body["ok"] is (expect == 0)
    return {c["name"]: c for c in body["checks"]}


def failed(checks: dict[str, dict[str, object]]) -> set[str]:
    return {name for name, c in checks.items() if not c["ok"]}


def healthy(m: Machine, remote: list[str]) -> None:
    m.write("agents/a.md", "hello\n")
    m.run("init", *remote)
    m.run("push")
    m.run("pull")


def test_healthy_folder_set_up_with_hooks(cli_inprocess, make_machine, repo_dir):
    a = make_machine("a")
    healthy(a, [str(repo_dir)])
    checks = doctor(cli_inprocess, a, 0)
    assert failed(checks) == set()
    assert "hooks" in checks and "not installed" in str(checks["hooks"]["detail"])
    assert "push" in str(checks["last sync"]["detail"]) and "never" not in str(
        checks["last sync"]["detail"]
    )
    assert not [p for p in repo_dir.iterdir() if p.name.startswith(".probe")]
    a.run("install")
    assert "installed in" in str(doctor(cli_inprocess, a, 0)["hooks"]["detail"])
    # Hooks an older claude-sync made, run by the interpreter without -P: said, with the fix.
    settings = a.claude / "settings.json"
    text = settings.read_text()
    older = f'"{sys.executable} -m claude_sync hook'
    text = text.replace("-P -m claude_sync hook", "-m claude_sync hook")
    settings.write_text(text.replace('"claude-sync hook', older))
    assert older in settings.read_text()
    hooks = doctor(cli_inprocess, a, 1)["hooks"]
    assert not hooks["ok"] and "claude-sync install" in str(hooks["fix"])
    a.run("install")
    assert "installed in" in str(doctor(cli_inprocess, a, 0)["hooks"]["detail"])
    code, text, _ = cli_inprocess("doctor", machine=a)
    assert code == 0 and "✓ remote writable" in text and "✗" not in text


def test_healthy_s3_checks_conditional_writes(cli_inprocess, make_machine, moto_server: Server):
    a = make_machine("a")
    a.env.update(moto_server.env)
    bucket = f"doctor-{uuid.uuid4().hex[:8]}"
    healthy(a, [f"s3://{bucket}/claude", "--create-bucket", *moto_server.init_args()])
    checks = doctor(cli_inprocess, a, 0)
    assert checks["conditional writes"]["ok"]
    assert not [k for k in moto_server.objects(bucket) if ".probe-" in k]


def test_no_config(cli_inprocess, make_machine):
    a = make_machine("a")
    checks = doctor(cli_inprocess, a, 1)
    assert failed(checks) == {"config", "Claude Code folder"}
    text = cli_inprocess("doctor", machine=a).stdout
    assert "✗ config" in text and "fix: run `claude-sync init`" in text
    assert not a.config_dir.exists(), "doctor creates nothing"


def test_damaged_key_file(cli_inprocess, make_machine, repo_dir):
    a = make_machine("a")
    healthy(a, [str(repo_dir)])
    (a.config_dir / "key").write_text("{not json")
    checks = doctor(cli_inprocess, a, 1)
    assert failed(checks) == {"key"}
    assert "damaged" in str(checks["key"]["detail"])
    assert "init --force" in str(checks["key"]["fix"])


def test_repository_replaced_by_another(cli_inprocess, make_machine, repo_dir):
    a, b = make_machine("a"), make_machine("b")
    healthy(a, [str(repo_dir)])
    shutil.rmtree(repo_dir)
    b.run("init", str(repo_dir), "--create", passphrase="another passphrase entirely")
    checks = doctor(cli_inprocess, a, 1)
    assert failed(checks) == {"key matches repository"}


def test_remote_gone(cli_inprocess, make_machine, repo_dir):
    a = make_machine("a")
    healthy(a, [str(repo_dir)])
    shutil.rmtree(repo_dir)
    checks = doctor(cli_inprocess, a, 1)
    assert failed(checks) == {"remote reachable"}
    assert "does not exist" in str(checks["remote reachable"]["detail"])
    assert not repo_dir.exists(), "doctor does not make the folder again"


def test_unresolved_conflict(cli_inprocess, make_machine, repo_dir):
    a, b = make_machine("a"), make_machine("b")
    healthy(a, [str(repo_dir)])
    b.run("init", str(repo_dir))
    b.run("pull")
    a.write("agents/a.md", "from a\n")
    a.run("push")
    b.write("agents/a.md", "from b\n")
    assert b.run("pull", check=False).returncode == 3
    checks = doctor(cli_inprocess, b, 1)
    assert failed(checks) == {"conflicts"}
    assert "agents/a.md" in str(checks["conflicts"]["detail"])
    assert "claude-sync resolve agents/a.md" in str(checks["conflicts"]["fix"])


def test_snapshot_from_the_future_is_clock_skew(cli_inprocess, make_machine, repo_dir):
    a = make_machine("a")
    a.write("agents/a.md", "hello\n")
    a.run("init", str(repo_dir))
    # A push from a machine whose clock runs an hour ahead.
    ahead = (
        "import time, sys; real = time.time; time.time = lambda: real() + 3600; "
        "from claude_sync.cli import main; sys.argv[0] = 'claude-sync'; main()"
    )
    subprocess.run([sys.executable, "-c", ahead, "push"], env=a.environ(), cwd=a.home, check=True)
    checks = doctor(cli_inprocess, a, 1)
    assert failed(checks) == {"clock"}
    assert "future" in str(checks["clock"]["detail"])
