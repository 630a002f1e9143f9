"""The command line (docs/CLI.md): parse, call the engine, print. Nothing else lives here.

This module holds the `main` group and its error handling; the commands live in one module
per group of commands, and what they print in output.py."""

from __future__ import annotations

import contextlib
import gc
import inspect
import os
import select
import signal
import sys
from typing import Any, NoReturn

import click

from claude_sync import __version__, memory, passphrase
from claude_sync.cli import history, keys, sessions, setup, sync
from claude_sync.cli.options import global_options
from claude_sync.cli.output import OutputUnwritable, err, json_output, print_json
from claude_sync.errors import (
    EXIT_FAILED,
    CorruptionError,
    HistoryError,
    ObjectNotFoundError,
    SyncError,
    no_space,
)
from claude_sync.interrupts import forget_uncaught, interrupt, is_interrupt
from claude_sync.resources import TYPES
from claude_sync.terminal import redact

#: new objects between two passes of the collector (CPython's default: 700)
GC_THRESHOLD = 100_000


class App(click.Group):
    """Turns every SyncError into one `error:` line and its exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a SyncError becomes its `error:` line and exit code."""
        # A scan keeps a few objects per file of the tree, tens of thousands, to the end:
        # the collector's default (a pass every 700 new objects, and whole passes over all
        # of them) took a tenth of a status or no-op push. Cycles are still collected.
        gc.set_threshold(GC_THRESHOLD, 10, 10)
        memory.tune()
        # A `kill` (a logout, a service manager) stops a command as Ctrl-C does: what it
        # wrote is whole, and the next run goes on from there.
        previous = None
        with contextlib.suppress(ValueError):  # not the main thread (a test's): left as is
            previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            done = super().invoke(ctx)
            _flush_output()
            return done
        except BrokenPipeError as exc:
            _closed_pipe(exc)
        except OutputUnwritable as exc:
            _cannot_write(exc.args[0])
        except SyncError as exc:
            message = str(exc)
            if (
                # Only prune deletes objects: one a command needs and cannot find is damage.
                isinstance(exc, CorruptionError | ObjectNotFoundError)
                and not isinstance(exc, HistoryError)
                and ctx.invoked_subcommand not in ("verify", "repair")
            ):
                # Damage blocks every command that reads that object: say how to get out.
                message += (
                    "; `claude-sync verify` lists what is damaged, and `claude-sync repair` "
                    "uploads again what this machine still has"
                )
            _fail(message, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_FAILED)
        except click.Abort:
            # Click's own message is a bare `Aborted!`: say what happened to the user's data.
            _fail("cancelled at a question; nothing was changed", EXIT_FAILED)
        except click.ClickException as exc:
            # Click prints its usage error; a script that asked for JSON still gets one.
            if json_output.asked and not json_output.printed:
                print_json({"error": exc.format_message(), "exit_code": exc.exit_code})
            raise
        except click.exceptions.Exit:
            raise
        except Exception as exc:
            if os.environ.get("CLAUDE_SYNC_DEBUG"):
                raise
            if is_interrupt(exc):
                _fail("interrupted", EXIT_FAILED)
            if isinstance(exc, OSError) and _raised_writing_output(exc):
                _cannot_write(exc)  # `push --help > /dev/full`: not the data's disk
            _fail(no_space(exc) or f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILED)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        """The top-level options are read: `--help` and `--version` print there, before any
        command runs."""
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:  # (Click would print a bare `Aborted!`)
            _fail("interrupted", EXIT_FAILED)
        except BrokenPipeError as exc:
            _closed_pipe(exc)
        except OSError as exc:  # `claude-sync --help > /dev/full`
            _cannot_write(exc)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's whole first line: Click would cut it to the terminal's width."""
        rows = [
            (name, cmd.get_short_help_str(limit=200))
            for name in self.list_commands(ctx)
            if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _closed_pipe(exc: BrokenPipeError) -> NoReturn:
    if not _stdout_closed():
        _fail(f"unexpected BrokenPipeError: {exc}", EXIT_FAILED)
    # `claude-sync sessions | head -1`: the reader has what it wanted. Quiet, and the
    # status of a program stopped by the closed pipe, as other tools have.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(128 + signal.SIGPIPE)


def _flush_output() -> None:
    """What is left of the command's output, written now: at exit, a failure would be
    Python's own message and status 120."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:  # `claude-sync status > /dev/full`
        _cannot_write(exc)


