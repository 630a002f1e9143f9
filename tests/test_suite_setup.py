"""How the suite itself runs: property tests in CI draw the same examples every time, and the
in-process runner of the CLI prints what the real process prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Outcome
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_test_command_runs_property_tests_derandomised() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert 'export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"' in script
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.print_blob
    assert settings.get_profile("dev").print_blob


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("push", "--help"),
        ("--version",),
        ("push", "--bogus"),
        ("status",),
        ("init", "relative/path"),
        ("types", "--json"),
        ("doctor",),
    ],
)
def test_the_in_process_runner_prints_what_the_process_prints(
    args: tuple[str, ...], cli_inprocess: Callable[..., Outcome], make_machine
) -> None:
    """cli_inprocess stands in for Machine.run in tests of output: it must not differ."""
    m = make_machine("m")
    proc = m.run(*args, check=False)
    assert cli_inprocess(*args, machine=m) == (proc.returncode, proc.stdout, proc.stderr)


def test_the_in_process_runner_sees_a_set_up_machine_as_the_process_does(
    cli_inprocess: Callable[..., Outcome], make_machine, repo_dir: Path
) -> None:
    m = make_machine("m")
    m.write("agents/a.md", "a\n")
    m.run("init", str(repo_dir))
    m.run("push")
    for args in (("status", "--json"), ("log", "--json"), ("key", "list"), ("sessions",)):
        proc = m.run(*args, check=False)
        assert cli_inprocess(*args, machine=m) == (proc.returncode, proc.stdout, proc.stderr)
    # No passphrase and no terminal: the same error line, here as there.
    proc = m.run("key", "add", check=False, passphrase=None)
    assert proc.returncode == 2
    assert cli_inprocess("key", "add", machine=m, passphrase=None) == (2, "", proc.stderr)
