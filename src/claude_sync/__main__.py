"""`python -m claude_sync`, and the `claude-sync` command's entry point."""

import _signal  # what `signal` wraps, without its `enum` to load first
import sys

from claude_sync.interrupts import forget_uncaught, is_interrupt, raise_unraisable_again


def run() -> None:
    """The command line, with a Ctrl-C during its start-up (loading the program takes a
    fifth of a second) reported as any other: one line and exit 1, no traceback."""
    raise_unraisable_again()
    # A Ctrl-C is held while the program loads and raised once it has: one landing in the
    # import machinery's own callbacks was printed as "Exception ignored" and lost, the
    # command running on to exit 0. (No signal mask on Windows.)
    mask = getattr(_signal, "pthread_sigmask", None)
    held = mask(_signal.SIG_BLOCK, {_signal.SIGINT}) if mask else None
    try:
        try:
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
    _upgrade_what_started_us()
    run()
