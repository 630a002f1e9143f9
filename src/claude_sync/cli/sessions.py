"""sessions, resume, where, export and import: Claude Code sessions across machines."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from claude_sync import config
from claude_sync.cli.options import json_list_option, location_options
from claude_sync.cli.output import echo, local_time, out, print_json
from claude_sync.errors import ConfigError
from claude_sync.pathmap import PathMapper
from claude_sync.resources import Selection, select
from claude_sync.terminal import clean_value
from claude_sync.workspace import Locations, open_workspace


@click.command()
@location_options
@click.option("--here", is_flag=True, help="Only sessions of the project in this folder.")
@click.option(
    "--project", type=click.Path(file_okay=False), help="Only sessions of this project folder."
)
@click.option("--device", help="Only sessions last pushed by this machine.")
@click.option("--grep", "text", help="Only sessions whose title (or id) holds TEXT.")
@click.option("--content", is_flag=True, help="With --grep: search the transcripts too.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (newest first).")
@json_list_option
def sessions(
    where: Locations,
    here: bool,
    project: str | None,
    device: str | None,
    text: str | None,
    content: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """List every session the repository knows, on any machine, newest first."""
    from claude_sync import catalog

    if here and project:
        raise click.UsageError("give --here or --project, not both")
    if content and text is None:
        raise click.UsageError("--content needs --grep TEXT")
    directory = Path(os.getcwd()) if here else Path(project) if project else None
    with open_workspace(where) as ws:
        engine = ws.engine()
        found = catalog.select(
            catalog.build(engine, engine.head()), directory, device, text, content, limit, engine
        )
    if as_json:
        print_json([s.to_json() for s in found])
        return
    # One line a session, never wrapped: ids are for copying into `resume`.
    for s in found:
        here_mark = "here  " if s.local else "remote"
        # Titles and device names come from the repository: one clean line each.
        fields = (s.id, local_time(s.updated), here_mark, s.device or "-", s.project, s.title)
        echo("  ".join(clean_value(str(f)) for f in fields))
    if not found:
        out.print("No sessions found.")


@click.command()
@click.argument("query", metavar="ID|PREFIX|TEXT")
@click.option(
    "--print", "print_only", is_flag=True, help="Print the command instead of running it."
)
@click.option(
    "--cwd",
    type=click.Path(file_okay=False),
    help="Resume in this folder (when the project's folder does not exist here).",
)
@location_options
def resume(where: Locations, query: str, print_only: bool, cwd: str | None) -> None:
    """Bring a session from the repository here and continue it with `claude --resume`."""
    from claude_sync import catalog
    from claude_sync import resume as resuming

    with open_workspace(where) as ws:
        engine = ws.engine()
        head = engine.head()
        if head is None:
            raise ConfigError("the repository holds no sessions yet")
        ask = _choose_session if sys.stdin.isatty() and sys.stdout.isatty() else None
        chosen = resuming.pick(catalog.build(engine, head), query, ask)

        def remember_move(move: list[str]) -> None:
            if move:
                ws.settings.moved_sessions[chosen.id] = move
            else:
                ws.settings.moved_sessions.pop(chosen.id, None)
            config.save_settings(where.config_dir, ws.settings)

        placed = ws.settings.moved_sessions.get(chosen.id, [])
        directory = resuming.place(
            engine,
            head,
            chosen,
            Path(cwd) if cwd else None,
            remember_move,
            placed[2] if len(placed) > 2 else None,
        )
    if print_only:
        echo(resuming.command(directory, chosen.id))
        return
    resuming.run_claude(directory, chosen.id)


def _choose_session(candidates: list[Any]) -> Any:
    for n, s in enumerate(candidates, 1):
        shown = f"{local_time(s.updated)} {s.id} {clean_value(s.title)} ({clean_value(s.project)})"
        out.print(f"{n:>3}. {shown}", markup=False)
    number = click.prompt("Which session", type=click.IntRange(1, len(candidates)))
    return candidates[number - 1]


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@location_options
def where(where: Locations, directory: str | None) -> None:
    """Show which sessions `claude --resume` finds in DIRECTORY (default: here) after a pull."""
    with open_workspace(where) as ws:
        folder, logical, local, remote, older = ws.engine().remote_sessions.where(
            Path(directory or os.getcwd())
        )
    out.print(f"Claude Code folder: projects/{folder}", markup=False)
    out.print(f"Stored as:          projects/{logical}", markup=False)
    out.print(f"Sessions here:      {len(local)}", markup=False)
    coming = set(remote) - set(local) - set(older)
    out.print(f"Sessions after a pull: {len(set(local) | coming)}", markup=False)
    for session in sorted(coming):
        out.print(f"  + {session} (from the remote)", markup=False)
    for session in sorted(set(older) - set(local)):
        out.print(f"  ~ {session} (older: `claude-sync resume` or `pull --all`)", markup=False)


def _mapper(where: Locations) -> PathMapper:
    if not config.is_set_up(where.config_dir):
        return PathMapper(Path.home())
    settings = config.load_settings(where.config_dir)
    projects = str(where.claude_dir / "projects")
    return PathMapper(
        Path.home(), settings.path_maps, moved=settings.moved_sessions, projects=projects
    )


def _selection(where: Locations) -> Selection:
    """What this machine syncs, for commands that need no repository."""
    if not config.is_set_up(where.config_dir):
        return select([], {})
    s = config.load_settings(where.config_dir)
    return select([], s.types, tuple(s.include), tuple(s.exclude))


@click.command("export")
@click.argument("session")
@click.argument("file", type=click.Path(dir_okay=False))
@location_options
def export_command(where: Locations, session: str, file: str) -> None:
    """Write one session (transcript and sub-agents) to FILE, unencrypted, to hand over."""
    from claude_sync import session_archive

    count = session_archive.export_session(where.claude_dir, _mapper(where), session, Path(file))
    out.print(
        f"Exported {count} files of session {session} to {file} (not encrypted).", markup=False
    )


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Overwrite files that differ.")
@location_options
def import_command(where: Locations, file: str, force: bool) -> None:
    """Place a session exported elsewhere where Claude Code looks for it here."""
    from claude_sync import session_archive

    placed = session_archive.import_session(
        where.claude_dir, _mapper(where), _selection(where), Path(file), force
    )
    out.print(f"Imported {len(placed)} files into {where.claude_dir / placed[0]}", markup=False)


COMMANDS = (sessions, resume, where, export_command, import_command)
