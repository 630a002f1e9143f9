"""The command line (docs/CLI.md): parse, call the engine, print. Nothing else lives here."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from claude_sync import __version__, config, hooks, integration, passphrase, plugins
from claude_sync.engine import HISTORY_ALARM, STRATEGIES, Conflict, Reporter, Result
from claude_sync.errors import (
    EXIT_CONFLICTS,
    EXIT_FAILED,
    ConfigError,
    CorruptionError,
    HistoryError,
    ObjectNotFoundError,
    SyncError,
)
from claude_sync.passphrase import read_passphrase
from claude_sync.pathmap import LABEL, PathMapper
from claude_sync.resources import CONFLICT_MARKER, TYPES, Selection, linked_tops, select
from claude_sync.store import RemoteOptions
from claude_sync.store.base import redact
from claude_sync.terminal import clean, clean_value
from claude_sync.workspace import (
    AlreadySetUp,
    InitOutcome,
    Locations,
    init,
    open_workspace,
    save_keys,
)


class _LazyConsole:
    """A Rich console made on first use: importing Rich costs more than a no-op push.
    Text printed through it loses control characters and credentials in URLs: much of it
    (paths, device names, errors quoting them) came from the repository or a remote."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Any = None

    def print(self, *objects: Any, **kwargs: Any) -> None:
        safe = [clean(redact(o)) if isinstance(o, str) else o for o in objects]
        self.real.print(*safe, **kwargs)

    @property
    def real(self) -> Any:
        """The Rich console itself, for Rich objects that need one: they use it as a context
        manager, and special methods are never looked up through __getattr__."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


out = _LazyConsole(stderr=False)
err = _LazyConsole(stderr=True)


def _table(*columns: str) -> Any:
    from rich.table import Table
    from rich.text import Text

    class SafeTable(Table):
        """Cells are plain text on one line: no markup, no control characters."""

        def add_row(self, *cells: Any, **kwargs: Any) -> None:
            super().add_row(*(Text(clean_value(str(c))) for c in cells), **kwargs)

    return SafeTable(*columns, box=None)


class App(click.Group):
    """Turns every SyncError into one `error:` line and its exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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
            err.print(f"error: {message}", markup=False)  # the console redacts and cleans it
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("error: interrupted", markup=False)
            sys.exit(EXIT_FAILED)
        except click.Abort:
            # Click's own message is a bare `Aborted!`: say what happened to the user's data.
            err.print("error: cancelled at a question; nothing was changed", markup=False)
            sys.exit(EXIT_FAILED)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:
            if os.environ.get("CLAUDE_SYNC_DEBUG"):
                raise
            err.print(f"error: unexpected {type(exc).__name__}: {exc}", markup=False)
            sys.exit(EXIT_FAILED)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's whole first line: Click would cut it to the terminal's width."""
        rows = [
            (name, cmd.get_short_help_str(limit=200))
            for name in self.list_commands(ctx)
            if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


claude_dir_option = click.option(
    "--claude-dir", type=click.Path(file_okay=False), help="Claude Code's folder."
)
config_dir_option = click.option(
    "--config-dir", type=click.Path(file_okay=False), help="claude-sync's folder."
)
json_flag = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
verbose_flag = click.option("-v", "--verbose", is_flag=True, help="Print every action.")
quiet_flag = click.option("-q", "--quiet", is_flag=True, help="Print only errors.")
#: Options that may also stand before the command (`claude-sync -v push`).
GLOBAL = (claude_dir_option, config_dir_option, json_flag, verbose_flag, quiet_flag)


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
    return json_flag(_with_globals(fn))


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


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    @json_flag
    @verbose_flag
    @quiet_flag
    @click.option(
        "--allow-rollback", is_flag=True, help="Accept a remote older than one seen before."
    )
    @_with_globals
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

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


class ConsoleReporter(Reporter):
    """Prints actions, draws progress bars on a terminal and asks about conflicts. Use it as
    a context manager: a bar still drawn when the command ends (or fails) is taken down."""

    def __init__(self, verbose: bool, quiet: bool, as_json: bool) -> None:
        self.verbose = verbose and not as_json
        # Asked of sys.stderr, not Rich: importing Rich costs more than a no-op push.
        self.bars = not quiet and not as_json and sys.stderr.isatty()
        self.interactive = sys.stdin.isatty() and not as_json
        self._drawn: list[Any] = []

    def __enter__(self) -> ConsoleReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self._drawn:
            bar.stop()

    def resolve(
        self, conflict: Conflict, local: bytes, remote: bytes, base: bytes | None
    ) -> str | bytes | None:
        if not self.interactive:
            return None
        from claude_sync import prompt

        return prompt.ask(conflict, local, remote, base)

    def trust(self, path: str, changes: dict[str, tuple[Any, Any]], device: str) -> bool:
        if not self.interactive:
            return False
        from claude_sync import prompt

        return prompt.ask_trust(path, changes, device)

    def action(self, verb: str, path: str) -> None:
        if self.verbose:
            out.print(f"{verb:>8} {path}", markup=False)

    def progress(self, description: str, total: int) -> Callable[[int], None]:
        if not self.bars or total < 4 * 1024 * 1024:
            return lambda advance: None
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        bar = Progress(
            "{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=err.real,
            transient=True,
        )
        task = bar.add_task(description, total=total)
        self._drawn.append(bar)
        bar.start()

        def advance(n: int) -> None:
            bar.advance(task, n)
            if bar.tasks[0].finished:
                bar.stop()

        return advance


def _global_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(GLOBAL):
        fn = option(fn)
    return fn


@click.group(cls=App, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claude-sync")
@_global_options
def main(**_: Any) -> None:
    """Encrypted, incremental sync of your Claude Code environment across machines.

    The options below may also come after the command. `claude-sync COMMAND --help` shows a
    command's options and examples.

    \b
    Examples:
      claude-sync init /mnt/shared/claude-sync --sync
      claude-sync sync
      claude-sync -v push sessions agents
    """
    passphrase.take_from_environment()


@main.command("init")
@click.argument("remote", required=False)
@location_options
@click.option(
    "--passphrase-file", type=click.Path(dir_okay=False), help="Read the passphrase here."
)
@click.option("--recovery-key", help="Join with a recovery key instead of the passphrase.")
@click.option("--endpoint-url", help="Endpoint of an S3-compatible server.")
@click.option(
    "--create",
    is_flag=True,
    help="Create a repository even where the place is missing (a new folder or bucket).",
)
@click.option("--create-bucket", is_flag=True, help="Create the bucket when it does not exist.")
@click.option("--git-branch", help="Branch of a git remote (default: the remote's default).")
@click.option("--default", "use_default", is_flag=True, help="Use the default folder; no wizard.")
@click.option(
    "--device", help="This machine's name in the repository (default: host name + 4 hex)."
)
@click.option("--force", is_flag=True, help="Set up again a machine that is already set up.")
@click.option("--sync", "then_sync", is_flag=True, help="Then pull and push (one-command set-up).")
@click.option(
    "--generate-passphrase", is_flag=True, help="Print a strong random passphrase and exit."
)
def init_command(
    where: Locations,
    remote: str | None,
    passphrase_file: str | None,
    recovery_key: str | None,
    endpoint_url: str | None,
    create: bool,
    create_bucket: bool,
    git_branch: str | None,
    use_default: bool,
    device: str | None,
    force: bool,
    then_sync: bool,
    generate_passphrase: bool,
) -> None:
    """Create a repository on REMOTE, or join the one there (default: a local folder).

    A new repository is made only where REMOTE exists and is empty, or with --create: a typo
    or an unmounted drive never becomes a repository (on a terminal, init asks). With no
    REMOTE on a terminal, a wizard asks where (the default folder is the first answer).
    """
    if generate_passphrase:
        click.echo(passphrase.generate())
        return
    if remote is not None and use_default:
        raise ConfigError("give either REMOTE or --default, not both")
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    outcome: InitOutcome | None = None
    try:
        if remote is None and recovery_key is None and terminal and not use_default:
            from claude_sync import wizard

            outcome = wizard.run(where, force=force, device=device, hint=not then_sync)
        else:
            outcome = init(
                where,
                remote,
                passphrase_file=passphrase_file,
                recovery_key=recovery_key,
                force=force,
                options=RemoteOptions(
                    endpoint_url=endpoint_url, git_branch=git_branch, create_bucket=create_bucket
                ),
                device=device,
                create=create,
                confirm=(lambda q: click.confirm(q, default=False)) if terminal else None,
            )
            _print_init(outcome, hint=not then_sync)
    except AlreadySetUp as exc:
        out.print(
            f"{str(exc).capitalize()}." + ("" if then_sync else " Nothing to do."), markup=False
        )
    if outcome is not None and outcome.removed:
        out.print(
            f"Removed the unused repository at {redact(outcome.removed)} "
            "(it held only this machine's first push).",
            markup=False,
        )
    if then_sync:
        with open_workspace(where) as ws, ConsoleReporter(False, False, False) as reporter:
            result = ws.engine(reporter).sync(ws.selection(), "ask", dry_run=False, complete=True)
        _finish(result, as_json=False, quiet=False, verbose=False, dry_run=False)


def _print_init(outcome: InitOutcome, hint: bool) -> None:
    remote = redact(outcome.remote)
    if outcome.created:
        out.print(f"Created a new encrypted repository at {remote}", markup=False)
        out.print(
            "Keep the passphrase safe: without it (or `claude-sync key export`) the data "
            "cannot be recovered."
        )
        out.print(f"On your next machine run: claude-sync init {remote} --sync", markup=False)
    else:
        out.print(f"Joined the repository at {remote}", markup=False)
    if hint:
        out.print(f"Next: claude-sync {'push' if outcome.created else 'pull'}", markup=False)


def _finish(result: Result, as_json: bool, quiet: bool, verbose: bool, dry_run: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_json() | ({"dry_run": True} if dry_run else {})))
    elif not quiet:
        for warning in result.warnings:
            err.print(f"warning: {warning}", markup=False)
        if dry_run:
            _print_plan(
                result,
                "would push",
                "would remove everywhere",
                "would pull",
                "would merge",
                "would delete",
            )
        _print_conflicts(result.conflicts, verbose)
        out.print(_summary(result, dry_run), markup=False)
    if result.unavailable:
        raise SyncError(
            f"{_count(len(result.unavailable), 'file')} could not be downloaded: their data in "
            "the repository is damaged or missing (`claude-sync verify --read-data` lists the "
            "damage); run `claude-sync repair` on a machine that has them, then pull again"
        )
    if result.conflicts:
        sys.exit(EXIT_CONFLICTS)


def _print_plan(result: Result, *verbs: str) -> None:
    """One marked line per path: what push (upload, removal), pull, a merge and a deletion
    would do."""
    uploads = [p for p in result.pushed if p not in result.removed]
    lists = (uploads, result.removed, result.pulled, result.merged, result.deleted)
    width = max(map(len, verbs))
    for verb, paths in zip(verbs, lists, strict=True):
        for path in paths:
            out.print(f"{verb:>{width}} {path}", markup=False)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _summary(result: Result, dry_run: bool = False) -> str:
    parts = []
    # Deletions pushed are reported as such, not as files sent.
    uploads = len(result.pushed) - len(result.removed)
    if dry_run:
        if uploads:
            pushed = _count(uploads, "file")
            parts.append(f"would push {pushed} (≈{_size(result.uploaded_bytes)})")
        if result.removed:
            parts.append(f"would remove {_count(len(result.removed), 'deleted file')} everywhere")
        if result.pulled or result.merged:
            pulled = _count(len(result.pulled) + len(result.merged), "file")
            parts.append(f"would pull {pulled} (≈{_size(result.downloaded_bytes)})")
        if result.deleted:
            parts.append(f"would delete {_count(len(result.deleted), 'file')}")
        if result.conflicts:
            parts.append(f"{_count(len(result.conflicts), 'conflict')} would be left")
        return ", ".join(parts) if parts else "Nothing to do: everything is up to date."
    if uploads:
        sent = _size(result.uploaded_bytes)
        parts.append(f"pushed {_count(uploads, 'file')} ({sent} sent)")
    if result.removed:
        removed = _count(len(result.removed), "deleted file")
        parts.append(f"removed {removed} from every machine")
    if result.pulled or result.deleted:
        received = _size(result.downloaded_bytes)
        parts.append(f"pulled {_count(len(result.pulled), 'file')} ({received} received)")
    if result.merged:
        parts.append(f"merged {_count(len(result.merged), 'file')}")
    if result.deleted:
        parts.append(f"deleted {len(result.deleted)}")
    if result.conflicts:
        parts.append(f"{_count(len(result.conflicts), 'conflict')} left unresolved")
    if parts:
        return ", ".join(parts)
    if result.skipped:
        # Not "up to date": what was skipped (see the warnings) has not been synced.
        return f"{_count(len(result.skipped), 'file')} skipped this time; nothing else to do."
    return "Everything is up to date."


def _held_line(path: str, device: str, held: list[str]) -> str:
    return (
        f"{path}: {clean_value(device) or 'another machine'} changed settings that run code "
        f"({', '.join(held)}); held back: `claude-sync resolve {path} --take remote` "
        "applies them, `--take local` keeps yours"
    )


def _keys_line(path: str, device: str, keys: list[str], when: str) -> str:
    return (
        f"{path}: {clean_value(', '.join(keys))} changed here and on "
        f"{clean_value(device) or 'another machine'}{when}; the other keys merged: "
        f"`claude-sync resolve {path} --take remote` or `--take local` settles these"
    )


def _when(seconds: object) -> str:
    """` (2026-11-30 14:02)`: when the other machine made its change, if known."""
    if not isinstance(seconds, int | float) or seconds <= 0:
        return ""
    return time.strftime(" (%Y-%m-%d %H:%M)", time.localtime(seconds))


def _print_conflicts(conflicts: list[Conflict], verbose: bool) -> None:
    for c in conflicts:
        if c.held:
            err.print("conflict: " + _held_line(c.path, c.remote_device, c.held), markup=False)
        if c.keys:
            line = _keys_line(c.path, c.remote_device, c.keys, _when(c.remote_time))
            err.print("conflict: " + line, markup=False)
        if c.held or c.keys:
            continue
        device = clean_value(c.remote_device) or "another machine"
        line = f"conflict: {c.path} changed here and on {device}{_when(c.remote_time)}"
        if c.copy:
            line += f"; the remote version is saved as {c.copy}"
        err.print(line, markup=False)
        if verbose:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.remote_time))
            mtime = (
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.local_mtime_ns / 1e9))
                if c.local_mtime_ns
                else "-"
            )
            err.print(
                f"    local  sha256 {c.local_sha256 or '(deleted)'} on this machine, "
                f"modified {mtime}\n"
                f"    remote sha256 {c.remote_sha256 or '(deleted)'} from {device}, "
                f"snapshot {c.remote_seq}, {when}\n"
                f"    base   sha256 {c.base_sha256 or '(none)'}",
                markup=False,
            )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


@main.command()
@type_argument
@location_options
@dry_run_option
@output_options
def push(
    where: Locations,
    types: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    verbose: bool,
    quiet: bool,
    allow_rollback: bool,
) -> None:
    """Upload what changed locally."""
    with open_workspace(where) as ws, ConsoleReporter(verbose, quiet, as_json) as reporter:
        result = ws.engine(reporter, allow_rollback).push(ws.selection(types), dry_run)
    _finish(result, as_json, quiet, verbose, dry_run)


def _pull_like(name: str, summary: str) -> None:
    """`pull` and `sync` take the same options and differ only in the engine call."""

    @main.command(name, help=summary)
    @type_argument
    @location_options
    @strategy_option
    @dry_run_option
    @output_options
    @click.option(
        "--all", "every_session", is_flag=True, help="Also fetch sessions older than the window."
    )
    def command(
        where: Locations,
        types: tuple[str, ...],
        strategy: str,
        dry_run: bool,
        as_json: bool,
        verbose: bool,
        quiet: bool,
        allow_rollback: bool,
        every_session: bool,
    ) -> None:
        with open_workspace(where) as ws, ConsoleReporter(verbose, quiet, as_json) as reporter:
            engine = ws.engine(reporter, allow_rollback)
            if every_session:
                engine.sessions.window = None
            run = engine.pull if name == "pull" else engine.sync
            result = run(ws.selection(types), strategy, dry_run, complete=not types)
        _finish(result, as_json, quiet, verbose, dry_run)


_pull_like("pull", "Download what changed on other machines.")
_pull_like("sync", "Pull, then push.")


@main.command()
@location_options
@json_option
@click.option("--allow-rollback", is_flag=True, help="Accept a remote older than one seen before.")
def status(where: Locations, as_json: bool, allow_rollback: bool) -> None:
    """Show what push and pull would do, and unresolved conflicts."""
    from claude_sync import catalog

    with open_workspace(where) as ws:
        selected = ws.selection()
        engine = ws.engine(None, allow_rollback)
        result, head = engine.status(selected)
        remote_only = catalog.remote_only(engine, engine.head(), set(result.pulled))
    missing = plugins.missing(where.claude_dir)
    links = linked_tops(where.claude_dir)
    if as_json:
        body = result.to_json() | {
            "remote": redact(ws.settings.remote),
            "head": head,
            "remote_only_sessions": remote_only,
            "missing_plugins": [m.__dict__ | {"command": m.shell} for m in missing],
            "linked": links,
        }
        click.echo(json.dumps(body))
    else:
        _print_status(ws.settings.remote, head, links, result, remote_only, missing)
    if result.conflicts:
        sys.exit(EXIT_CONFLICTS)  # as sync would: a script sees that something waits


def _print_status(
    remote: str,
    head: int | None,
    links: dict[str, str],
    result: Result,
    remote_only: int,
    missing: list[plugins.Missing],
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
            f"{_count(remote_only, 'session')} {'is' if remote_only == 1 else 'are'} only in "
            "the repository "
            "(`claude-sync sessions`; they arrive with `resume` or `pull --all`)",
            markup=False,
        )
    _print_plan(result, "to push:", "to remove:", "to pull:", "will merge:", "to delete:")
    _print_conflicts(result.conflicts, verbose=False)
    _print_missing_plugins(missing)
    if not (result.pushed or result.pulled or result.merged or result.deleted or result.conflicts):
        out.print(_summary(result))


def _print_missing_plugins(missing: list[plugins.Missing]) -> None:
    for item in missing:
        out.print(f"missing {item.kind} {item.name}: {item.shell}", markup=False)
    if missing:
        out.print("`claude-sync plugins --install` runs these commands.", markup=False)


@main.command("plugins")
@location_options
@click.option("--install", "run", is_flag=True, help="Run the `claude plugin` commands listed.")
def plugins_command(where: Locations, run: bool) -> None:
    """Plugins and marketplaces the synced manifests list but this machine lacks."""
    missing = plugins.missing(where.claude_dir)
    if not missing:
        out.print("Every plugin and marketplace listed is installed here.")
        return
    if not run:
        _print_missing_plugins(missing)
        return
    failed = 0
    for item, code, last in plugins.install_missing(where.claude_dir):
        mark = "✓" if code == 0 else "✗"
        failed += code != 0
        out.print(f"{mark} {item.shell}" + (f": {last}" if code else ""), markup=False)
    if failed:
        raise SyncError(f"{failed} `claude plugin` commands failed")


@main.command()
@location_options
@click.option("--here", is_flag=True, help="Only sessions of the project in this folder.")
@click.option(
    "--project", type=click.Path(file_okay=False), help="Only sessions of this project folder."
)
@click.option("--device", help="Only sessions last pushed by this machine.")
@click.option("--grep", "text", help="Only sessions whose title (or id) holds TEXT.")
@click.option("--content", is_flag=True, help="With --grep: search the transcripts too.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list on stdout.")
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
        click.echo(json.dumps([s.to_json() for s in found]))
        return
    # One line a session, never wrapped: ids are for copying into `resume`.
    for s in found:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated))
        here_mark = "here  " if s.local else "remote"
        # Titles and device names come from the repository: one clean line each.
        fields = (s.id, when, here_mark, s.device or "-", s.project, s.title)
        click.echo("  ".join(clean_value(str(f)) for f in fields))
    if not found:
        out.print("No sessions found.")


@main.command()
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
            ws.settings.moved_sessions[chosen.id] = move
            config.save_settings(where.config_dir, ws.settings)

        directory = resuming.place(engine, head, chosen, Path(cwd) if cwd else None, remember_move)
    if print_only:
        click.echo(resuming.command(directory, chosen.id))
        return
    resuming.run_claude(directory, chosen.id)


def _choose_session(candidates: list[Any]) -> Any:
    for n, s in enumerate(candidates, 1):
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated))
        out.print(f"{n:>3}. {when} {s.id} {clean_value(s.title)}", markup=False)
    number = click.prompt("Which session", type=click.IntRange(1, len(candidates)))
    return candidates[number - 1]


@main.command("config")
@click.argument("key", type=click.Choice(["sessions.window"]))
@click.argument("value", required=False)
@location_options
def config_command(where: Locations, key: str, value: str | None) -> None:
    """Show or set a setting of this machine: sessions.window (`90d`, `all`, `default`)."""
    from claude_sync import session_policy

    settings = config.load_settings(where.config_dir)
    if value is not None:
        value = value.strip().lower()
        if value != "default":
            session_policy.parse_window(value)
        settings.session_window = None if value == "default" else value
        config.save_settings(where.config_dir, settings)
    days = session_policy.cleanup_days(where.claude_dir)
    shown = settings.session_window or f"{days:g}d (default: Claude Code's cleanupPeriodDays)"
    out.print(f"{key} = {shown}", markup=False)


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@location_options
def where(where: Locations, directory: str | None) -> None:
    """Show which sessions `claude --resume` finds in DIRECTORY (default: here) after a pull."""
    with open_workspace(where) as ws:
        folder, logical, local, remote = ws.engine().where(Path(directory or os.getcwd()))
    out.print(f"Claude Code folder: projects/{folder}", markup=False)
    out.print(f"Stored as:          projects/{logical}", markup=False)
    out.print(f"Sessions here:      {len(local)}", markup=False)
    out.print(f"Sessions after a pull: {len(set(local) | set(remote))}", markup=False)
    for session in sorted(set(remote) - set(local)):
        out.print(f"  + {session} (from the remote)", markup=False)


@main.command("map")
@click.argument("directory", type=click.Path(file_okay=False))
@click.argument("label", required=False)
@location_options
@click.option("--remove", is_flag=True, help="Remove the map of DIRECTORY.")
def map_command(where: Locations, directory: str, label: str | None, remove: bool) -> None:
    """Map a project folder to a LABEL shared with machines that keep it elsewhere."""
    settings = config.load_settings(where.config_dir)
    key = str(Path(directory).expanduser().absolute())
    if remove:
        settings.path_maps.pop(key, None)
    elif not label or not LABEL.fullmatch(label):
        raise ConfigError("give a LABEL of letters and digits, e.g. `claude-sync map ~/src work`")
    else:
        settings.path_maps[key] = label
    config.save_settings(where.config_dir, settings)
    for folder, name in sorted(settings.path_maps.items()):
        out.print(f"{folder} -> {name}", markup=False)


@main.command()
@location_options
@click.option(
    "--project",
    type=click.Path(file_okay=False),
    is_flag=False,
    flag_value=".",
    default=None,
    help="Use PROJECT/.claude/settings.json (default: this folder).",
)
@click.option(
    "--git-hooks",
    "git_repo",
    type=click.Path(file_okay=False),
    is_flag=False,
    flag_value=".",
    default=None,
    help="Install git hooks in a repository instead.",
)
@click.option("--uninstall", is_flag=True, help="Remove exactly what install added.")
@click.option(
    "--plugin",
    "use_plugin",
    is_flag=True,
    help="Use the claude-sync Claude Code plugin instead: remove the settings.json hooks.",
)
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Longest a hook holds Claude Code up, in seconds.",
)
def install(
    where: Locations,
    project: str | None,
    git_repo: str | None,
    uninstall: bool,
    use_plugin: bool,
    timeout: float,
) -> None:
    """Sync automatically: pull when a Claude Code session starts, push when it ends."""
    if git_repo is not None:
        names = integration.install_git_hooks(Path(git_repo), uninstall)
        verb = "Removed" if uninstall else "Installed"
        out.print(f"{verb} git hooks: {', '.join(names) or 'none'}", markup=False)
        return
    if use_plugin:
        settings = where.claude_dir / "settings.json"
        if integration.install_claude_hooks(settings, timeout, uninstall=True):
            out.print(f"Hooks removed from {settings}: the plugin runs them now", markup=False)
        pid = plugins.self_plugin(where.claude_dir)
        if pid:
            out.print(f"The claude-sync plugin is installed ({pid}).", markup=False)
        else:
            out.print("Install the plugin with:", markup=False)
            out.print(f"  claude plugin marketplace add {plugins.marketplace_hint()}", markup=False)
            out.print("  claude plugin install claude-sync@claude-sync", markup=False)
        return
    if not uninstall:
        integration.refuse_with_plugin(where.claude_dir)
    target = (Path(project) / ".claude" if project else where.claude_dir) / "settings.json"
    changed = integration.install_claude_hooks(target, timeout, uninstall)
    state = "removed from" if uninstall else "installed in"
    out.print(
        f"Hooks {state} {target}" if changed else f"Nothing to change in {target}", markup=False
    )


@main.command(hidden=True)
@click.argument("event", type=click.Choice(list(integration.EVENTS.values())))
@click.option("--timeout", type=float, default=10.0)
@click.option("--plugin", "from_plugin", is_flag=True, hidden=True)
@location_options
def hook(where: Locations, event: str, timeout: float, from_plugin: bool) -> None:
    """Run by Claude Code's hooks: syncs in the background, never fails or holds it up."""
    hooks.run_hook(where, event, timeout, from_plugin)


