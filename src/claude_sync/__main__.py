"""`python -m claude_sync`, and the `claude-sync` command's entry point."""

import sys


def run() -> None:
    """The command line, with a Ctrl-C during its start-up (loading the program takes a
    fifth of a second) reported as any other: one line and exit 1, no traceback."""
    try:
        from claude_sync.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(1)
    main()


if __name__ == "__main__":
    run()
