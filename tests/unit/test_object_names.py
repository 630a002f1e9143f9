"""Object names (store/handle.py): every name the repository builds parses back to the same
kind and rest, and a name no kind takes (a probe, a stray, a hostile one) parses to nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_the_config_objects_are_named_by_their_kind_alone() -> None:
    assert Handle.parse("config") == Handle(ObjectKind.CONFIG)
    assert Handle.parse("config-upgrade") == Handle(ObjectKind.CONFIG_UPGRADE)
    assert Handle.parse_as(ObjectKind.CONFIG, "config-upgrade") is None