@main.command("hook-worker", hidden=True)
@click.argument("event", type=click.Choice(list(integration.EVENTS.values())))
@location_options
def hook_worker(where: Locations, event: str) -> None:
    hooks.work(where, event, sys.stdin.read())


@main.command()
@location_options
@click.option(
    "--debounce",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds of quiet after a change before pushing.",
)
@click.option(
    "--interval", type=float, default=300.0, show_default=True, help="Seconds between pulls."
)
def watch(where: Locations, debounce: float, interval: float) -> None:
    """Stay in the foreground: push soon after changes, pull every --interval seconds."""
    settings = config.load_settings(where.config_dir)
    mapper = PathMapper(Path.home(), settings.path_maps, moved=settings.moved_sessions)

    def run(action: str) -> Callable[[], None]:
        def go() -> None:
            try:
                with open_workspace(where) as ws, ConsoleReporter(True, False, False) as reporter:
                    engine = ws.engine(reporter)
                    sel = ws.selection()
                    result = engine.pull(sel) if action == "pull" else engine.push(sel)
                if result.pushed or result.pulled or result.conflicts:
                    out.print(f"{time.strftime('%H:%M:%S')} {_summary(result)}", markup=False)
                for path in result.unavailable:
                    err.print(f"warning: {path} could not be downloaded", markup=False)
            except SyncError as exc:
                err.print(f"warning: {action} failed: {exc}", markup=False)

        return go

    def ready() -> None:
        out.print(f"Watching {where.claude_dir} (Ctrl-C to stop)", markup=False)

    from claude_sync import watcher

    watcher.watch(where.claude_dir, mapper, run("push"), run("pull"), debounce, interval, ready)
    out.print("Stopped.")


