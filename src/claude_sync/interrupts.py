"""Whether an exception is a Ctrl-C in disguise."""


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
