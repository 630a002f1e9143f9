"""Shared set-up of the in-process unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from claude_sync import resources


@pytest.fixture(autouse=True)
def fresh_type_cache() -> Iterator[None]:
    """type_of is memoised: a result cached by an earlier test (or, under mutmut, by the
    unmutated run the workers fork from) would hide what the code decides now."""
    resources.type_of.cache_clear()
    yield