@main.command()
@location_options
@json_option
def conflicts(where: Locations, as_json: bool) -> None:
    """List the conflicts left unresolved by earlier pulls."""
    with open_workspace(where) as ws:
        found = ws.state.conflicts()
    if as_json:
        click.echo(json.dumps({"conflicts": sorted(found), "details": found}))
        return
    if not found:
        out.print("No unresolved conflicts.")
    for path, detail in sorted(found.items()):
        device = clean_value(str(detail.get("remote_device") or ""))
        held, keys = detail.get("held"), detail.get("keys")
        if isinstance(held, list):
            out.print(_held_line(path, device, held), markup=False)
        if isinstance(keys, list):
            when = _when(detail.get("remote_time"))
            out.print(_keys_line(path, device, keys, when), markup=False)
        if isinstance(held, list) or isinstance(keys, list):
            continue
        copy = detail.get("copy")
        beside = f" (remote version in {copy})" if copy else ""
        when = _when(detail.get("remote_time"))
        out.print(f"{path}: changed here and on {device}{when}{beside}", markup=False)


@main.command()
@click.argument("path")
@click.option(
    "--take",
    type=click.Choice(["local", "remote", "both"]),
    required=True,
    help="Which version wins (both: keep yours, theirs stays beside it).",
)
@location_options
@output_options
def resolve(
    where: Locations,
    path: str,
    take: str,
    as_json: bool,
    verbose: bool,
    quiet: bool,
    allow_rollback: bool,
) -> None:
    """Settle one conflict, then push the result."""
    with open_workspace(where) as ws, ConsoleReporter(verbose, quiet, as_json) as reporter:
        if path not in ws.state.conflicts():
            raise ConfigError(f"{path} has no unresolved conflict (see `claude-sync conflicts`)")
        engine = ws.engine(reporter, allow_rollback)
        # Taking the remote version is the user's consent to its settings that run code.
        engine.trust_settings = engine.trust_settings or take == "remote"
        local_path = engine.mapper.to_local(path)
        sel = replace(ws.selection(), only=(local_path,))
        result = engine.sync(sel, take, dry_run=False, complete=False)
        if take != "both" and not result.conflicts:
            for copy in engine.local_path(path).parent.glob(
                f"{engine.local_path(path).name}{CONFLICT_MARKER}-*"
            ):
                copy.unlink()
    _finish(result, as_json, quiet, verbose, dry_run=False)


