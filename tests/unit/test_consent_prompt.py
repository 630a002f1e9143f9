"""The consent question shows what a change to code would bring: a long script (or list)
that changed by its changed lines, what is new before what is taken away, at a cost that
does not grow with the square of a planted file's length."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from claude_sync import prompt


def added(shown: str) -> list[str]:
    return [line.strip()[2:] for line in shown.splitlines() if line.strip().startswith("+ ")]


def test_a_rewritten_script_shows_its_new_lines() -> None:
    old = [f"// old {i}" for i in range(120)]
    new = [f"run('{i}')" for i in range(120)]
    shown = prompt._part(old, new, 7)
    assert sum(line.strip().startswith("- ") for line in shown.splitlines()) == 6
    assert "(and 115 more lines taken away)" in shown
    assert added(shown)[:100] == [f"\"run('{i}')\"" for i in range(100)]
    assert "`claude-sync restore PATH --snapshot 7 --target DIR`" in shown


def test_a_script_turned_binary_says_so() -> None:
    old = [f"line {i}" for i in range(300)]
    shown = prompt._part(old, ["19 bytes, content hash b3:00"], 3)
    assert added(shown) == ['"19 bytes, content hash b3:00"']


def test_a_change_in_a_long_file_is_found_at_once() -> None:
    started = time.monotonic()
    shown = prompt._part(["x"] * 21_000, ["x"] * 10_000 + ["y"] + ["x"] * 10_999, 1)
    tools = [f"  - T{i}" for i in range(15_000)]
    listed = prompt._part(tools, [*tools[:7_000], "  - Bash(*)", *tools[7_000:]], 1)
    different = prompt._part([f"a{i}" for i in range(9_000)], [f"b{i}" for i in range(9_000)], 1)
    assert time.monotonic() - started < 2
    assert added(shown) == ['"y"'] and "@@ from line 9999 of" in shown
    assert added(listed) == ['"  - Bash(*)"']
    assert added(different)[0] == '"b0"' and "more lines of changes" in different


@given(
    base=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=41, max_size=80),
    at=st.integers(0, 80),
    line=st.text(min_size=1, max_size=5),
)
def test_an_added_line_is_always_shown(base: list[str], at: int, line: str) -> None:
    new = [*base[:at], f"NEW{line}", *base[at:]]
    assert any("NEW" in shown for shown in added(prompt._part(base, new, 1)))
