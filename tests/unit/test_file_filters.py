"""settings.json and history.jsonl hold absolute paths: stored with the home (or a mapped
folder) as a token, written back with this machine's."""

from __future__ import annotations

import io
from pathlib import PurePosixPath, PureWindowsPath

from hypothesis import given
from hypothesis import strategies as st

from claude_sync.merge import HISTORY_PATH
from claude_sync.pathmap import (
    _PROJECT,
    HOME_MAPPED,
    HOME_TOKEN,
    HistoryFilter,
    HomeFilter,
    PathMapper,
    file_filters,
)


def test_the_home_becomes_a_token_and_comes_back_as_the_other_home() -> None:
    here, there = HomeFilter(PurePosixPath("/home/ann")), HomeFilter(PurePosixPath("/Users/ann/"))
    data = b'{"a": "/home/ann/x/y", "b": "/home/ann", "c": "/home/annie/z", "d": "x/home/ann"}'
    stored = here.to_logical(data)
    assert stored == (
        b'{"a": "${CLAUDE_SYNC_HOME}/x/y", "b": "${CLAUDE_SYNC_HOME}", '
        b'"c": "/home/annie/z", "d": "x/home/ann"}'
    )
    assert there.to_local(stored) == data.replace(b"/home/ann", b"/Users/ann").replace(
        b"/Users/annie", b"/home/annie"
    ).replace(b"x/Users/ann", b"x/home/ann")
    assert HomeFilter(PurePosixPath("/")).to_logical(b'"/x"') == b'"/x"'
    assert HomeFilter(PurePosixPath("/")).to_local(HOME_TOKEN) == HOME_TOKEN


def test_a_windows_home_is_matched_in_either_drive_case_and_written_back_escaped() -> None:
    win = HomeFilter(PureWindowsPath("C:\\Users\\ann"))
    data = b'{"h": "node c:\\\\Users\\\\ann\\\\hooks\\\\x.js --flag", "o": "C:\\\\Users\\\\annie"}'
    stored = win.to_logical(data)
    assert (
        stored
        == b'{"h": "node ${CLAUDE_SYNC_HOME}/hooks/x.js --flag", "o": "C:\\\\Users\\\\annie"}'
    )
    assert win.to_local(stored) == (
        b'{"h": "node C:\\\\Users\\\\ann\\\\hooks\\\\x.js --flag", "o": "C:\\\\Users\\\\annie"}'
    )
    upper = b'"C:\\\\Users\\\\ann\\\\x"'
    assert win.to_logical(upper) == b'"${CLAUDE_SYNC_HOME}/x"'
    linux = HomeFilter(PurePosixPath("/home/ann"))
    assert linux.to_local(stored).startswith(b'{"h": "node /home/ann/hooks/x.js --flag"')


def test_history_projects_follow_the_home_and_maps() -> None:
    here = HistoryFilter(PathMapper(PurePosixPath("/home/ann"), {"/srv/w": "w"}, home_aliases=[]))
    there = HistoryFilter(PathMapper(PurePosixPath("/Users/ann"), {}, home_aliases=[]))
    line = b'{"display": "hi", "project": "/home/ann/app"}\n'
    mapped = b'{"display": "hi", "project": "/srv/w/x"}\n'
    other = b'{"display": "hi", "project": "/opt/app"}\n'
    home = b'{"project": "/home/ann"}'
    stored = here.to_logical(line + mapped + other + home)
    assert stored == (
        b'{"display": "hi", "project": "${CLAUDE_SYNC_PATH:~}/app"}\n'
        b'{"display": "hi", "project": "${CLAUDE_SYNC_PATH:@w}/x"}\n'
        + other
        + b'{"project": "${CLAUDE_SYNC_PATH:~}"}'
    )
    assert here.to_local(stored) == line + mapped + other + home
    assert there.to_local(stored) == (
        b'{"display": "hi", "project": "/Users/ann/app"}\n'
        b'{"display": "hi", "project": "${CLAUDE_SYNC_PATH:@w}/x"}\n'
        + other
        + b'{"project": "/Users/ann"}'
    )


