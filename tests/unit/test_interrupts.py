"""A Ctrl-C is reported as one, whatever Python wrapped it in."""

import signal
import subprocess
import sys
import threading
import time
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


class _InterruptedWhileLoading(types.ModuleType):
    """The program loading, a Ctrl-C (or another stop) arriving meanwhile."""

    loaded = False
    stop = signal.SIGINT

    def __getattr__(self, name: str) -> object:
        signal.pthread_kill(threading.get_ident(), self.stop)
        for _ in range(100_000):  # steps where a Ctrl-C not held would be raised
            pass
        type(self).loaded = True
        return lambda: None


@pytest.fixture
def handlers_kept(monkeypatch):
    """What run() sets up for a process, undone for the test run's."""
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)
    term = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, term)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="no signal masks here")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_the_program_loads_waits_until_it_has(
    monkeypatch, capsys, handlers_kept, stop
):
    """A Ctrl-C landing in the import machinery's callbacks was lost (the command ran on);
    a SIGTERM then ended the command by the signal, not with exit 1."""
    _InterruptedWhileLoading.stop = stop
    _InterruptedWhileLoading.loaded = False
    monkeypatch.setitem(sys.modules, "claude_sync.cli", _InterruptedWhileLoading("cli"))
    with pytest.raises(SystemExit) as stopped:
        entry.run()
    assert _InterruptedWhileLoading.loaded
    assert stopped.value.code == 1
    assert capsys.readouterr().err == "error: interrupted\n"


_LOST_IN_A_FINALIZER = """
from claude_sync import interrupts
interrupts.raise_unraisable_again()

class Finalized:
    def __del__(self):
        raise KeyboardInterrupt  # where Python can only print it

try:
    Finalized()
    for _ in range(1_000_000):
        pass
    print("ran on")
except KeyboardInterrupt:
    print("interrupted")
"""


_LANDING_AT_EXIT = """
import atexit, sys, time
from claude_sync import interrupts
interrupts.raise_unraisable_again()
atexit.register(time.sleep, 5)  # the work done, something left to finish at exit
print("ready", flush=True)
"""


def test_ctrl_c_at_exit_does_not_end_the_program_by_the_timer():
    """Re-raised by a timer during the exit, it ended the process by SIGALRM (142)."""
    at_exit = subprocess.Popen(
        [sys.executable, "-c", _LANDING_AT_EXIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert at_exit.stdout is not None
    assert at_exit.stdout.readline() == b"ready\n"
    time.sleep(0.5)
    at_exit.send_signal(signal.SIGINT)
    _, errors = at_exit.communicate(timeout=60)
    assert at_exit.returncode in (0, -signal.SIGINT), errors


def test_ctrl_c_where_python_cannot_raise_it_is_raised_at_the_next_step():
    ran = subprocess.run(
        [sys.executable, "-c", _LOST_IN_A_FINALIZER], capture_output=True, text=True, timeout=60
    )
    assert (ran.stdout, ran.stderr) == ("interrupted\n", "")


_CAUGHT_AFTER_AN_EXEC = """
from claude_sync import interrupts
try:
    exec("raise KeyboardInterrupt")  # as in a dataclass being defined
except KeyboardInterrupt:
    pass
interrupts.forget_uncaught()
raise SystemExit(1)
"""


def test_ctrl_c_caught_after_an_exec_exits_with_the_code_given(tmp_path):
    """`python -m` ended by SIGINT (130) after printing the exit-1 error."""
    (tmp_path / "caught.py").write_text(_CAUGHT_AFTER_AN_EXEC)
    ran = subprocess.run([sys.executable, "-m", "caught"], cwd=tmp_path, timeout=60)
    assert ran.returncode == 1


def test_ctrl_c_while_the_arguments_are_read_is_one_line(cli_inprocess, monkeypatch):
    """Click's own answer was a bare `Aborted!`."""
    from claude_sync.cli import App

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(App, "parse_args", interrupted)
    outcome = cli_inprocess("status")
    assert (outcome.exit_code, outcome.stderr) == (1, "error: interrupted\n")
