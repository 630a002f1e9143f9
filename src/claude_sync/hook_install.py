"""Installing (and removing) claude-sync's hooks: Claude Code hooks in settings.json, and git
hooks in project repositories. What a hook runs once fired is `hook_run`.

What we add is recognised by its command (`claude-sync hook …` / the `claude-sync` marker in
git hook scripts), so `--uninstall` removes exactly that and nothing the user wrote.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from claude_sync import plugins
from claude_sync.durable import write_atomically
from claude_sync.errors import ConfigError
from claude_sync.json_layout import dump_like

EVENTS = {"SessionStart": "session-start", "SessionEnd": "session-end"}
_OURS = re.compile(r"claude[-_]sync hook (session-start|session-end)\b")
GIT_HOOKS = {"pre-commit": "push", "post-checkout": "pull"}
GIT_MARKER = "# installed by claude-sync"
CHAINED_SUFFIX = ".pre-claude-sync"
#: the command of a hook an older claude-sync installed where `claude-sync` was not on PATH:
#: the interpreter (quoted or not) with `-m` but no -P, which imports a `claude_sync` folder
#: of the project the hook runs in
UNSAFE = re.compile(r"^((?:'[^']*'|[^\s']+) )(-m claude_sync hook session-(?:start|end)\b)")
#: the same in the line of a git hook script that runs us
UNSAFE_GIT = re.compile(r"^(\( (?:'[^']*'|[^\s']+) )(-m claude_sync (?:push|pull) -q )", re.M)


def command_prefix() -> str:
    """How hooks call us: `claude-sync` when it is on PATH, else this interpreter (-P: a hook
    runs in a project's folder, whose own `claude_sync` folder must not be imported; see
    worker_process.module_command)."""
    found = shutil.which("claude-sync")
    if found and Path(found).resolve().parent == Path(sys.executable).resolve().parent:
        return "claude-sync"
    return f"{shlex.quote(sys.executable)} -P -m claude_sync"


# -- Claude Code settings.json ----------------------------------------------------------------


def is_own_hook(hook: object) -> bool:
    """Whether a hook entry of settings.json is one `install` added (each machine has its own)."""
    return isinstance(hook, dict) and bool(_OURS.search(str(hook.get("command", ""))))


def _load_settings(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return data


def _save_settings(path: Path, data: dict[str, Any]) -> None:
    try:
        like = path.read_bytes()
    except OSError:
        like = b""
    _write_settings(path, dump_like(data, like).decode())


def _write_settings(path: Path, text: str) -> None:
    # A settings.json linked into a dotfiles repository stays a link: the file it names
    # changes, keeping its mode.
    target = path.resolve() if path.is_symlink() else path
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    target.parent.mkdir(parents=True, exist_ok=True)

    def keep_mode(tmp: Path) -> bool:
        os.chmod(tmp, mode)
        return True

    write_atomically(target, text.encode(), before_rename=keep_mode)


def _without_ours(groups: list[Any]) -> list[Any]:
    kept = []
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            kept.append(group)
            continue
        hooks = [h for h in group["hooks"] if not is_own_hook(h)]
        if hooks:
            kept.append({**group, "hooks": hooks})
        elif not group["hooks"]:
            kept.append(group)
    return kept


def has_claude_hooks(settings_path: Path) -> bool:
    """Whether that settings.json holds claude-sync's hooks (an unreadable one: no)."""
    try:
        return bool(_OURS.search(settings_path.read_text(encoding="utf-8")))
    except OSError:
        return False


def refuse_with_plugin(claude_dir: Path) -> None:
    """settings.json hooks and the claude-sync plugin would both sync on every event."""
    pid = plugins.self_plugin(claude_dir)
    if pid:
        raise ConfigError(
            f"the claude-sync plugin ({pid}) already syncs on each session; "
            f"remove it first (`claude plugin uninstall {pid}`) or keep it and skip `install`"
        )


def install_claude_hooks(
    settings_path: Path, timeout: float, uninstall: bool = False, config_dir: Path | None = None
) -> bool:
    """Add (or remove) our SessionStart/SessionEnd hooks; True when the file changed.
    config_dir: a config folder other than the default, which the hooks must name: Claude
    Code runs them without the option or the variable that chose it."""
    data = _load_settings(settings_path)
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict):
        raise ConfigError(f"{settings_path}: `hooks` is not a JSON object")
    new_hooks = {}
    for event, groups in hooks.items():
        cleaned = _without_ours(groups) if isinstance(groups, list) else groups
        if cleaned != [] or event not in EVENTS:
            new_hooks[event] = cleaned
    if not uninstall:
        prefix = command_prefix()
        for event, verb in EVENTS.items():
            command = f"{prefix} hook {verb} --timeout {timeout:g}"
            if config_dir is not None:
                command += f" --config-dir {shlex.quote(str(config_dir))}"
            entry = {"type": "command", "command": command, "timeout": int(timeout) + 5}
            new_hooks.setdefault(event, []).append({"hooks": [entry]})
    new = dict(data)
    if new_hooks:
        new["hooks"] = new_hooks
    else:
        new.pop("hooks", None)
    if new == data:
        return False
    _save_settings(settings_path, new)
    return True


