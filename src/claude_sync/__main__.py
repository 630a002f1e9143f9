"""`python -m claude_sync`, and the `claude-sync` command's entry point."""

import sys

from claude_sync.interrupts import is_interrupt


def run() -> None:
    """The command line, with a Ctrl-C during its start-up (loading the program takes a
    fifth of a second) reported as any other: one line and exit 1, no traceback."""
    try:
        from claude_sync.cli import main
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        sys.stderr.write("error: interrupted\n")
        sys.exit(1)
    main()


if __name__ == "__main__":
    run()
