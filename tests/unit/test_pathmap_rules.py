"""Project folder prefixes match whole path components, never a longer name."""

from __future__ import annotations

from pathlib import PurePosixPath

from claude_sync.pathmap import PathMapper


def test_the_home_does_not_claim_a_sibling_with_a_longer_name() -> None:
    mapper = PathMapper(PurePosixPath("/home/ann"), home_aliases=[])
    assert mapper.folder_to_logical("-home-ann-code") == "~-code"
    assert mapper.folder_to_logical("-home-ann") == "~"
    assert mapper.folder_to_logical("-home-annie-code") == "-home-annie-code"
    assert mapper.to_logical("projects/-home-annie/s.jsonl") == "projects/-home-annie/s.jsonl"


def test_a_map_does_not_claim_a_sibling_with_a_longer_name() -> None:
    mapper = PathMapper(PurePosixPath("/home/ann"), {"/srv/work": "work"}, home_aliases=[])
    assert mapper.folder_to_logical("-srv-work-app") == "@work-app"
    assert mapper.folder_to_logical("-srv-workshop") == "-srv-workshop"
    assert mapper.folder_to_local("@work-app") == "-srv-work-app"
