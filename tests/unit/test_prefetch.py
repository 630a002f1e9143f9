"""A push reading from a cold cache has the disk read ahead of its readers: each file is
asked for once, in the readers' order, never more than PREFETCH_BYTES ahead of them."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_sync import portable
from claude_sync import reading as reading_module
from claude_sync.reading import InTurn
from claude_sync.resources import FileStat, FoundFile


def items(sizes: list[int]) -> list[tuple[FoundFile, str, None]]:
    return [
        (
            FoundFile(f"projects/p/{n}.jsonl", "/nowhere", FileStat(size, 0, n, 0, 0o100600)),
            "",
            None,
        )
        for n, size in enumerate(sizes)
    ]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=5000), max_size=40),
    budget=st.integers(min_value=1, max_value=8000),
)
def test_each_file_is_asked_for_once_and_not_too_far_ahead(sizes: list[int], budget: int) -> None:
    asked: list[str] = []
    with (
        mock.patch.object(reading_module, "PREFETCH_BYTES", budget),
        mock.patch.object(portable, "prefetch", lambda files: asked.extend(p for p, _ in files)),
    ):
        files = InTurn(items(sizes))
        taken = []
        while (item := files.next()) is not None:
            taken.append(item[0].abspath)
            # asked for, not yet taken: the files right after, within the budget but for the
            # one that crosses it, and at least one while any is left
            waiting = [p for p in asked if p not in taken]
            after = [f.abspath for f, _, _ in files.items[len(taken) :]]
            assert waiting == after[: len(waiting)]
            assert (
                sum(f.st.st_size for f, _, _ in files.items[len(taken) :][: len(waiting) - 1])
                < budget
            )
            assert waiting or not after
    everything = [f.abspath for f, _, _ in items(sizes)]
    assert taken == everything
    # each once, in order; all but the first (read at once) before they were taken
    assert asked == everything[1:]


def test_readers_in_parallel_still_take_each_file_once() -> None:
    files = InTurn(items([100] * 500))
    taken: list[str] = []
    lock = threading.Lock()

    def reader() -> None:
        while (item := files.next()) is not None:
            with lock:
                taken.append(item[0].abspath)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(f.abspath for f, _, _ in files.items)


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here")
def test_the_disk_is_told_of_each_file_that_opens(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100)
    (tmp_path / "b").write_bytes(b"y" * 10)
    advised: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length, advice))
        real(fd, offset, length, advice)

    with mock.patch.object(os, "posix_fadvise", spy):
        portable.prefetch(
            [(str(tmp_path / "a"), 100), (str(tmp_path / "gone"), 5), (str(tmp_path / "b"), 10)]
        )
    assert advised == [(0, 100, os.POSIX_FADV_WILLNEED), (0, 10, os.POSIX_FADV_WILLNEED)]


def test_without_fadvise_nothing_is_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "posix_fadvise", raising=False)
    with mock.patch.object(os, "open", side_effect=AssertionError("opened")):
        portable.prefetch([(str(tmp_path / "a"), 1)])


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here")
def test_a_pipe_or_a_link_where_a_file_was_is_left_alone(tmp_path: Path) -> None:
    """A name that became a pipe must not block the push (an open for reading waits for a
    writer), nor one that became a link lead the read-ahead elsewhere."""
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "target").write_bytes(b"x" * 10)
    (tmp_path / "link").symlink_to(tmp_path / "target")
    advised: list[int] = []
    with mock.patch.object(os, "posix_fadvise", lambda fd, *args: advised.append(fd)):
        portable.prefetch([(str(tmp_path / "pipe"), 10), (str(tmp_path / "link"), 10)])
    assert advised == []