def _raised_writing_output(exc: BaseException) -> bool:
    """Whether exc was raised by Click writing the output (a command's `--help`, which Click
    prints itself): the output's fault, not the data's disk."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "echo" and code.co_filename == click.utils.__file__:
            return True
        tb = tb.tb_next
    return False


def _cannot_write(exc: OSError) -> NoReturn:
    _fail(f"cannot write the output ({exc.strerror or exc})", EXIT_FAILED)


def _stdout_closed() -> bool:
    """Whether nothing reads standard output any more (a pipe whose reader exited)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        # Linux says POLLERR, macOS POLLHUP.
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False  # no poll (Windows), or no descriptor: not known closed


def _fail(message: str, code: int) -> NoReturn:
    """The `error:` line (the console redacts and cleans it) and the exit code; with
    --json, also `{"error": …, "exit_code": …}` on stdout unless the command printed its
    JSON already, so a script always reads one object."""
    # Standard error closed or full: nothing to tell, but the JSON and the code still go.
    with contextlib.suppress(BrokenPipeError, OutputUnwritable):
        err.print(f"error: {message}", markup=False)
    # Standard output full or closed: the JSON goes nowhere, and what stays in its buffer
    # must not fail again at exit (a second message, and status 120).
    try:
        if json_output.asked and not json_output.printed:
            print_json({"error": redact(message), "exit_code": code})
        sys.stdout.flush()
    except (OSError, OutputUnwritable):
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    forget_uncaught()
    sys.exit(code)


@click.group(cls=App, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claude-sync")
@global_options
def main(**_: Any) -> None:
    """Encrypted, incremental sync of your Claude Code environment across machines.

    The options below may also come after the command, where it takes them (`--help` of a
    command lists its own). `claude-sync COMMAND --help` shows a command's options and
    examples.

    \b
    Examples:
      claude-sync init /mnt/shared/claude-sync --sync
      claude-sync sync
      claude-sync -v push sessions agents
    """
    passphrase.take_from_environment()


TYPES_HELP = (
    "TYPE limits the command to some resource types: "
    + ", ".join(t.name for t in TYPES)
    + " (see `claude-sync types`); with none, every type this machine syncs."
)
EXAMPLES: dict[str, tuple[str, ...]] = {
    "init": (
        "claude-sync init                                  # default folder (asks on a terminal)",
        "claude-sync init /mnt/shared/claude-sync --sync   # join, then pull and push",
        "claude-sync init s3://bucket/claude --create",
    ),
    "push": ("claude-sync push", "claude-sync push sessions agents --dry-run"),
    "pull": ("claude-sync pull", "claude-sync pull settings --strategy remote"),
    "sync": ("claude-sync sync", "claude-sync -v sync --dry-run"),
    "status": ("claude-sync status", "claude-sync --json status"),
    "types": ("claude-sync types", "claude-sync types --enable todos --disable history"),
    "where": ("claude-sync where", "claude-sync where ~/code/app"),
    "map": ("claude-sync map ~/src work", "claude-sync map ~/src --remove"),
    "install": ("claude-sync install", "claude-sync install --project ~/code/app"),
    "watch": ("claude-sync watch", "claude-sync watch --interval 60"),
    "conflicts": ("claude-sync conflicts",),
    "resolve": ("claude-sync resolve agents/x.md --take local",),
    "log": ("claude-sync log", "claude-sync log --json"),
    "devices": ("claude-sync devices", "claude-sync devices --rename laptop"),
    "restore": (
        "claude-sync restore agents/reviewer.md --snapshot 12",
        "claude-sync restore --snapshot 12 --target ~/claude-as-of-12",
    ),
    "prune": ("claude-sync prune --dry-run", "claude-sync prune --keep-last 50 --keep-within 30d"),
    "verify": ("claude-sync verify", "claude-sync verify --read-data"),
    "export": ("claude-sync export 4b6f1c2e session.tar.gz",),
    "import": ("claude-sync import session.tar.gz",),
    "doctor": ("claude-sync doctor",),
    "key": ("claude-sync key list", "claude-sync key export"),
}


def _add_commands() -> None:
    """Every command on `main`; each one's help ends with an example or two (and what TYPE
    means, where it applies)."""
    for module in (setup, sync, sessions, history, keys):
        for command in module.COMMANDS:
            main.add_command(command)
    for name, lines in EXAMPLES.items():
        command = main.commands[name]
        takes_types = any(p.name == "types" for p in command.params)
        extra = f"\n\n{TYPES_HELP}" if takes_types and name != "types" else ""
        block = "\n".join(f"  {line}" for line in lines)
        # Dedented first: Click dedents the whole help, and the examples' indent would
        # otherwise stay on the docstring's lines.
        text = inspect.cleandoc(command.help or "")
        command.help = f"{text}{extra}\n\n\b\nExamples:\n{block}"


_add_commands()
