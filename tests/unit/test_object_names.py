"""Object names (store/handle.py): every name the repository builds parses back to the same
kind and rest, and a name no kind takes (a probe, a stray, a hostile one) parses to nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import claude_sync
from claude_sync.repository import format
from claude_sync.store.git import to_name, to_path
from claude_sync.store.handle import Handle, ObjectKind

HEX = st.text("0123456789abcdef", min_size=64, max_size=64)
NUMBERED = (ObjectKind.SNAPSHOT, ObjectKind.EPOCH)
RANDOM = (
    ObjectKind.INDEX,
    ObjectKind.MANIFEST,
    ObjectKind.PRUNE_MARK,
    ObjectKind.FORGOTTEN,
)


@given(st.sampled_from(NUMBERED), st.integers(0, 10**10 - 1))
def test_a_numbered_name_parses_back_to_its_number(kind: ObjectKind, number: int) -> None:
    handle = Handle.numbered(kind, number)
    assert Handle.parse(handle.name) == handle
    assert handle.number == number
    assert len(handle.ident) == 10  # names sort in the order of their numbers


@given(st.sampled_from(RANDOM), HEX)
def test_a_random_name_parses_back_to_its_kind(kind: ObjectKind, ident: str) -> None:
    assert Handle.parse_as(kind, kind.prefix + ident) == Handle(kind, ident)


@given(HEX)
def test_a_pack_is_named_in_the_folder_of_its_first_two_digits(digest: str) -> None:
    handle = Handle.pack(digest)
    assert handle.name == f"data/{digest[:2]}/{digest}"
    assert Handle.parse_as(ObjectKind.PACK, handle.name) == handle


def test_the_new_names_are_random_and_well_formed() -> None:
    first, second = Handle.random(ObjectKind.INDEX), Handle.random(ObjectKind.INDEX)
    assert first != second
    assert Handle.parse(first.name) == first
    assert Handle.parse(Handle.random(ObjectKind.KEY, 16).name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "snapshots/123",  # too short to sort
        "snapshots/00000000012",
        "index/" + "A" * 64,  # upper case is not how names are written
        "manifest/" + "a" * 63,
        "prune/probe-" + "a" * 32,  # prune's clock probe is no mark
        "data/" + "a" * 64,  # a pack outside its folder
        "keys/",
        "config/",
        "unknown/" + "a" * 64,
        "",
    ],
)
def test_a_name_no_kind_takes_parses_to_nothing(name: str) -> None:
    assert Handle.parse(name) is None


PROBED = [k for k in ObjectKind if k is not ObjectKind.KEY and not k.single]


@pytest.mark.parametrize("kind", PROBED)
def test_a_probe_sits_among_a_kinds_objects_but_is_none_of_them(kind: ObjectKind) -> None:
    probe = Handle.probe(kind)
    assert probe.startswith(kind.prefix)
    assert Handle.parse(probe) is None
    assert probe != Handle.probe(kind)


def test_no_probe_hides_among_key_objects() -> None:
    """A key object's name is free-form: a probe there would be read as a key."""
    with pytest.raises(ValueError):
        Handle.probe(ObjectKind.KEY)


def test_the_config_objects_are_named_by_their_kind_alone() -> None:
    assert Handle.parse("config") == Handle(ObjectKind.CONFIG)
    assert Handle.parse("config-upgrade") == Handle(ObjectKind.CONFIG_UPGRADE)
    assert Handle.parse_as(ObjectKind.CONFIG, "config-upgrade") is None


SRC = Path(claude_sync.__file__).parent
#: where a name's prefix may be spelled: the kinds themselves, and the names built from them
NAMING = ("store/handle.py", "repository/format.py")


def _spelled_names(tree: ast.Module) -> list[tuple[int, str]]:
    """Names spelled by hand: a string that starts like a kind's objects (in f-strings and
    patterns too), and a kind's prefix constant glued to or cut from a string."""
    prefixes = tuple(k.prefix for k in ObjectKind if not k.single)
    constants = {n for n in dir(format) if n.endswith(("_PREFIX", "_NAME"))}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith(prefixes):
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            for side in (node.left, node.right):
                if isinstance(side, ast.Name) and side.id in constants:
                    found.append((node.lineno, f"{side.id} +"))
        elif isinstance(node, ast.JoinedStr):
            found += [
                (node.lineno, f"{{{part.value.id}}}")
                for part in node.values
                if isinstance(part, ast.FormattedValue)
                and isinstance(part.value, ast.Name)
                and part.value.id in constants
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "len"
            and any(isinstance(a, ast.Name) and a.id in constants for a in node.args)
        ):
            found.append((node.lineno, "len(...)"))
    return found


def test_names_are_built_in_one_place() -> None:
    """Every object name comes from a Handle (store/handle.py) or a helper of
    repository/format.py: no other module spells or splices one."""
    offenders = [
        f"{path.relative_to(SRC).as_posix()}:{line} {what}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).as_posix() not in NAMING
        for line, what in _spelled_names(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == []


NAMES = st.one_of(
    st.builds(Handle.numbered, st.sampled_from(NUMBERED), st.integers(0, 10**10 - 1)),
    st.builds(Handle, st.sampled_from(RANDOM), HEX),
    st.builds(Handle.pack, HEX),
).map(lambda handle: handle.name)


@given(NAMES)
def test_the_git_trees_paths_map_back_to_the_names(name: str) -> None:
    path = to_path(name)
    assert to_name(path) == name
    assert path == name or path.count("/") == name.count("/") + 1  # fanned out: one folder more


@pytest.mark.parametrize(
    "path",
    [
        "snapshots/0000000001",  # not fanned out: taken as it is
        "snapshots/00000001/0000000001",  # a folder that does not match the name
        "index/ab/cd" + "0" * 62,
        "manifest/ab/ab" + "0" * 61,  # too short
        "snapshots/00000000/",
        ".probe-0123",
    ],
)
def test_a_path_of_no_fanned_out_object_is_its_own_name(path: str) -> None:
    assert to_name(path) == path
