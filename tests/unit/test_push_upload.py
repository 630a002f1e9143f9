"""A file that changes between the scan and the upload is not stored under the id of what the
scan read: the engine in-process, two machines sharing one in-memory repository."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

from engine_pair import EngineMachines

from claude_sync.engine import Engine


def edited_during_upload(pair: EngineMachines, rel: str, text: str) -> mock._patch:  # type: ignore[type-arg]
    upload = Engine._upload

    def edit_then_upload(engine: Engine, *args: object) -> None:
        pair.write(0, rel, text)
        upload(engine, *args)  # type: ignore[arg-type]

    return mock.patch.object(Engine, "_upload", edit_then_upload)


def test_a_file_edited_during_the_upload_waits_for_the_next_push(tmp_path: Path) -> None:
    pair = EngineMachines(tmp_path)
    pair.write(0, "agents/x.md", "scanned\n")
    with edited_during_upload(pair, "agents/x.md", "edited!\n"):
        result = pair.run(0, "push")
    assert result.pushed == []
    assert any("agents/x.md changed while being pushed" in w for w in result.warnings)
    assert pair.run(0, "push").pushed == ["agents/x.md"]
    pair.run(1, "pull")
    assert pair.read(1, "agents/x.md") == "edited!\n"


def test_a_file_that_counted_on_the_edited_one_for_its_data_waits_too(tmp_path: Path) -> None:
    """Two files with the same content share one blob, uploaded once: when the file it was
    read from changed, the other file must not be listed with a blob that was never stored."""
    pair = EngineMachines(tmp_path)
    pair.write(0, "agents/a.md", "same text\n")
    pair.write(0, "agents/b.md", "same text\n")
    # The newest file is uploaded first: the shared blob is read from a, which changes.
    os.utime(pair.root(0) / "agents/b.md", (1_700_000_000, 1_700_000_000))
    with edited_during_upload(pair, "agents/a.md", "different\n"):
        result = pair.run(0, "push")
    assert "agents/a.md" not in result.pushed
    pair.run(1, "pull")
    if "agents/b.md" in result.pushed:
        assert pair.read(1, "agents/b.md") == "same text\n"
    pair.run(0, "push")
    pair.run(1, "pull")
    assert (pair.read(1, "agents/a.md"), pair.read(1, "agents/b.md")) == (
        "different\n",
        "same text\n",
    )
