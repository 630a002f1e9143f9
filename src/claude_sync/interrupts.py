"""Whether an exception is a Ctrl-C in disguise, and a Ctrl-C that Python would lose."""

import _signal  # (what `signal` wraps: this module is loaded before `enum` is)
import atexit
import sys

#: how long after a Ctrl-C Python could not raise it is raised again (seconds)
AGAIN_AFTER = 0.001


def is_interrupt(exc: BaseException | None) -> bool:
    """Whether exc is, or was raised because of, a KeyboardInterrupt. A Ctrl-C that lands
    while a class is being defined (a module loading) comes out of Python 3.11 as a
    RuntimeError caused by the KeyboardInterrupt: it is still the user's Ctrl-C."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def forget_uncaught() -> None:
    """Python (3.11 to 3.13 at least) marks a KeyboardInterrupt that came out of an `exec`
    of source text as never caught, even once it is, and a `python -m` program then ends
    by SIGINT at exit: status 130 after the "error: interrupted" of exit 1. Dataclasses
    define their methods so, and a Ctrl-C landed there in one start-up in seven. An `exec`
    that succeeds clears the mark."""
    exec("")


def raise_unraisable_again() -> None:
    """A Ctrl-C (or the SIGTERM a command takes for one) that lands where Python cannot
    raise it, a callback of the import machinery or a finalizer, was printed as "Exception
    ignored" and lost: the command ran on to exit 0. It is raised again a moment later
    (by a timer's signal: raised at once, it landed in this hook, which cannot raise it
    either); anything else goes to the hook that was there. Not once the program is
    exiting (its work done): Python no longer runs the timer's handler then, and the timer
    would end the process by SIGALRM."""
    previous = sys.unraisablehook

    def hook(unraisable: "sys.UnraisableHookArgs") -> None:
        exc_type = unraisable.exc_type
        if (
            exc_type is not None
            and issubclass(exc_type, KeyboardInterrupt)
            and hasattr(_signal, "setitimer")  # (not on Windows)
            and not sys.is_finalizing()
        ):
            try:
                _signal.signal(_signal.SIGALRM, _interrupt_again)
            except ValueError:  # not the main thread, which a Ctrl-C is raised in
                previous(unraisable)
                return
            _signal.setitimer(_signal.ITIMER_REAL, AGAIN_AFTER)
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    if hasattr(_signal, "setitimer"):
        # Registered first, so run last: after any exit callback a Ctrl-C could land in.
        atexit.register(_signal.setitimer, _signal.ITIMER_REAL, 0)


def interrupt(signum: int, frame: object) -> None:
    """A handler that stops the command as Ctrl-C does (for SIGTERM)."""
    raise KeyboardInterrupt


def _interrupt_again(signum: int, frame: object) -> None:
    _signal.signal(_signal.SIGALRM, _signal.SIG_DFL)
    raise KeyboardInterrupt
