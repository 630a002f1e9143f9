"""Three-way line merges of text files (agents, commands, CLAUDE.md): what merges cleanly and
what is a conflict, as in git's diff3."""

from __future__ import annotations

from claude_sync.merge import conflict_markers, merge_text


def test_a_line_inserted_here_and_one_appended_there_both_land() -> None:
    base = b"a\nb\nc\n"
    assert merge_text(base, b"a\nX\nb\nc\n", b"a\nb\nc\nY\n") == b"a\nX\nb\nc\nY\n"
    assert merge_text(base, b"a\nb\nc\nY\n", b"a\nX\nb\nc\n") == b"a\nX\nb\nc\nY\n"


def test_changes_at_both_ends_merge() -> None:
    base = b"a\nb\nc\n"
    assert merge_text(base, b"a\nb\nX\n", b"Y\nb\nc\n") == b"Y\nb\nX\n"
    assert merge_text(base, b"Y\nb\nc\n", b"a\nb\nX\n") == b"Y\nb\nX\n"


def test_changes_to_adjacent_lines_are_a_conflict() -> None:
    base = b"a\nb\nc\nd\n"
    assert merge_text(base, b"a\nB\nc\nd\n", b"a\nb\nC\nd\n") is None


def test_a_long_file_of_repeated_lines_still_merges() -> None:
    # difflib's autojunk would take a line repeated this often for noise and match nothing.
    base = b"\n" * 300
    assert merge_text(base, b"top\n" + base, base + b"bottom\n") == b"top\n" + base + b"bottom\n"


def test_files_that_are_not_text_get_no_line_merge() -> None:
    # b and d changed apart: a clean merge for text, none for the same lines in another file
    latin1 = b"caf\xe9\nb\nc\nd\n"  # not UTF-8
    assert merge_text(latin1, b"caf\xe9\nB\nc\nd\n", b"caf\xe9\nb\nc\nD\n") is None
    with_nul = b"a\x00\nb\nc\nd\n"
    assert merge_text(with_nul, b"a\x00\nB\nc\nd\n", b"a\x00\nb\nc\nD\n") is None
    assert merge_text(b"a\nb\nc\nd\n", b"a\nB\nc\nd\n", b"a\nb\nc\nD\n") == b"a\nB\nc\nD\n"


def test_a_conflict_of_several_lines_is_marked_whole() -> None:
    base = b"a\nb\nc\nd\n"
    local, remote = b"a\nL1\nL2\nd\n", b"a\nR1\nR2\nd\n"
    assert conflict_markers(local, remote, base) == (
        b"a\n<<<<<<< local\nL1\nL2\n||||||| base\nb\nc\n=======\nR1\nR2\n>>>>>>> remote\nd\n"
    )


def test_edits_at_several_places_here_and_an_append_there_merge() -> None:
    base = b"a\nb\nc\nd\ne\n"
    merged = b"a\nB\nc\nD\ne\nf\n"
    assert merge_text(base, b"a\nB\nc\nD\ne\n", base + b"f\n") == merged
    assert merge_text(base, base + b"f\n", b"a\nB\nc\nD\ne\n") == merged
