"""The CLI on a real (pseudo-)terminal: progress bars are drawn and the command finishes.

A test suite without a terminal never draws a bar, so a bar that crashes goes unseen; these
tests drive push, pull, sync, restore and verify on a pty, with tens of MiB to move."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
from conftest import PASSPHRASE, Machine

MIB = 1024 * 1024
# What the bar draws for a transfer in progress: a size done of a size in all ("12.3/40.0 MiB"),
# in the binary units the final line uses, and no decimal ones ("41.9 MB").
BAR = re.compile(r"\d+(\.\d+)?/\d+(\.\d+)? (KiB|MiB|GiB)")
DECIMAL = re.compile(r"\d (kB|MB|GB)\b")


def on_terminal(m: Machine, *args: str) -> tuple[int, str]:
    """Run claude-sync on a pseudo-terminal the way a person's terminal emulator would."""
    environ = m.environ() | {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "claude_sync", *args],
        env=environ,
        cwd=str(m.home),
        encoding="utf-8",
        codec_errors="replace",
        timeout=180,
        dimensions=(40, 120),
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, str(child.before)


def big_sessions(m: Machine, total_mib: int, files: int = 4) -> None:
    """Transcripts that do not compress away, so the transfer itself is large."""
    for i in range(files):
        m.write(f"projects/-home-ann-code-app/big-{i}.jsonl", os.urandom(total_mib * MIB // files))


@pytest.fixture
def pair(machines: tuple[Machine, Machine], repo_dir: Path) -> tuple[Machine, Machine]:
    a, b = machines
    a.run("init", str(repo_dir))
    b.run("init", str(repo_dir))
    return a, b


def test_push_and_pull_of_tens_of_mib_draw_a_bar_and_finish(pair: tuple[Machine, Machine]) -> None:
    a, b = pair
    big_sessions(a, 24)
    code, screen = on_terminal(a, "push")
    assert code == 0, screen
    assert BAR.search(screen), screen
    assert re.search(r"\d MiB/s", screen), screen
    assert not DECIMAL.search(screen), screen
    assert "pushed 4 files" in screen, screen

    code, screen = on_terminal(b, "pull")
    assert code == 0, screen
    assert BAR.search(screen), screen
    assert "pulled 4 files" in screen, screen
    assert (b.claude / "projects/-home-ann-code-app/big-0.jsonl").read_bytes() == (
        a.claude / "projects/-home-ann-code-app/big-0.jsonl"
    ).read_bytes()


def test_an_append_to_a_big_transcript_is_measured_by_what_it_sends(
    pair: tuple[Machine, Machine],
) -> None:
    """The bar counts the bytes a push sends, not the size of the files they belong to: a
    few records appended to a 24 MiB transcript are no transfer worth a bar."""
    a, _ = pair
    a.write("projects/-home-ann-code-app/big.jsonl", os.urandom(24 * MIB).hex()[: 24 * MIB] + "\n")
    assert on_terminal(a, "push")[0] == 0
    a.append("projects/-home-ann-code-app/big.jsonl", '{"type":"user"}\n' * 100)
    code, screen = on_terminal(a, "push")
    assert code == 0, screen
    assert "pushed 1 file" in screen and not BAR.search(screen), screen


def test_sync_draws_bars_both_ways(pair: tuple[Machine, Machine]) -> None:
    a, b = pair
    big_sessions(a, 12, files=2)
    a.run("push")
    b.write("projects/-home-ann-code-app/from-b.jsonl", os.urandom(12 * MIB))
    code, screen = on_terminal(b, "sync")
    assert code == 0, screen
    assert len(BAR.findall(screen)) >= 2, screen
    assert "pulled 2 files" in screen and "pushed 1 file" in screen, screen


@pytest.mark.parametrize(
    "command",
    [
        lambda target: ["restore", "--snapshot", "1", "--target", str(target)],
        lambda target: ["verify", "--read-data"],
    ],
    ids=["restore", "verify"],
)
def test_restore_and_verify_draw_a_bar_and_finish(
    pair: tuple[Machine, Machine], tmp_path: Path, command: Callable[[Path], list[str]]
) -> None:
    a, _ = pair
    big_sessions(a, 16)
    a.run("push")
    code, screen = on_terminal(a, *command(tmp_path / "restored"))
    assert code == 0, screen
    assert BAR.search(screen), screen
    assert "Restored 4 files" in screen or "No problems found" in screen, screen


def spawn(m: Machine, *args: str) -> pexpect.spawn:
    """claude-sync on a terminal with no passphrase in the environment: it must ask."""
    return m.spawn(*args, passphrase=None)


def finish(child: pexpect.spawn) -> str:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


def test_passphrase_prompts_on_a_terminal(
    machines: tuple[Machine, Machine], tmp_path: Path
) -> None:
    """init, key add and key passwd ask on the terminal, hiding and confirming new phrases."""
    a, b = machines
    first, second, third = (
        "violet harbor quantum lantern nine",
        "copper meadow glacier tulip seven",
        "amber falcon orchard velvet three",
    )
    remote = tmp_path / "remote"
    remote.mkdir()
    child = spawn(a, "init", str(remote))
    child.expect("passphrase")
    child.sendline(first)
    child.expect("Repeat for confirmation")
    child.sendline(first)
    assert first not in finish(child)

    child = spawn(a, "key", "add", "--label", "desktop")
    child.expect("New passphrase")
    child.sendline(second)
    child.expect("Repeat for confirmation")
    child.sendline(second)
    assert "Added key" in finish(child)

    child = spawn(a, "key", "passwd")
    child.expect("Repository passphrase")
    child.sendline(second)
    child.expect("New passphrase")
    child.sendline(third)
    child.expect("Repeat for confirmation")
    child.sendline(third)
    assert "Passphrase changed" in finish(child)

    # The changed passphrase joins a second machine; the replaced one no longer does.
    assert b.run("init", str(remote), passphrase=second, check=False).returncode != 0
    b.run("init", str(remote), passphrase=third)


def test_a_weak_passphrase_is_refused_before_it_is_repeated_and_a_typo_is_asked_again(
    make_machine, repo_dir
):
    a, b = make_machine("a"), make_machine("b")
    a.write("CLAUDE.md", "memory\n")
    child = spawn(a, "init", str(repo_dir), "--create")
    child.expect("passphrase")
    child.sendline("a")
    child.expect("too weak")
    child.expect("passphrase")  # asked anew, not "Repeat for confirmation" first
    child.sendline(PASSPHRASE)
    child.expect("Repeat for confirmation")
    child.sendline(PASSPHRASE)
    finish(child)

    child = spawn(b, "init", str(repo_dir))
    child.expect("passphrase")
    child.sendline("not the passphrase at all")
    child.expect("try again")
    child.expect("passphrase")
    child.sendline(PASSPHRASE)
    finish(child)
    assert (b.config_dir / "key").exists()


BAR_LEFT_UP = """
from claude_sync.cli.output import ConsoleReporter, out
with ConsoleReporter(verbose=True, quiet=False, as_json=False) as reporter:
    advance = reporter.progress("downloading", 8 << 20)
    advance(1 << 20)
    reporter.action("pull", "projects/a.jsonl")
    advance(1 << 20)  # short of its total: a pack that was damaged in a partial pull
    out.print("pulled 1 file", markup=False)
"""


def test_lines_printed_while_a_bar_is_up_go_to_the_output(tmp_path: Path) -> None:
    """A bar on the terminal takes over stdout while it is drawn (and one that never
    reaches its total, to the end): the lines printed meanwhile still go where the output
    is sent, not onto the terminal."""
    target = tmp_path / "out.txt"
    python_on_terminal(BAR_LEFT_UP, f' > "{target}"')
    assert target.read_text().splitlines() == ["    pull projects/a.jsonl", "pulled 1 file"]


def python_on_terminal(program: str, redirect: str = "") -> str:
    """What a Python program printed on a terminal (its output redirected as redirect
    says); it must exit 0."""
    child = pexpect.spawn(
        "/bin/sh",
        ["-c", f'"{sys.executable}" -c "$PROGRAM"{redirect}'],
        env=dict(os.environ, PROGRAM=program, TERM="xterm-256color"),
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 120),
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return str(child.before)


BAR_OVER = """
from claude_sync.cli.output import ConsoleReporter
with ConsoleReporter(verbose=False, quiet=False, as_json=False) as reporter:
    advance = reporter.progress("pushing", 8 << 20)
    for _ in range(4):
        advance(3 << 20)  # past the total: a synced form longer than the file here
"""


def test_a_bar_never_draws_more_than_its_total() -> None:
    drawn = python_on_terminal(BAR_OVER)
    assert "8.0/8.0 MiB" in drawn and "9.0/8.0" not in drawn
