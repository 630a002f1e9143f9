"""What the command line prints: consoles, tables, progress bars, results and conflicts."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from claude_sync import plugins, settings_trust
from claude_sync.errors import EXIT_CONFLICTS, SyncError
from claude_sync.outcome import Reporter, Result
from claude_sync.planner import Conflict
from claude_sync.terminal import clean, clean_value, redact


class _LazyConsole:
    """A Rich console made on first use: importing Rich costs more than a no-op push.
    Text printed through it loses control characters and credentials in URLs: much of it
    (paths, device names, errors quoting them) came from the repository or a remote."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Any = None

    def print(self, *objects: Any, **kwargs: Any) -> None:
        with _writing():
            self._print(*objects, **kwargs)

    def _print(self, *objects: Any, **kwargs: Any) -> None:
        safe = [clean(redact(o)) if isinstance(o, str) else o for o in objects]
        if (
            not _rich_in_use()
            and kwargs.keys() <= {"markup"}
            and all(isinstance(o, str) for o in safe)
        ):
            # Plain lines as they are (nothing printed is markup), and Rich left unloaded:
            # its import was a twentieth of a no-op push run by a hook. Flushed as Rich
            # does, so that a log taking both streams has them in order.
            stream = sys.stderr if self._stderr else sys.stdout
            stream.write(" ".join(safe) + "\n")
            stream.flush()
            return
        self.real.print(*safe, **kwargs)

    @property
    def real(self) -> Any:
        """The Rich console itself, for Rich objects that need one: they use it as a context
        manager, and special methods are never looked up through __getattr__."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
            # Rich exits 1 on a closed pipe; the command line says what that means.
            self._console.on_broken_pipe = _closed_pipe
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class OutputUnwritable(Exception):
    """What the command prints cannot be written (`> /dev/full`); the OSError is its
    argument. Not the disk of the data: a message of its own."""


@contextlib.contextmanager
def _writing() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:
        raise  # the reader went away: quiet (see the command line's handling)
    except OSError as exc:
        raise OutputUnwritable(exc) from None


def echo(line: str) -> None:
    """One plain line on stdout, as it is (ids, commands to copy)."""
    with _writing():
        click.echo(line)


def _rich_in_use() -> bool:
    """Whether either console is Rich's by now: a bar it draws takes over sys.stdout, and
    what is printed then must go through it."""
    return out._console is not None or err._console is not None


def _closed_pipe() -> None:
    raise BrokenPipeError


out = _LazyConsole(stderr=False)
err = _LazyConsole(stderr=True)


def table(*columns: str) -> Any:
    """A Rich table with these columns whose cells are always printed as plain text."""
    from rich.table import Table
    from rich.text import Text

    class SafeTable(Table):
        """Cells are plain text on one line: no markup, no control characters."""

        def add_row(self, *cells: Any, **kwargs: Any) -> None:
            super().add_row(*(Text(clean_value(str(c))) for c in cells), **kwargs)

    return SafeTable(*columns, box=None)


class _JsonOutput:
    """Whether this run was asked for JSON (`--json`), and whether it printed it yet: a
    command that fails still gives a script one JSON object, `{"error": …}`."""

    asked = False
    printed = False


json_output = _JsonOutput()


def note_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """The --json option's callback."""
    json_output.asked = json_output.asked or value
    return value


def print_json(body: object) -> None:
    """`--json` output: body as one line of JSON on stdout."""
    echo(json.dumps(body))
    json_output.printed = True


def local_time(seconds: float, *, with_seconds: bool = False, date: bool = True) -> str:
    """A moment on this machine's clock: `2026-11-30 14:02`, `…14:02:09` with seconds (where
    moments close together must be told apart), `14:02:09` without the date."""
    fmt = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if with_seconds else "%H:%M")
    return time.strftime(fmt, time.localtime(seconds))


