"""init, types, config, map, install, watch, plugins, doctor and the hooks: setting up this
machine and keeping it in sync."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from claude_sync import config, hook_install, hook_run, passphrase, plugins
from claude_sync.cli.options import Decorator, json_option, location_options
from claude_sync.cli.output import (
    ConsoleReporter,
    echo,
    err,
    finish,
    local_time,
    out,
    print_json,
    print_missing_plugins,
    summary,
    table,
)
from claude_sync.errors import EXIT_FAILED, ConfigError, SyncError
from claude_sync.pathmap import LABEL, PathMapper
from claude_sync.repository import RemoteOptions
from claude_sync.resources import TYPES, UPGRADE_FIRST, waiting_for_upgrade
from claude_sync.terminal import redact
from claude_sync.workspace import (
    AlreadySetUp,
    InitOutcome,
    Locations,
    current_setup,
    init,
    open_workspace,
)


@click.command("init")
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
        echo(passphrase.generate())
        return
    if remote is not None and use_default:
        raise ConfigError("give either REMOTE or --default, not both")
    if remote is None and force and not use_default and (current := current_setup(where)):
        remote = current.remote
        endpoint_url = endpoint_url or current.endpoint_url
        git_branch = git_branch or current.git_branch
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
        if not then_sync:
            # Nothing to do only if the repository is still there.
            try:
                with open_workspace(where) as ws:
                    ws.repo.check_config()
            except SyncError as gone:
                raise SyncError(
                    f"{exc}, but {gone}; if it was emptied, `claude-sync init REMOTE --create "
                    "--force` makes a new one from this machine's files"
                ) from None
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
        finish(result, as_json=False, quiet=False, verbose=False, dry_run=False)


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


@click.command("types")
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
    cached = config.load_repo_config(where.config_dir) if settings else None
    repo_format = cached.get("version") if isinstance(cached, dict) else None
    waiting = {
        t.name
        for t in (waiting_for_upgrade(TYPES, repo_format) if isinstance(repo_format, int) else ())
    }
    if as_json:
        body = {
            "types": [
                {
                    "name": t.name,
                    "synced": on,
                    "opt_in": not t.default,
                    "what": t.description,
                    "waits_for_upgrade": t.name in waiting,
                }
                for t, on in rows
            ],
            "include": settings.include if settings else [],
            "exclude": settings.exclude if settings else [],
        }
        print_json(body)
        return
    if settings:
        for glob in settings.include:
            out.print(f"include: {glob}", markup=False)
        for glob in settings.exclude:
            out.print(f"exclude: {glob}", markup=False)
    listed = table("type", "synced", "what")
    for rtype, on in rows:
        off = "no (opt-in)" if not rtype.default else "no"
        listed.add_row(rtype.name, "yes" if on else off, rtype.description)
    out.print(listed)
    for name in sorted(waiting & {t.name for t, on in rows if on}):
        out.print(UPGRADE_FIRST.format(name) + ".", markup=False)


@click.command("config")
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


@click.command("map")
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


def _folder_option(*decls: str, help: str) -> Decorator:
    """An option that names a folder, or this folder when it is given alone."""
    return click.option(
        *decls, type=click.Path(file_okay=False), is_flag=False, flag_value=".", help=help
    )


@click.command()
@location_options
@_folder_option("--project", help="Use PROJECT/.claude/settings.json (default: this folder).")
@_folder_option("--git-hooks", "git_repo", help="Install git hooks in a repository instead.")
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
        names = hook_install.install_git_hooks(Path(git_repo), uninstall)
        verb = "Removed" if uninstall else "Installed"
        out.print(f"{verb} git hooks: {', '.join(names) or 'none'}", markup=False)
        return
    default = config.default_config_dir()
    chosen = None if where.config_dir.resolve() == default.resolve() else where.config_dir
    if use_plugin and chosen is not None and not uninstall:
        # The plugin's hook command is fixed, and Claude Code runs it without the option
        # or (unless set where Claude Code starts) the variable: it would sync nothing.
        raise ConfigError(
            f"the plugin's hooks use the default config folder {default}, not {chosen}: "
            "use `claude-sync install`, whose hooks name it"
        )
    if use_plugin:
        settings = where.claude_dir / "settings.json"
        if hook_install.install_claude_hooks(settings, timeout, uninstall=True):
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
        hook_install.refuse_with_plugin(where.claude_dir)
    target = (Path(project) / ".claude" if project else where.claude_dir) / "settings.json"
    changed = hook_install.install_claude_hooks(target, timeout, uninstall, chosen)
    state = "removed from" if uninstall else "installed in"
    out.print(
        f"Hooks {state} {target}" if changed else f"Nothing to change in {target}", markup=False
    )


@click.command(hidden=True)
@click.argument("event", type=click.Choice(list(hook_install.EVENTS.values())))
@click.option("--timeout", type=float, default=10.0)
@click.option("--plugin", "from_plugin", is_flag=True, hidden=True)
@location_options
def hook(where: Locations, event: str, timeout: float, from_plugin: bool) -> None:
    """Run by Claude Code's hooks: syncs in the background, never fails or holds it up."""
    hook_run.run_hook(where, event, timeout, from_plugin)


