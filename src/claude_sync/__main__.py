"""`python -m claude_sync`, and the `claude-sync` command's entry point."""

import _signal  # what `signal` wraps, without its `enum` to load first
import sys

from claude_sync.interrupts import (
    forget_uncaught,
    interrupt,
    is_interrupt,
    raise_unraisable_again,
)

_STOPS = {_signal.SIGINT, _signal.SIGTERM}


def run(upgrade: bool = False) -> None:
    """The command line (with `upgrade`, as `python -m`: after _upgrade_what_started_us),
    a Ctrl-C or SIGTERM during its start-up (loading the program takes a fifth of a
    second) reported as any other: one line and exit 1, no traceback."""
    raise_unraisable_again()
    # Both are held while the program loads and raised once it has: a Ctrl-C landing in
    # the import machinery's own callbacks was printed as "Exception ignored" and lost, the
    # command running on to exit 0. (No signal mask on Windows.)
    mask = getattr(_signal, "pthread_sigmask", None)
    held = mask(_signal.SIG_BLOCK, _STOPS) if mask else None
    try:
        try:
            # A `kill` (a logout, a service manager) stops a command as Ctrl-C does, from
            # its start: what it wrote is whole, and the next run goes on from there.
            _signal.signal(_signal.SIGTERM, interrupt)
            if upgrade:
                _upgrade_what_started_us()
            from claude_sync.cli import main
        finally:
            if mask:
                mask(_signal.SIG_SETMASK, held)
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        sys.stderr.write("error: interrupted\n")
        forget_uncaught()
        sys.exit(1)
    main()


def _upgrade_what_started_us() -> None:
    """A git hook an older claude-sync wrote runs `python -m claude_sync push -q` (or pull)
    without -P in the repository's folder, whose own `claude_sync` folder would be imported:
    when one runs, write it again with -P (errors ignored: it syncs all the same)."""
    if sys.flags.safe_path or sys.argv[1:] not in (["push", "-q"], ["pull", "-q"]):
        return
    import contextlib
    from pathlib import Path

    from claude_sync import hook_install
    from claude_sync.errors import SyncError

    with contextlib.suppress(OSError, SyncError):
        hook_install.upgrade_git_hooks(Path.cwd())


if __name__ == "__main__":
    run(upgrade=True)