def count(n: int, noun: str) -> str:
    """`1 file`, `2 files`: n with noun, plural unless n is 1."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def size(n: int) -> str:
    """n bytes for people: `512 B`, `1.5 KiB`, ... up to GiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


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
        """On a terminal, the user's answer to the conflict prompt; otherwise None."""
        if not self.interactive:
            return None
        from claude_sync import prompt

        return prompt.ask(conflict, local, remote, base)

    def trust(self, changes: dict[str, dict[str, tuple[Any, Any]]], device: str, seq: int) -> bool:
        """On a terminal, the user's consent to the changes; otherwise no."""
        if not self.interactive:
            return False
        from claude_sync import prompt

        return prompt.ask_trust(changes, device, seq)

    def action(self, verb: str, path: str) -> None:
        """With --verbose, one line per action: the verb right-aligned, then the path."""
        if self.verbose:
            out.print(f"{verb:>8} {path}", markup=False)

    def progress(self, description: str, total: int) -> Callable[[int], None]:
        """A bar on stderr for transfers of 4 MiB or more on a terminal; else nothing."""
        if not self.bars or total < 4 * 1024 * 1024:
            return lambda advance: None
        from claude_sync.cli.transfer_bar import transfer_bar

        bar = transfer_bar(err.real)
        task = bar.add_task(description, total=total)
        self._drawn.append(bar)
        bar.start()
        left = total

        def advance(n: int) -> None:
            # Not past its total: a file synced in another form than it has here (settings
            # or the prompt history, their home paths mapped) can be longer than counted.
            nonlocal left
            n = min(n, left)
            left -= n
            bar.advance(task, n)
            if not left:
                bar.stop()

        return advance


#: what a push with nothing to send can say: it does not look at the repository, so it
#: cannot say everything is up to date
NOTHING_TO_PUSH = "Nothing to push: nothing changed here since the last sync."


def finish(
    result: Result,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    dry_run: bool,
    idle: str = "Everything is up to date.",
) -> None:
    """Print a push, pull or sync's result (idle: the line when it did nothing); exit
    non-zero if it left something undone."""
    failed = (
        f"{count(len(result.unavailable), 'file')} could not be downloaded (the warnings "
        "say why): for data damaged or missing in the repository, run `claude-sync "
        "repair` on a machine that has them (`verify --read-data` lists the damage), "
        "then pull again"
        if result.unavailable
        else None
    )
    if as_json:
        error = {"error": failed, "exit_code": SyncError.exit_code} if failed else {}
        print_json(result.to_json() | ({"dry_run": True} if dry_run else {}) | error)
    else:
        # Quiet, a failure still names what failed: its error line points to the warnings.
        for warning in result.warnings if not quiet or failed else ():
            err.print(f"warning: {warning}", markup=False)
    if not as_json and not quiet:
        if dry_run:
            print_plan(
                result,
                "would push",
                "would remove everywhere",
                "would pull",
                "would merge",
                "would delete",
            )
        print_conflicts(result.conflicts, verbose)
        out.print(summary(result, dry_run, idle), markup=False)
    if failed:
        raise SyncError(failed)
    if result.conflicts:
        sys.exit(EXIT_CONFLICTS)


def print_plan(result: Result, *verbs: str) -> None:
    """One marked line per path: what push (upload, removal), pull, a merge and a deletion
    would do."""
    uploads = [p for p in result.pushed if p not in result.removed]
    lists = (uploads, result.removed, result.pulled, result.merged, result.deleted)
    width = max(map(len, verbs))
    for verb, paths in zip(verbs, lists, strict=True):
        for path in paths:
            out.print(f"{verb:>{width}} {path}", markup=False)


def summary(result: Result, dry_run: bool = False, idle: str = "Everything is up to date.") -> str:
    """The one-line summary of a push, pull or sync (idle: when it did nothing); never
    "up to date" while anything was skipped."""
    # Deletions pushed are reported as such, not as files sent.
    uploads = len(result.pushed) - len(result.removed)
    sent, received = size(result.uploaded_bytes), size(result.downloaded_bytes)
    if dry_run:
        pulls, lost = len(result.pulled) + len(result.merged), len(result.unavailable)
        parts = [
            *_counted(uploads, "file", f"would push {{}} (≈{sent})"),
            *_counted(len(result.removed), "deleted file", "would remove {} everywhere"),
            *_counted(pulls, "file", f"would pull {{}} (≈{received})"),
            *_counted(len(result.deleted), "file", "would delete {}"),
            *_counted(len(result.conflicts), "conflict", "{} would be left"),
            *_counted(lost, "file", "{} cannot be downloaded (damaged data: see the warnings)"),
        ]
        return ", ".join(parts) if parts else f"Nothing to do. {idle}"
    parts = [
        *_counted(uploads, "file", f"pushed {{}} ({sent} sent)"),
        *_counted(len(result.removed), "deleted file", "removed {} from every machine"),
    ]
    if result.pulled or result.deleted:
        parts.append(f"pulled {count(len(result.pulled), 'file')} ({received} received)")
    parts += _counted(len(result.merged), "file", "merged {}")
    if result.deleted:
        parts.append(f"deleted {len(result.deleted)}")
    parts += _counted(len(result.conflicts), "conflict", "{} left unresolved")
    if parts:
        return ", ".join(parts)
    if result.skipped:
        # Not "up to date": what was skipped (see the warnings) has not been synced.
        return f"{count(len(result.skipped), 'file')} skipped this time; nothing else to do."
    return idle