@click.command("hook-worker", hidden=True)
@click.argument("event", type=click.Choice(list(hook_install.EVENTS.values())))
@location_options
def hook_worker(where: Locations, event: str) -> None:
    hook_run.work(where, event, sys.stdin.read())


@click.command()
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
    projects = str(where.claude_dir / "projects")
    mapper = PathMapper(
        Path.home(), settings.path_maps, moved=settings.moved_sessions, projects=projects
    )

    def run(action: str) -> Callable[[], None]:
        def go() -> None:
            try:
                with open_workspace(where) as ws, ConsoleReporter(True, False, False) as reporter:
                    engine = ws.engine(reporter)
                    sel = ws.selection()
                    result = engine.pull(sel) if action == "pull" else engine.push(sel)
                if result.pushed or result.pulled or result.conflicts:
                    now = local_time(time.time(), with_seconds=True, date=False)
                    out.print(f"{now} {summary(result)}", markup=False)
                for path in result.unavailable:
                    err.print(f"warning: {path} could not be downloaded", markup=False)
            except SyncError as exc:
                err.print(f"warning: {action} failed: {exc}", markup=False)

        return go

    def ready() -> None:
        out.print(f"Watching {where.claude_dir} (Ctrl-C to stop)", markup=False)

    from claude_sync import watcher

    def warn(message: str) -> None:
        err.print(f"warning: {message}", markup=False)

    watcher.watch(
        where.claude_dir, mapper, run("push"), run("pull"), debounce, interval, ready, warn
    )
    out.print("Stopped.")


@click.command("plugins")
@location_options
@click.option("--install", "run", is_flag=True, help="Run the `claude plugin` commands listed.")
def plugins_command(where: Locations, run: bool) -> None:
    """Plugins and marketplaces the synced manifests list but this machine lacks."""
    missing = plugins.missing(where.claude_dir)
    if not missing:
        out.print("Every plugin and marketplace listed is installed here.")
        return
    if not run:
        print_missing_plugins(missing)
        return
    failed = 0
    for item, code, last in plugins.install_missing(where.claude_dir):
        mark = "✓" if code == 0 else "✗"
        failed += code != 0
        out.print(f"{mark} {item.shell}" + (f": {last}" if code else ""), markup=False)
    if failed:
        raise SyncError(f"{failed} `claude plugin` commands failed")


@click.command()
@location_options
@json_option
def doctor(where: Locations, as_json: bool) -> None:
    """Check the set-up end to end and explain how to fix what is wrong."""
    from claude_sync import doctor as doctor_checks

    checks = doctor_checks.run(where)
    if as_json:
        print_json({"ok": all(c.ok for c in checks), "checks": [c.__dict__ for c in checks]})
    else:
        for c in checks:
            mark = "✓" if c.ok else "✗"
            out.print(f"{mark} {c.name}: {c.detail}", markup=False)
            if not c.ok and c.fix:
                out.print(f"    fix: {c.fix}", markup=False)
    if not all(c.ok for c in checks):
        sys.exit(EXIT_FAILED)


COMMANDS = (
    init_command,
    types_command,
    config_command,
    map_command,
    install,
    hook,
    hook_worker,
    watch,
    plugins_command,
    doctor,
)
