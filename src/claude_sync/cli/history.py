"""log, devices, restore, prune, verify, repair and upgrade: the repository's history and its
upkeep."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from claude_sync import config
from claude_sync.cli.options import dry_run_option, json_option, location_options
from claude_sync.cli.output import (
    ConsoleReporter,
    count,
    err,
    local_time,
    out,
    print_json,
    size,
    table,
)
from claude_sync.errors import ConfigError, SyncError
from claude_sync.workspace import Locations, open_workspace, save_keys


@click.command("log")
@location_options
@json_option
def log_command(where: Locations, as_json: bool) -> None:
    """List snapshots: sequence, device, time, changes."""
    from claude_sync import maintenance

    with open_workspace(where) as ws:
        entries = maintenance.log(ws.engine())
    if as_json:
        print_json({"snapshots": [e.__dict__ for e in entries]})
        return
    rows = table("snapshot", "device", "time", "files", "added", "changed", "removed")
    for e in entries:
        when = local_time(e.time, with_seconds=True)
        rows.add_row(*map(str, (e.seq, e.device, when, e.files, e.added, e.changed, e.removed)))
    out.print(rows)


@click.command("devices")
@location_options
@click.option("--rename", metavar="NAME", help="Change this machine's name in future pushes.")
@json_option
def devices_command(where: Locations, rename: str | None, as_json: bool) -> None:
    """List the machines that pushed, and when each last did."""
    if rename is not None:
        if not rename.strip():
            raise ConfigError("a device name cannot be empty")
        settings = config.load_settings(where.config_dir)
        new = rename.strip()
        if new != settings.device:
            # Kept, and named in this machine's next snapshots, so that every machine lists
            # the old name's pushes under the new one.
            former = [*settings.former_names, settings.device]
            settings.former_names = [n for n in dict.fromkeys(former) if n != new]
            settings.device = new
        config.save_settings(where.config_dir, settings)
    from claude_sync import maintenance

    with open_workspace(where) as ws:
        engine = ws.engine()
        seen = maintenance.devices(engine, maintenance.log(engine))
        me = ws.settings.device
    newest_first = sorted(seen.items(), key=lambda d: -d[1][1])
    if as_json:
        from claude_sync.catalog import iso

        devices = [
            {"device": d, "snapshots": n, "last_push": iso(last), "this_machine": d == me}
            for d, (n, last) in newest_first
        ]
        print_json({"devices": devices})
        return
    rows = table("device", "snapshots", "last push")
    for device, (n, last) in newest_first:
        name = device + (" (this machine)" if device == me else "")
        rows.add_row(name, str(n), local_time(last, with_seconds=True))
    out.print(rows)


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--snapshot", "seq", type=int, required=True, help="Snapshot to restore from.")
@click.option("--target", type=click.Path(file_okay=False), help="Restore here, not in place.")
@click.option("--force", is_flag=True, help="Overwrite local changes not pushed yet.")
@location_options
@json_option
def restore(
    where: Locations,
    paths: tuple[str, ...],
    seq: int,
    target: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Bring back files (logical paths, or prefixes) as they were in a snapshot."""
    from claude_sync import maintenance

    with open_workspace(where) as ws, ConsoleReporter(False, False, as_json) as reporter:
        engine = ws.engine(reporter)
        into = Path(target) if target else None
        if into is not None and into.resolve() == engine.root.resolve():
            into = None  # the Claude folder itself, by another name: a restore in place
        result = maintenance.restore(engine, ws.selection(), seq, list(paths), into, force)
        if into is None:
            # The restored version is a new change: push it, so other machines get it too.
            only = tuple(engine.mapper.to_local(p) for p in result.pulled)
            pushed = engine.push(replace(ws.selection(), only=only))
            result.pushed, result.uploaded_bytes = pushed.pushed, pushed.uploaded_bytes
    failed = (
        f"{count(len(result.skipped), 'file')} could not be restored (the warnings say why)"
        if result.skipped
        else None
    )
    if as_json:
        error = {"error": failed, "exit_code": SyncError.exit_code} if failed else {}
        print_json(result.to_json() | error)
    else:
        for warning in result.warnings:
            err.print(f"warning: {warning}", markup=False)
        restored = count(len(result.pulled), "file")
        tail = f"; pushed {count(len(result.pushed), 'file')}" if target is None else ""
        out.print(f"Restored {restored} from snapshot {seq}{tail}.", markup=False)
    if failed:
        raise SyncError(failed)


