"""push, pull, sync, status, conflicts and resolve: moving changes between this machine and
the repository, and settling what both sides changed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from claude_sync import plugins
from claude_sync.cli.options import (
    RunOptions,
    dry_run_option,
    json_option,
    location_options,
    output_options,
    strategy_option,
    type_argument,
)
from claude_sync.cli.output import (
    NOTHING_TO_PUSH,
    ConsoleReporter,
    changed_when,
    count,
    err,
    finish,
    held_line,
    how_changed,
    keys_line,
    out,
    print_conflicts,
    print_json,
    print_missing_plugins,
    print_plan,
    summary,
)
from claude_sync.engine import Engine, Result
from claude_sync.errors import EXIT_CONFLICTS
from claude_sync.resources import UPGRADE_FIRST, linked_tops
from claude_sync.terminal import clean_value, redact
from claude_sync.workspace import Locations, Workspace, open_state, open_workspace

every_session_option = click.option(
    "--all", "every_session", is_flag=True, help="Also fetch sessions older than the window."
)


@click.command()
@type_argument
@location_options
@dry_run_option
@output_options
def push(where: Locations, types: tuple[str, ...], dry_run: bool, run: RunOptions) -> None:
    """Upload what changed locally."""
    _run(
        where,
        run,
        dry_run,
        lambda ws, engine: engine.push(ws.selection(types), dry_run),
        NOTHING_TO_PUSH,
    )


def _run(
    where: Locations,
    run: RunOptions,
    dry_run: bool,
    work: Callable[[Workspace, Engine], Result],
    idle: str = "Everything is up to date.",
    reaching: bool = False,
) -> None:
    """work on the workspace with an engine that reports on the console, then print what it
    did (reaching: see open_workspace)."""
    reporter = ConsoleReporter(run.verbose, run.quiet, run.as_json)
    with open_workspace(where, reaching) as ws, reporter:
        result = work(ws, ws.engine(reporter, run.allow_rollback))
    finish(result, run.as_json, run.quiet, run.verbose, dry_run, idle)


def incoming_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What pull and sync take: types, places, strategy, dry run, output, --all."""
    for option in (
        every_session_option,
        output_options,
        dry_run_option,
        strategy_option,
        location_options,
        type_argument,
    ):
        fn = option(fn)
    return fn


@click.command()
@incoming_options
def pull(**options: Any) -> None:
    """Download what changed on other machines."""
    _incoming("pull", **options)


@click.command()
@incoming_options
def sync(**options: Any) -> None:
    """Pull, then push."""
    _incoming("sync", **options)


def _incoming(
    action: str,
    where: Locations,
    types: tuple[str, ...],
    strategy: str,
    dry_run: bool,
    run: RunOptions,
    every_session: bool,
) -> None:
    """pull or sync: the same options, the same engine set-up, the same report."""

    def work(ws: Workspace, engine: Engine) -> Result:
        if every_session:
            engine.want_every_session()
        incoming = engine.pull if action == "pull" else engine.sync
        return incoming(ws.selection(types), strategy, dry_run, complete=not types)

    # (A repository another machine upgraded since this one looked brings the types that
    # waited for it on this very run, not on the next.)
    _run(where, run, dry_run, work, reaching=True)


@click.command()
@location_options
@output_options
def status(where: Locations, run: RunOptions) -> None:
    """Show what push and pull would do, and unresolved conflicts (--verbose: each
    conflict's versions; --quiet: nothing but errors, the exit code says if any is left)."""
    with open_workspace(where, reaching=True) as ws:
        engine = ws.engine(None, run.allow_rollback)
        result, head, remote_only = engine.status(ws.selection())
        result.warnings += [UPGRADE_FIRST.format(t.name) for t in ws.waiting_types()]
    missing = plugins.missing(where.claude_dir)
    links = linked_tops(where.claude_dir)
    if run.as_json:
        print_json(
            result.to_json()
            | {
                "remote": redact(ws.settings.remote),
                "head": head,
                "remote_only_sessions": remote_only,
                "missing_plugins": [m.__dict__ | {"command": m.shell} for m in missing],
                "linked": links,
            }
        )
    elif not run.quiet:
        _print_status(ws.settings.remote, head, links, result, remote_only, missing, run.verbose)
    if result.conflicts:
        sys.exit(EXIT_CONFLICTS)  # as sync would: a script sees that something waits


def _print_status(
    remote: str,
    head: int | None,
    links: dict[str, str],
    result: Result,
    remote_only: int,
    missing: list[plugins.Missing],
    verbose: bool,
) -> None:
    out.print(
        f"Remote: {redact(remote)} (snapshot {head if head is not None else 'none'})",
        markup=False,
    )
    for name, target in links.items():
        out.print(f"  linked: {name} -> {target}", markup=False)
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False)
    if remote_only:
        out.print(
            f"{count(remote_only, 'session')} {'is' if remote_only == 1 else 'are'} only in "
            "the repository "
            "(`claude-sync sessions`; they arrive with `resume` or `pull --all`)",
            markup=False,
        )
    print_plan(result, "to push:", "to remove:", "to pull:", "will merge:", "to delete:")
    print_conflicts(result.conflicts, verbose)
    print_missing_plugins(missing)
    if result.unavailable:
        out.print(
            f"{count(len(result.unavailable), 'file')} cannot be pulled: the data in the "
            "repository is damaged or missing (`claude-sync repair` on a machine that has them)",
            markup=False,
        )
    elif not (
        result.pushed or result.pulled or result.merged or result.deleted or result.conflicts
    ):
        out.print(summary(result))


@click.command()
@location_options
@json_option
def conflicts(where: Locations, as_json: bool) -> None:
    """List the conflicts left unresolved by earlier pulls."""
    with open_state(where) as state:
        found = state.conflicts()
    if as_json:
        print_json({"conflicts": sorted(found), "details": found})
        return
    if not found:
        out.print("No unresolved conflicts.")
    for path, detail in sorted(found.items()):
        device = clean_value(str(detail.get("remote_device") or ""))
        held, keys = detail.get("held"), detail.get("keys")
        when = changed_when(detail.get("remote_time"))
        if isinstance(held, list):
            added = detail.get("local_sha256") is None
            out.print(held_line(path, device, held, added), markup=False)
        if isinstance(keys, list):
            out.print(keys_line(path, device, keys, when), markup=False)
        if isinstance(held, list) or isinstance(keys, list):
            continue
        copy = detail.get("copy")
        beside = f" (remote version in {copy})" if copy else ""
        how = how_changed(detail.get("local_sha256"), detail.get("remote_sha256"), device)
        out.print(f"{path}: {how}{when}{beside}", markup=False)


@click.command()
@click.argument("path")
@click.option(
    "--take",
    type=click.Choice(["local", "remote", "both"]),
    required=True,
    help="Which version wins (both: keep yours, theirs stays beside it).",
)
@location_options
@output_options
def resolve(where: Locations, path: str, take: str, run: RunOptions) -> None:
    """Settle one conflict, or every conflict under a folder (PATH), then push the result."""
    from claude_sync import resolution

    _run(where, run, False, lambda ws, engine: resolution.resolve(ws, engine, path, take))


COMMANDS = (push, pull, sync, status, conflicts, resolve)