@main.command("log")
@location_options
@json_option
def log_command(where: Locations, as_json: bool) -> None:
    """List snapshots: sequence, device, time, changes."""
    from claude_sync import maintenance

    with open_workspace(where) as ws:
        entries = maintenance.log(ws.engine())
    if as_json:
        click.echo(json.dumps({"snapshots": [e.__dict__ for e in entries]}))
        return
    table = _table("snapshot", "device", "time", "files", "added", "changed", "removed")
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time))
        table.add_row(*map(str, (e.seq, e.device, when, e.files, e.added, e.changed, e.removed)))
    out.print(table)


@main.command("devices")
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
    if as_json:
        from claude_sync.catalog import iso

        rows = [
            {"device": d, "snapshots": n, "last_push": iso(last), "this_machine": d == me}
            for d, (n, last) in sorted(seen.items(), key=lambda d: -d[1][1])
        ]
        click.echo(json.dumps({"devices": rows}))
        return
    table = _table("device", "snapshots", "last push")
    for device, (count, last) in sorted(seen.items(), key=lambda d: -d[1][1]):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last))
        table.add_row(device + (" (this machine)" if device == me else ""), str(count), when)
    out.print(table)


@main.command()
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
        result = maintenance.restore(
            engine,
            ws.selection(),
            seq,
            list(paths),
            Path(target) if target else None,
            force,
        )
        if target is None:
            # The restored version is a new change: push it, so other machines get it too.
            only = tuple(engine.mapper.to_local(p) for p in result.pulled)
            pushed = engine.push(replace(ws.selection(), only=only))
            result.pushed, result.uploaded_bytes = pushed.pushed, pushed.uploaded_bytes
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        for warning in result.warnings:
            err.print(f"warning: {warning}", markup=False)
        restored = _count(len(result.pulled), "file")
        tail = f"; pushed {_count(len(result.pushed), 'file')}" if target is None else ""
        out.print(f"Restored {restored} from snapshot {seq}{tail}.", markup=False)