def _counted(n: int, noun: str, text: str) -> list[str]:
    """text with `{}` as n of noun (see count), or nothing when n is 0."""
    return [text.format(count(n, noun))] if n else []


def held_line(path: str, device: str, held: list[str], added: bool = False) -> str:
    """How a change to what runs code, held back, is reported, with the commands that
    settle it (added: the file is not here, and keeping "yours" removes it everywhere)."""
    who = clean_value(device) or "another machine"
    parts = clean_value(", ".join(held))
    if added:
        return (
            f"{path}: {who} added it, with code that runs ({parts}); held back: `claude-sync "
            f"resolve {path} --take remote` adds it here, `--take local` removes it "
            f"everywhere, `claude-sync types --exclude '{path}'` keeps it off this machine"
        )
    what = "settings that run code" if path == settings_trust.PATH else "the code it runs"
    return (
        f"{path}: {who} changed {what} ({parts}); held back: `claude-sync resolve {path} "
        "--take remote` applies them, `--take local` keeps yours"
    )


def keys_line(path: str, device: str, keys: list[str], when: str) -> str:
    """How a JSON file merged but for some keys is reported, with the commands that
    settle them."""
    return (
        f"{path}: {clean_value(', '.join(keys))} changed here and on "
        f"{clean_value(device) or 'another machine'}{when}; the other keys merged: "
        f"`claude-sync resolve {path} --take remote` or `--take local` settles these"
    )


def how_changed(local_sha256: object, remote_sha256: object, device: str) -> str:
    """`changed here and on ann-laptop`, or which side deleted it."""
    if local_sha256 is None:
        return f"deleted here and changed on {device}"
    if remote_sha256 is None:
        return f"changed here and deleted on {device}"
    return f"changed here and on {device}"


def changed_when(seconds: object) -> str:
    """` (2026-11-30 14:02)`: when the other machine made its change, if known."""
    if not isinstance(seconds, int | float) or seconds <= 0:
        return ""
    return f" ({local_time(seconds)})"


def print_conflicts(conflicts: list[Conflict], verbose: bool) -> None:
    """One `conflict:` line per conflict on stderr; with verbose, each side's hash and
    time too."""
    for c in conflicts:
        if c.held:
            line = held_line(c.path, c.remote_device, c.held, c.local_sha256 is None)
            err.print("conflict: " + line, markup=False)
        if c.keys:
            line = keys_line(c.path, c.remote_device, c.keys, changed_when(c.remote_time))
            err.print("conflict: " + line, markup=False)
        if c.held or c.keys:
            continue
        device = clean_value(c.remote_device) or "another machine"
        how = how_changed(c.local_sha256, c.remote_sha256, device)
        line = f"conflict: {c.path} {how}{changed_when(c.remote_time)}"
        if c.copy:
            line += f"; the remote version is saved as {c.copy}"
        err.print(line, markup=False)
        if verbose:
            when = (
                local_time(c.remote_time, with_seconds=True) if c.remote_time else "when: unknown"
            )
            mtime = (
                local_time(c.local_mtime_ns / 1e9, with_seconds=True) if c.local_mtime_ns else "-"
            )
            err.print(
                f"    local  sha256 {c.local_sha256 or '(deleted)'} on this machine, "
                f"modified {mtime}\n"
                f"    remote sha256 {c.remote_sha256 or '(deleted)'} from {device}, "
                f"snapshot {c.remote_seq}, {when}\n"
                f"    base   sha256 {c.base_sha256 or '(none)'}",
                markup=False,
            )


def print_missing_plugins(missing: list[plugins.Missing]) -> None:
    """Each plugin or marketplace missing here, with the command that installs it."""
    for item in missing:
        out.print(f"missing {item.kind} {item.name}: {item.shell}", markup=False)
    if missing:
        out.print("`claude-sync plugins --install` runs these commands.", markup=False)
