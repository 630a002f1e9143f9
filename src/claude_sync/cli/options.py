"""The options commands share, and the global ones that may also stand before the command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from claude_sync.cli.output import err, note_json
from claude_sync.engine import STRATEGIES
from claude_sync.head import HISTORY_ALARM
from claude_sync.resources import TYPES
from claude_sync.workspace import Locations

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

claude_dir_option = click.option(
    "--claude-dir", type=click.Path(file_okay=False), help="Claude Code's folder."
)
config_dir_option = click.option(
    "--config-dir", type=click.Path(file_okay=False), help="claude-sync's folder."
)


def _json_flag(help: str = "Print one JSON object on stdout.") -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help, callback=note_json)


verbose_flag = click.option("-v", "--verbose", is_flag=True, help="Print every action.")
quiet_flag = click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
#: Options that may also stand before the command (`claude-sync -v push`).
GLOBAL = (claude_dir_option, config_dir_option, _json_flag(), verbose_flag, quiet_flag)


def global_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options that may also stand before the command, for the `main` group."""
    for option in reversed(GLOBAL):
        fn = option(fn)
    return fn


def _with_globals(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command's own value of a global option, or the one given before the command."""

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        before = click.get_current_context().find_root().params
        for name, value in kwargs.items():
            if not value and before.get(name):
                kwargs[name] = before[name]
        return fn(**kwargs)

    return wrapper


def location_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--claude-dir and --config-dir, handed to the command as one `where: Locations`."""

    @claude_dir_option
    @config_dir_option
    @_with_globals
    @functools.wraps(fn)
    def wrapper(claude_dir: str | None, config_dir: str | None, **kwargs: Any) -> Any:
        where = Locations.from_options(claude_dir, config_dir)
        _pass_on_alarm(where)
        return fn(where=where, **kwargs)

    return wrapper


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--json for a command whose output is one JSON object."""
    return _json_flag()(_with_globals(fn))


def json_list_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--json for a command whose output is a list."""
    return _json_flag("Print a JSON list on stdout.")(_with_globals(fn))


#: commands that look at the remote history themselves (and fail if it is still wrong), or
#: that run in the background where nobody would read a warning
_CHECK_HISTORY_THEMSELVES = {"push", "pull", "sync", "status", "hook", "hook-worker"}


def _pass_on_alarm(where: Locations) -> None:
    """A background sync (hook) that refused the remote history could only log it: say it
    at the next command, until a sync looks again and finds the history right."""
    if click.get_current_context().info_name in _CHECK_HISTORY_THEMSELVES:
        return
    try:
        alarm = (where.config_dir / HISTORY_ALARM).read_text()
    except (OSError, UnicodeDecodeError):
        return
    err.print(f"warning: the last sync stopped: {alarm}", markup=False)


allow_rollback_option = click.option(
    "--allow-rollback", is_flag=True, help="Accept a remote older than one seen before."
)


@dataclass(frozen=True)
class RunOptions:
    """How a syncing command reports (--json, --verbose, --quiet) and whether it accepts an
    older remote (--allow-rollback)."""

    as_json: bool
    verbose: bool
    quiet: bool
    allow_rollback: bool


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--json, --verbose, --quiet and --allow-rollback, handed to the command as one
    `run: RunOptions`."""

    @_json_flag()
    @verbose_flag
    @quiet_flag
    @allow_rollback_option
    @_with_globals
    @functools.wraps(fn)
    def wrapper(
        *args: Any, as_json: bool, verbose: bool, quiet: bool, allow_rollback: bool, **kwargs: Any
    ) -> Any:
        return fn(*args, run=RunOptions(as_json, verbose, quiet, allow_rollback), **kwargs)

    return wrapper


type_argument = click.argument(
    "types", nargs=-1, type=click.Choice([t.name for t in TYPES]), metavar="[TYPE]..."
)
strategy_option = click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default="ask",
    show_default=True,
    help="How to settle a file changed on both sides.",
)
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Show what would happen; change nothing."
)
