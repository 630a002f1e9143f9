"""Hooks an older claude-sync wrote without -P, made safe: only ours, whatever else the
settings file holds (the end-to-end run is in tests/e2e/test_setup_install_and_watch.py)."""

from __future__ import annotations

import json

from claude_sync import hook_install

OLD = "/usr/bin/python3 -m claude_sync hook session-end --timeout 10"


def test_only_our_unsafe_hooks_change(tmp_path):
    path = tmp_path / "settings.json"
    doc = {
        "hooks": {
            "SessionEnd": [
                "not a group",
                {"hooks": "not a list"},
                {"hooks": [{"type": "command", "command": OLD}, {"command": "x -m claude_sync"}]},
            ],
            "Stop": "not a list",
        },
        "env": {"A": "1"},
    }
    path.write_text(json.dumps(doc))
    path.chmod(0o640)
    assert hook_install.upgrade_claude_hooks(path)
    data = json.loads(path.read_text())
    hooks = data["hooks"]["SessionEnd"][2]["hooks"]
    assert hooks[0]["command"] == OLD.replace("-m claude_sync", "-P -m claude_sync")
    assert hooks[1] == {"command": "x -m claude_sync"}
    assert data["hooks"]["SessionEnd"][:2] == doc["hooks"]["SessionEnd"][:2]
    assert data["env"] == doc["env"] and data["hooks"]["Stop"] == "not a list"
    assert path.stat().st_mode & 0o777 == 0o640
    assert not hook_install.upgrade_claude_hooks(path)  # safe already: left alone


def test_what_cannot_be_read_is_left_alone(tmp_path):
    missing = tmp_path / "settings.json"
    assert not hook_install.upgrade_claude_hooks(missing)
    assert not missing.exists()
    for text in (f'"{OLD}"', f'{{"hooks": "{OLD}"}}', f"{{not json {OLD}"):
        missing.write_text(text)
        assert not hook_install.upgrade_claude_hooks(missing)
        assert missing.read_text() == text
