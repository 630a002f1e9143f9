"""A Ctrl-C is reported as one, whatever Python wrapped it in."""

import sys
import types

import pytest

from claude_sync import __main__ as entry
from claude_sync.interrupts import is_interrupt


def _wrapped_interrupt() -> RuntimeError:
    """What Python 3.11 raises when Ctrl-C lands in a dataclass's field being set up."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as inner:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from inner
    except RuntimeError as outer:
        return outer


def test_an_interrupt_is_recognised_through_what_wrapped_it():
    assert is_interrupt(KeyboardInterrupt())
    assert is_interrupt(_wrapped_interrupt())
    assert not is_interrupt(RuntimeError("boom"))
    assert not is_interrupt(None)
    looped = ValueError()
    looped.__context__ = TypeError()
    looped.__context__.__context__ = looped
    assert not is_interrupt(looped)


class _LoadingCli(types.ModuleType):
    def __init__(self, error: BaseException) -> None:
        super().__init__("claude_sync.cli")
        self.error = error

    def __getattr__(self, name: str) -> object:
        raise self.error


def test_ctrl_c_while_a_class_loads_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "claude_sync.cli", _LoadingCli(_wrapped_interrupt()))
    with pytest.raises(SystemExit) as stop:
        entry.run()
    assert stop.value.code == 1
    assert capsys.readouterr().err == "error: interrupted\n"


def test_another_failure_while_loading_is_not_taken_for_one(monkeypatch):
    monkeypatch.setitem(sys.modules, "claude_sync.cli", _LoadingCli(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        entry.run()


def test_ctrl_c_while_a_command_loads_a_class_is_one_line(cli_inprocess, monkeypatch):
    """A lazy import in a command meets the same Ctrl-C: one line and exit 1."""
    from claude_sync.cli import sync

    def loading(*args, **kwargs):
        raise _wrapped_interrupt()

    monkeypatch.setattr(sync, "open_workspace", loading)
    outcome = cli_inprocess("status")
    assert (outcome.exit_code, outcome.stderr) == (1, "error: interrupted\n")
