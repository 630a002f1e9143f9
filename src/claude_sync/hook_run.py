"""What runs when one of claude-sync's Claude Code hooks fires (`hook_install` puts them in
settings.json; the git hooks it installs call `push`/`pull` directly).

The hook itself (`claude-sync hook EVENT`) only hands the event to a detached worker and waits
for it at most `--timeout` seconds: Claude Code is never held up longer, never sees a failure
(offline, remote gone), and a slow sync simply finishes in the background. Everything the
worker says goes to `hooks.log` in the config folder, never to Claude Code (SessionStart
output would be shown to the model).
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from claude_sync import config, hook_install, portable, worker_process
from claude_sync.errors import SyncError
from claude_sync.terminal import clean, redact
from claude_sync.workspace import Locations, machine_lock, open_workspace

LOG_FILE = "hooks.log"
LOG_LIMIT = 1024 * 1024
MAX_EVENT = 1024 * 1024


def _read_event() -> bytes:
    """The event JSON Claude Code writes on stdin; nothing when there is none to read. Read
    by a thread waited on at most 2 s: Windows cannot wait on a pipe with select."""
    if sys.stdin is None or sys.stdin.isatty():
        return b""
    chunks: list[bytes] = []

    def read() -> None:
        fd = sys.stdin.fileno()
        size = 0
        while size < MAX_EVENT:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(2)
    return b"".join(list(chunks))


def log(where: Locations, message: str) -> None:
    """Append one line to hooks.log (credentials cut out, control characters shown as `?`),
    keeping it under LOG_LIMIT by rotating; a log that cannot be written is not an error."""
    path = where.config_dir / LOG_FILE
    with contextlib.suppress(OSError):
        if path.exists() and path.stat().st_size > LOG_LIMIT:
            path.replace(path.with_suffix(".log.1"))
        with path.open("a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {clean(redact(message))}\n")


def run_hook(where: Locations, event: str, timeout: float, from_plugin: bool = False) -> None:
    """`claude-sync hook EVENT`: start the worker detached with the event on its stdin and
    wait for it at most timeout seconds; never fails (problems go to hooks.log)."""
    payload = _read_event()
    if from_plugin and hook_install.has_claude_hooks(where.claude_dir / "settings.json"):
        return  # the settings.json hooks run too: one sync per event is enough
    if not config.is_set_up(where.config_dir):
        if from_plugin and event == "session-start":
            _hint_once("this machine is not set up, so nothing is synced: run `claude-sync init`")
        return
    args = [
        *worker_process.module_command("claude_sync"),
        "hook-worker",
        event,
        "--claude-dir",
        str(where.claude_dir),
        "--config-dir",
        str(where.config_dir),
    ]
    try:
        with (where.config_dir / LOG_FILE).open("ab") as logfile:
            worker = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=logfile,
                stderr=logfile,
                **portable.detached(),
            )
        assert worker.stdin is not None
        worker.stdin.write(payload)
        worker.stdin.close()
        worker.wait(timeout)
    except subprocess.TimeoutExpired:
        log(where, f"{event}: still running after {timeout:g}s; finishing in the background")
    except OSError as exc:
        log(where, f"{event}: could not start: {exc}")


def _hint_once(message: str) -> None:
    """Tell the user (SessionStart's `systemMessage` is shown to them, never to the model)
    once per plugin installation, in the plugin's data folder Claude Code provides."""
    import platformdirs

    folder = Path(
        os.environ.get("CLAUDE_PLUGIN_DATA")
        or platformdirs.user_cache_dir("claude-sync-plugin", appauthor=False)
    )
    marker = folder / "setup-hint-shown"
    if marker.exists():
        return
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        marker.touch()
    print(json.dumps({"systemMessage": f"claude-sync plugin: {message}."}))


def _session_paths(claude_dir: Path, transcript: object) -> tuple[str, ...]:
    """What a session wrote, relative to the Claude directory: its transcript and sub-agent
    folder, the prompt history, and the memory its project and its sub-agents keep (each
    written during sessions, never pushed by a hook before)."""
    if not isinstance(transcript, str) or not transcript.endswith(".jsonl"):
        return ()
    try:
        rel = Path(transcript).resolve().relative_to(claude_dir.resolve()).as_posix()
    except (ValueError, OSError):
        return ()
    project = posixpath.dirname(rel)
    memory = (f"{project}/memory",) if posixpath.dirname(project) == "projects" else ()
    return (rel, rel[: -len(".jsonl")], "history.jsonl", *memory, "agent-memory")


def _hook_settings(claude_dir: Path, cwd: object) -> list[Path]:
    """The settings files `install` may have put this hook in: the user's, and the
    project's (`install --project`) when the event names the folder Claude Code runs in."""
    found = [claude_dir / "settings.json"]
    if isinstance(cwd, str) and os.path.isabs(cwd):
        found.append(Path(cwd) / ".claude" / "settings.json")
    return found


def _upgrade_hooks(where: Locations, event: str, cwd: object) -> None:
    """Hooks an older claude-sync wrote without -P, written again with it (see
    hook_install.upgrade_claude_hooks); under the machine-wide lock, so that no pull writes
    settings.json meanwhile. One that cannot be written is said, and the sync goes on."""
    try:
        with machine_lock(where.config_dir):
            for settings in _hook_settings(where.claude_dir, cwd):
                try:
                    if hook_install.upgrade_claude_hooks(settings):
                        said = f"the hooks in {settings} now run `python -P -m claude_sync`"
                        log(where, f"{event}: {said}")
                except OSError as exc:
                    log(where, f"{event}: warning: cannot add -P to the hooks in {settings}: {exc}")
    except SyncError as exc:
        log(where, f"{event}: warning: {exc}")


def work(where: Locations, event: str, payload: str) -> None:
    """The worker: pull at session start, push the session's files at its end; the
    outcome, or the error, goes to hooks.log."""
    try:
        data = json.loads(payload) if payload.strip() else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    _upgrade_hooks(where, event, data.get("cwd"))
    try:
        with open_workspace(where, reaching=event == "session-start") as ws:
            sel = ws.selection()
            engine = ws.engine()
            if event == "session-start":
                result = engine.pull(sel)
            else:
                only = _session_paths(where.claude_dir, data.get("transcript_path"))
                result = engine.push(replace(sel, only=only))
    except SyncError as exc:
        log(where, f"{event}: warning: {exc}")
        return
    log(
        where,
        f"{event}: pushed {len(result.pushed)}, pulled {len(result.pulled)}, "
        f"conflicts {len(result.conflicts)}",
    )
    if result.unavailable:
        # Damaged data in the repository: `claude-sync pull` names the files and the way out.
        log(where, f"{event}: warning: {len(result.unavailable)} files could not be downloaded")