@main.command()
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
            f"Would remove {len(report.snapshots_removed)} snapshots and mark "
            f"{report.packs_marked} unused packs (marked packs are deleted by a later prune).",
            markup=False,
        )
        return
    out.print(
        f"Removed {len(report.snapshots_removed)} snapshots; marked {report.packs_marked} "
        f"unused packs; deleted {report.packs_deleted} packs "
        f"({_size(report.bytes_freed)} freed).",
        markup=False,
    )


@main.command()
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
        raise SyncError(f"the repository has {len(problems)} problems")
    if read_data:
        out.print("No problems found.")
    else:
        out.print(
            "No problems found in the indexes and snapshots (the data itself was not read: "
            "run with --read-data to check it)."
        )


@main.command()
@location_options
def upgrade(where: Locations) -> None:
    """Move the repository to the current format (older claude-sync then refuses it)."""
    from claude_sync.repository import REPO_FORMAT

    with open_workspace(where) as ws:
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


@main.command()
@location_options
def repair(where: Locations) -> None:
    """Rebuild the indexes from the packs, and upload again from this machine's files the
    data snapshots need that the repository lost."""
    from claude_sync import maintenance

    with open_workspace(where) as ws:
        report = maintenance.repair(ws.engine())
    out.print(
        f"Read {report.packs_checked} packs: {report.packs_damaged} damaged (no longer "
        f"indexed). Indexed {report.packs_indexed} packs no index named; uploaded "
        f"{report.blobs_restored} missing or damaged blobs again.",
        markup=False,
    )
    if report.incomplete:
        raise SyncError(
            f"{len(report.incomplete)} snapshots still miss data this machine does not have "
            f"(e.g. snapshot {report.incomplete[-1]}): run `claude-sync repair` on the machine "
            "that pushed it"
        )