def test_a_windows_history_holds_its_projects_as_tokens_too() -> None:
    """Claude Code on Windows writes each prompt's folder as a JSON string, its backslashes
    doubled: they were compared with the home as it is, and never became a token, so no
    other machine's up-arrow history matched them. Matched exactly, case and all (Claude
    Code tells `c:` from `C:`: written back in another case, a prompt would leave its
    project's history); a map given with forward slashes is the same folder."""
    win = HistoryFilter(
        PathMapper(PureWindowsPath("C:\\Users\\ann"), {"D:/work": "w"}, home_aliases=[])
    )
    linux = HistoryFilter(PathMapper(PurePosixPath("/home/ann"), {"/srv/w": "w"}, home_aliases=[]))
    lines = (
        b'{"display": "a", "project": "C:\\\\Users\\\\ann\\\\code\\\\app"}\n'
        b'{"display": "b", "project": "C:\\\\Users\\\\ann"}\n'
        b'{"display": "c", "project": "C:\\\\Users\\\\annie\\\\x"}\n'
        b'{"display": "d", "project": "c:\\\\Users\\\\ann\\\\x"}\n'
        b'{"display": "e", "project": "D:\\\\work\\\\api"}\n'
    )
    stored = win.to_logical(lines)
    assert stored.splitlines() == [
        b'{"display": "a", "project": "${CLAUDE_SYNC_PATH:~}/code/app"}',
        b'{"display": "b", "project": "${CLAUDE_SYNC_PATH:~}"}',
        b'{"display": "c", "project": "C:\\\\Users\\\\annie\\\\x"}',
        b'{"display": "d", "project": "c:\\\\Users\\\\ann\\\\x"}',
        b'{"display": "e", "project": "${CLAUDE_SYNC_PATH:@w}/api"}',
    ]
    here = linux.to_local(stored).splitlines()
    assert here[0] == b'{"display": "a", "project": "/home/ann/code/app"}'
    assert here[1] == b'{"display": "b", "project": "/home/ann"}'
    assert here[4] == b'{"display": "e", "project": "/srv/w/api"}'
    assert win.to_local(linux.to_logical(linux.to_local(stored))) == lines


@given(
    home=st.sampled_from(["/", "/home/ann", "/home/ann/", "/Users/a b"]),
    project=st.text(alphabet="/abn\\é ", max_size=14),
)
def test_a_posix_history_maps_as_it_always_did(home: str, project: str) -> None:
    """The Windows change left POSIX folders as they were matched before, also for a home
    of "/" (an empty project stays empty)."""
    history = HistoryFilter(PathMapper(PurePosixPath(home), {}, home_aliases=[]))
    value = project.encode()
    directory = home
    if project == directory or project.startswith(directory.rstrip("/") + "/"):
        expected = b"${CLAUDE_SYNC_PATH:~}" + project[len(directory.rstrip("/")) :].encode()
    else:
        expected = value
    assert history._logical(value) == expected


def test_every_path_holding_file_has_its_filter() -> None:
    filters = file_filters(PurePosixPath("/home/ann"), PathMapper("/home/ann", home_aliases=[]))
    assert set(filters) == {*HOME_MAPPED, HISTORY_PATH}
    assert isinstance(filters[HISTORY_PATH], HistoryFilter)
    assert all(isinstance(filters[p], HomeFilter) for p in HOME_MAPPED)


@given(
    st.lists(
        st.sampled_from(
            [
                b'{"display":"x","project":"${CLAUDE_SYNC_PATH:~}/code/app"}\n',
                b'{"project" : "${CLAUDE_SYNC_PATH:w}"}\n',
                b'{"project":"${CLAUDE_SYNC_PATH:other}/q"}\n',
                b'{"project":"/abs/\\"quoted\\"/p"}\n',
                b'{"project":"${CLAUDE_SYNC_PATH:~}/cut',
                b"not json\n",
                b"\n",
            ]
        ),
        max_size=30,
    )
)
def test_a_history_written_piece_by_piece_is_the_history_mapped_whole(lines: list[bytes]) -> None:
    """A pull writes a history as it maps it, without holding the mapped copy: the bytes
    are those of one substitution over the whole file, torn and odd lines included."""
    history = HistoryFilter(
        PathMapper(PurePosixPath("/home/ann"), {"/srv/w": "w"}, home_aliases=[])
    )
    data = b"".join(lines)
    whole = _PROJECT.sub(lambda m: m[1] + history._local(m[2]) + m[3], data)
    out = io.BytesIO()
    history.write_local(data, out)
    assert out.getvalue() == whole == history.to_local(data)
