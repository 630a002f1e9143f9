"""Secrets are never synced, wherever they appear under the Claude folder."""

from __future__ import annotations

import pytest

from claude_sync.resources import NEVER, TYPES, Selection, type_of, valid_logical_path


@pytest.mark.parametrize("name", sorted(NEVER))
@pytest.mark.parametrize("folder", ["", "projects/-home-ann-app/", "agents/", "skills/x/"])
def test_a_secret_is_claimed_by_no_type(folder: str, name: str) -> None:
    assert type_of(folder + name) is None
    assert not Selection(TYPES).covers(folder + name)


def test_credentials_are_on_the_never_list() -> None:
    # The top-level file is claimed by no type anyway; the list is what stops a copy inside a
    # synced folder (projects/…/.credentials.json) in both directions.
    assert ".credentials.json" in NEVER and ".claude.json" in NEVER
    assert not valid_logical_path("projects/-p/.credentials.json")