def _mapper(where: Locations) -> PathMapper:
    if not config.is_set_up(where.config_dir):
        return PathMapper(Path.home())
    settings = config.load_settings(where.config_dir)
    return PathMapper(Path.home(), settings.path_maps, moved=settings.moved_sessions)


def _selection(where: Locations) -> Selection:
    """What this machine syncs, for commands that need no repository."""
    if not config.is_set_up(where.config_dir):
        return select([], {})
    s = config.load_settings(where.config_dir)
    return select([], s.types, tuple(s.include), tuple(s.exclude))


@main.command("export")
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


@main.command("import")
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


@main.command()
@location_options
@json_option
def doctor(where: Locations, as_json: bool) -> None:
    """Check the set-up end to end and explain how to fix what is wrong."""
    from claude_sync import doctor as doctor_checks

    checks = doctor_checks.run(where)
    if as_json:
        click.echo(
            json.dumps({"ok": all(c.ok for c in checks), "checks": [c.__dict__ for c in checks]})
        )
    else:
        for c in checks:
            mark = "✓" if c.ok else "✗"
            out.print(f"{mark} {c.name}: {c.detail}", markup=False)
            if not c.ok and c.fix:
                out.print(f"    fix: {c.fix}", markup=False)
    if not all(c.ok for c in checks):
        sys.exit(EXIT_FAILED)