def _unsafe_hooks(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Our hooks in a settings file's data that an older claude-sync wrote without -P."""
    hooks = data.get("hooks")
    found = []
    for groups in hooks.values() if isinstance(hooks, dict) else ():
        for group in groups if isinstance(groups, list) else ():
            entries = group.get("hooks") if isinstance(group, dict) else None
            for hook in entries if isinstance(entries, list) else ():
                if is_own_hook(hook) and UNSAFE.match(str(hook.get("command"))):
                    found.append(hook)
    return found


def has_unsafe_hooks(settings_path: Path) -> bool:
    """Whether that settings file holds hooks of ours without -P (an unreadable one: no)."""
    try:
        return bool(_unsafe_hooks(_load_settings(settings_path)))
    except ConfigError:
        return False


def upgrade_claude_hooks(settings_path: Path) -> bool:
    """Add -P to the hooks of ours an older claude-sync wrote without it; True when the file
    changed. Only their commands change in its text: a project's settings file is often
    in its git repository. Run by each hook's worker, so that hooks made before the fix
    become safe the first time one fires (in a project without the trap). Raises OSError
    when the file cannot be written."""
    try:
        text = settings_path.read_text(encoding="utf-8")
        if "-m claude_sync hook" not in text:
            return False
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    hooks = _unsafe_hooks(data)
    if not hooks:
        return False
    new_text = text
    for hook in hooks:
        old = hook["command"]
        hook["command"] = UNSAFE.sub(r"\1-P \2", old)
        for ascii_only in (False, True):
            written = json.dumps(old, ensure_ascii=ascii_only)
            if written in new_text:
                replaced = json.dumps(hook["command"], ensure_ascii=ascii_only)
                new_text = new_text.replace(written, replaced)
                break
    try:
        exact = json.loads(new_text) == data
    except ValueError:
        exact = False
    # (Escaped otherwise than json writes it, or the same text elsewhere: written anew.)
    _write_settings(
        settings_path,
        new_text if exact else dump_like(data, text.encode()).decode(),
    )
    return True


# -- git hooks ----------------------------------------------------------------------------


def git_hooks_dir(repo: Path) -> Path:
    """The hooks folder git itself uses for repo, as `git rev-parse --git-path hooks` says."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--git-path", "hooks"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        raise ConfigError(f"{repo} is not a git repository") from None
    path = Path(out)
    return path if path.is_absolute() else repo / path


def _git_hook_script(name: str, action: str) -> str:
    return f"""#!/bin/sh
{GIT_MARKER}: runs the hook that was here before (kept as {name}{CHAINED_SUFFIX}),
# then `claude-sync {action}` in the background so git is never held up or failed by it.
chained="$(dirname "$0")/{name}{CHAINED_SUFFIX}"
if [ -x "$chained" ]; then
  "$chained" "$@" || exit $?
fi
( {command_prefix()} {action} -q >/dev/null 2>&1 & )
exit 0
"""


def upgrade_git_hooks(repo: Path) -> list[str]:
    """Write again our git hooks in repo that an older claude-sync wrote without -P (see
    upgrade_claude_hooks); the names of those rewritten. Run when such a hook fires."""
    directory = git_hooks_dir(repo)
    upgraded = []
    for name, action in GIT_HOOKS.items():
        hook = directory / name
        try:
            text = hook.read_text(errors="replace")
            if GIT_MARKER in text and UNSAFE_GIT.search(text):
                write_atomically(
                    hook, _git_hook_script(name, action).encode(), before_rename=_executable
                )
                upgraded.append(name)
        except OSError:
            continue
    return upgraded


def _executable(tmp: Path) -> bool:
    tmp.chmod(0o755)
    return True


def install_git_hooks(repo: Path, uninstall: bool = False) -> list[str]:
    """Install or remove our git hooks, chaining any hook already there; the names changed."""
    directory = git_hooks_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, action in GIT_HOOKS.items():
        hook = directory / name
        chained = directory / (name + CHAINED_SUFFIX)
        ours = hook.exists() and GIT_MARKER in hook.read_text(errors="replace")
        if uninstall:
            if ours:
                hook.unlink()
                if chained.exists():
                    chained.rename(hook)
                changed.append(name)
            continue
        if hook.exists() and not ours:
            if chained.exists():
                raise ConfigError(f"both {hook} and {chained} exist; move one away first")
            hook.rename(chained)
        hook.write_text(_git_hook_script(name, action))
        hook.chmod(0o755)
        changed.append(name)
    return changed