@click.command()
@click.option(
    "--keep-last",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Keep this many newest snapshots.",
)
@click.option("--keep-within", metavar="DURATION", help="Also keep snapshots this young (30d).")
@click.option(
    "--grace",
    metavar="DURATION",
    default="1h",
    show_default=True,
    help="Delete data only once it was found unused at least this long ago.",
)
@dry_run_option
@location_options
def prune(
    where: Locations, keep_last: int, keep_within: str | None, grace: str, dry_run: bool
) -> None:
    """Drop old snapshots and the data only they needed (safe while others push)."""
    from claude_sync import maintenance

    with open_workspace(where) as ws:
        report = maintenance.prune(
            ws.engine(),
            keep_last,
            config.parse_duration(keep_within),
            config.parse_duration(grace) or 0.0,
            dry_run,
        )
    if dry_run:
        out.print(
            f"Would remove {count(len(report.snapshots_removed), 'snapshot')} and mark "
            f"{count(report.packs_marked, 'unused pack')} (marked packs are deleted by a later "
            "prune).",
            markup=False,
        )
        return
    out.print(
        f"Removed {count(len(report.snapshots_removed), 'snapshot')}; marked "
        f"{count(report.packs_marked, 'unused pack')}; deleted "
        f"{count(report.packs_deleted, 'pack')} ({size(report.bytes_freed)} freed).",
        markup=False,
    )


@click.command()
@click.option("--read-data", is_flag=True, help="Download and authenticate every byte.")
@location_options
def verify(where: Locations, read_data: bool) -> None:
    """Check that every snapshot's data is present (and intact, with --read-data)."""
    from claude_sync import maintenance

    with open_workspace(where) as ws, ConsoleReporter(False, False, False) as reporter:
        problems = maintenance.verify(ws.engine(reporter), read_data)
    for problem in problems:
        err.print(f"problem: {problem}", markup=False)
    if problems:
        raise SyncError(f"the repository has {count(len(problems), 'problem')}")
    if read_data:
        out.print("No problems found.")
    else:
        out.print(
            "No problems found in the indexes and snapshots (the data itself was not read: "
            "run with --read-data to check it)."
        )


@click.command()
@location_options
def upgrade(where: Locations) -> None:
    """Move the repository to the current format (older claude-sync then refuses it)."""
    from claude_sync.repository import REPO_FORMAT

    with open_workspace(where) as ws:
        ws.repo.older_format_ok = True
        changed = ws.repo.upgrade()
        save_keys(where.config_dir, ws.repo)
    if changed:
        out.print(
            f"Upgraded the repository to format {REPO_FORMAT}. Update claude-sync on every "
            "machine: older versions refuse it now.",
            markup=False,
        )
    else:
        out.print(f"The repository already uses format {ws.repo.config.version}.", markup=False)


@click.command()
@location_options
@click.option(
    "--forget-damaged",
    is_flag=True,
    help="Remove snapshots that cannot be read and that this machine cannot put back.",
)
def repair(where: Locations, forget_damaged: bool) -> None:
    """Rebuild the indexes from the packs, and upload again from this machine's files the
    data snapshots need that the repository lost."""
    from claude_sync import maintenance

    with open_workspace(where) as ws:
        report = maintenance.repair(ws.engine(), forget_damaged)
    if report.lists_mended:
        out.print(
            f"Put back {report.lists_mended} damaged or lost file-list objects from this "
            "machine's copies.",
            markup=False,
        )
    out.print(
        f"Read {count(report.packs_checked, 'pack')}: {report.packs_damaged} damaged (no "
        f"longer indexed). Indexed {count(report.packs_indexed, 'pack')} no index named; "
        f"uploaded {count(report.blobs_restored, 'missing or damaged blob')} again.",
        markup=False,
    )
    numbers = ", ".join(map(str, report.snapshots_damaged))
    if report.snapshots_removed:
        out.print(
            f"Removed damaged snapshots {numbers}. Machines that pushed or pulled them (this "
            "one too) still have their files: run `claude-sync sync --allow-rollback` on "
            "each to push them again.",
            markup=False,
        )
    elif report.snapshots_damaged:
        lists = [n for n in report.snapshots_damaged if n not in report.roots_damaged]
        where = (
            "; a machine that pulled one whose file list is damaged may put it back (run "
            "`claude-sync repair` there first)"
            if lists
            else " (no machine keeps a copy of a snapshot itself)"
        )
        one = len(report.snapshots_damaged) == 1
        raise SyncError(
            f"{count(len(report.snapshots_damaged), 'snapshot')} ({numbers}) cannot be read "
            f"and this machine cannot put {'it' if one else 'them'} back{where}. `claude-sync "
            f"repair --forget-damaged` removes {'it' if one else 'them'}; the machines that "
            "had it then push their files again with `claude-sync sync --allow-rollback`"
        )
    if report.incomplete:
        verb = "misses" if len(report.incomplete) == 1 else "miss"
        raise SyncError(
            f"{count(len(report.incomplete), 'snapshot')} still {verb} data this machine does "
            f"not have (e.g. snapshot {report.incomplete[-1]}): run `claude-sync repair` on "
            "each machine that may still have those files; what none has is lost, and "
            "`verify` reports it until `claude-sync prune` forgets the snapshots that need it"
        )


COMMANDS = (log_command, devices_command, restore, prune, verify, upgrade, repair)