@main.command("types")
@location_options
@click.option(
    "--enable",
    multiple=True,
    type=click.Choice([t.name for t in TYPES]),
    help="Sync this type from now on.",
)
@click.option(
    "--disable",
    multiple=True,
    type=click.Choice([t.name for t in TYPES]),
    help="Stop syncing this type (nothing is deleted).",
)
@click.option("--exclude", multiple=True, metavar="GLOB", help="Never sync paths like this.")
@click.option("--include", multiple=True, metavar="GLOB", help="Sync only paths like this.")
@click.option("--clear-globs", is_flag=True, help="Forget all include and exclude patterns.")
@json_option
def types_command(
    where: Locations,
    enable: tuple[str, ...],
    disable: tuple[str, ...],
    exclude: tuple[str, ...],
    include: tuple[str, ...],
    clear_globs: bool,
    as_json: bool,
) -> None:
    """List the resource types, and choose what this machine syncs."""
    enabled: dict[str, bool] = {}
    settings = None
    if config.is_set_up(where.config_dir):
        settings = config.load_settings(where.config_dir)
        if enable or disable or exclude or include or clear_globs:
            settings.types |= {n: True for n in enable} | {n: False for n in disable}
            if clear_globs:
                settings.include, settings.exclude = [], []
            settings.include += [g for g in include if g not in settings.include]
            settings.exclude += [g for g in exclude if g not in settings.exclude]
            config.save_settings(where.config_dir, settings)
        enabled = settings.types
    elif enable or disable or exclude or include or clear_globs:
        raise ConfigError("this machine is not set up: run `claude-sync init` first")
    rows = [(t, enabled.get(t.name, t.default)) for t in TYPES]
    if as_json:
        body = {
            "types": [
                {"name": t.name, "synced": on, "opt_in": not t.default, "what": t.description}
                for t, on in rows
            ],
            "include": settings.include if settings else [],
            "exclude": settings.exclude if settings else [],
        }
        click.echo(json.dumps(body))
        return
    if settings:
        for glob in settings.include:
            out.print(f"include: {glob}", markup=False)
        for glob in settings.exclude:
            out.print(f"exclude: {glob}", markup=False)
    table = _table("type", "synced", "what")
    for rtype, on in rows:
        off = "no (opt-in)" if not rtype.default else "no"
        table.add_row(rtype.name, "yes" if on else off, rtype.description)
    out.print(table)


