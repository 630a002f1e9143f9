"""Hooks an older claude-sync wrote without -P, made safe: only ours, only their commands
in the file's text (the end-to-end run is in tests/e2e/test_setup_install_and_watch.py)."""

from __future__ import annotations

import json

import pytest

from claude_sync import hook_install

OLD = "/usr/bin/python3 -m claude_sync hook session-end --timeout 10"
NEW = "/usr/bin/python3 -P -m claude_sync hook session-end --timeout 10"


def test_only_our_unsafe_hooks_change_and_only_their_text(tmp_path):
    path = tmp_path / "settings.json"
    quoted = "'/opt/my python/bin/python3' -m claude_sync hook session-start --timeout 10"
    doc = {
        "hooks": {
            "SessionEnd": [
                "not a group",
                {"hooks": "not a list"},
                {"hooks": [{"type": "command", "command": OLD}, {"command": "x -m claude_sync"}]},
                {"hooks": [{"command": "echo 'python -m claude_sync hook session-end' >> log"}]},
            ],
            "SessionStart": [{"matcher": "startup", "hooks": [{"command": quoted}]}],
            "Stop": "not a list",
        },
        "env": {"NAME": "café"},
        "cleanupPeriodDays": 1.0e2,
    }
    # As a person writes it: four spaces, escapes, an exponent; json would write it otherwise.
    text = json.dumps(doc, indent=4).replace("100.0", "1.0e2")
    path.write_text(text)
    path.chmod(0o640)
    assert hook_install.has_unsafe_hooks(path)
    assert hook_install.upgrade_claude_hooks(path)
    made_safe = quoted.replace("' -m", "' -P -m")
    assert path.read_text() == text.replace(OLD, NEW).replace(quoted, made_safe)
    assert path.stat().st_mode & 0o777 == 0o640
    assert not hook_install.has_unsafe_hooks(path)
    assert not hook_install.upgrade_claude_hooks(path)  # safe already: left alone


def test_the_same_text_elsewhere_is_left_as_it_was(tmp_path):
    path = tmp_path / "settings.json"
    doc = {"hooks": {"SessionEnd": [{"hooks": [{"command": OLD}]}]}, "env": {"WHAT": OLD}}
    path.write_text(json.dumps(doc))
    assert hook_install.upgrade_claude_hooks(path)
    data = json.loads(path.read_text())
    assert data == {"hooks": {"SessionEnd": [{"hooks": [{"command": NEW}]}]}, "env": {"WHAT": OLD}}


def test_what_cannot_be_read_is_left_alone(tmp_path):
    missing = tmp_path / "settings.json"
    assert not hook_install.upgrade_claude_hooks(missing)
    assert not hook_install.has_unsafe_hooks(missing)
    assert not missing.exists()
    for text in (f'"{OLD}"', f'{{"hooks": "{OLD}"}}', f"{{not json {OLD}"):
        missing.write_text(text)
        assert not hook_install.upgrade_claude_hooks(missing)
        assert not hook_install.has_unsafe_hooks(missing)
        assert missing.read_text() == text


def test_a_file_that_cannot_be_written_raises_and_stays(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    text = json.dumps({"hooks": {"SessionEnd": [{"hooks": [{"command": OLD}]}]}})
    path.write_text(text)

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(hook_install, "write_atomically", refused)
    with pytest.raises(OSError):
        hook_install.upgrade_claude_hooks(path)
    assert path.read_text() == text
