"""The allocator calls are made where glibc has them, and are nothing elsewhere."""

from __future__ import annotations

import ctypes
import sys

import pytest

from claude_sync import memory


@pytest.fixture(autouse=True)
def _fresh_lookup():
    memory._glibc.cache_clear()
    yield
    memory._glibc.cache_clear()


def test_on_this_linux_the_calls_reach_glibc():
    libc = memory._glibc()
    assert libc is not None
    memory.tune()
    memory.give_back()
    # mallopt answers 1 when it accepts the setting.
    assert libc.mallopt(memory.M_ARENA_MAX, memory.ARENAS) == 1
    assert libc.mallopt(memory.M_MMAP_THRESHOLD, memory.MMAP_THRESHOLD) == 1


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_elsewhere_they_do_nothing(monkeypatch, platform):
    monkeypatch.setattr(sys, "platform", platform)
    assert memory._glibc() is None
    memory.tune()
    memory.give_back()


def test_a_c_library_without_the_calls_is_left_alone(monkeypatch):
    class Musl:
        pass

    monkeypatch.setattr(ctypes, "CDLL", lambda _name: Musl())
    assert memory._glibc() is None
    memory.give_back()


def test_no_c_library_to_load_is_left_alone(monkeypatch):
    def fail(_name):
        raise OSError("no libc")

    monkeypatch.setattr(ctypes, "CDLL", fail)
    assert memory._glibc() is None