@main.group()
def key() -> None:
    """Manage the repository key."""


@key.command("add")
@location_options
@click.option("--label", default="", help="Who or what the key is for (stored encrypted).")
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False))
def key_add(where: Locations, label: str, new_passphrase_file: str | None) -> None:
    """Add a passphrase that opens the repository (one per machine or person)."""
    passphrase = read_passphrase(new_passphrase_file, confirm=True, new=True)
    with open_workspace(where) as ws:
        name, _ = ws.repo.add_key(passphrase, label)
    out.print(f"Added key {name.rsplit('/', 1)[-1]}", markup=False)


@key.command("list")
@location_options
@json_option
def key_list(where: Locations, as_json: bool) -> None:
    """List the repository's keys."""
    with open_workspace(where) as ws:
        keys = ws.repo.list_keys()
    if as_json:
        from claude_sync.catalog import iso

        rows = [
            {"id": key_id, "label": label, "created": iso(created) if created else None}
            for key_id, label, created in keys
        ]
        click.echo(json.dumps({"keys": rows}))
        return
    table = _table("id", "label", "created")
    for key_id, label, created in keys:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if created else ""
        table.add_row(key_id, label, when)
    out.print(table)


@key.command("remove")
@click.argument("key_id")
@click.option("--force", is_flag=True, help="Remove it even if this machine joined with it.")
@location_options
def key_remove(where: Locations, key_id: str, force: bool) -> None:
    """Remove a key: its passphrase no longer opens the repository."""
    with open_workspace(where) as ws:
        own = ws.repo.keys.identity is not None and ws.repo.keys.identity[0] == f"keys/{key_id}"
        if own and not force:
            # Every machine that joined with the same passphrase is cut off with it.
            raise ConfigError(
                f"this machine joined with key {key_id}: removing it cuts off this machine and "
                "every other one that joined with the same passphrase; add another key "
                "(`claude-sync key add`), join with it, or pass --force"
            )
        stale = ws.repo.remove_key(key_id)
    _warn_stale(stale)
    if own:
        err.print(
            "warning: this machine joined with that key: it keeps the current key epoch but "
            "will not receive the next; join again with another key (`claude-sync init --force`)",
            markup=False,
        )
    out.print(
        f"Removed key {key_id}: new data is sealed under a new key epoch it cannot open.",
        markup=False,
    )


def _warn_stale(stale: list[str]) -> None:
    for key_id in stale:
        err.print(
            f"warning: key {key_id} cannot receive the new key epoch and opens no new data "
            "(it predates key epochs, or no current key vouches for it): remove it and "
            "`claude-sync key add` a new one for its owner",
            markup=False,
        )


@key.command("passwd")
@location_options
@click.option("--passphrase-file", type=click.Path(dir_okay=False))
@click.option("--new-passphrase-file", type=click.Path(dir_okay=False))
def key_passwd(
    where: Locations, passphrase_file: str | None, new_passphrase_file: str | None
) -> None:
    """Change a passphrase; the data is not re-encrypted."""
    old = read_passphrase(passphrase_file, confirm=False)
    with open_workspace(where) as ws:
        ws.repo.key_opened_by(old)
        new = read_passphrase(new_passphrase_file, confirm=True, new=True)
        stale = ws.repo.change_passphrase(old, new)
    _warn_stale(stale)
    out.print(
        "Passphrase changed. Other machines that joined with the old passphrase must join "
        "again with the new one (`claude-sync init --force`)."
    )


@key.command("export")
@location_options
def key_export(where: Locations) -> None:
    """Print a new recovery key that opens the repository without the passphrase."""
    with open_workspace(where) as ws:
        text = ws.repo.add_recovery_key()
    out.print(text, markup=False)
    err.print("Anyone with this key can read your synced data: store it like a password.")


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


def _add_examples() -> None:
    """Each command's help ends with an example or two (and what TYPE means, where it applies)."""
    for name, lines in EXAMPLES.items():
        command = main.commands[name]
        takes_types = any(p.name == "types" for p in command.params)
        extra = f"\n\n{TYPES_HELP}" if takes_types and name != "types" else ""
        block = "\n".join(f"  {line}" for line in lines)
        command.help = f"{command.help or ''}{extra}\n\n\b\nExamples:\n{block}"


_add_examples()
