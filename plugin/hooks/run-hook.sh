#!/bin/sh
# Run by the claude-sync plugin's hooks.json as `sh run-hook.sh EVENT`; Claude Code passes the
# event JSON on stdin, which `claude-sync hook` reads. It must never fail or hold up Claude
# Code, so every path exits 0.
event="$1"
if command -v claude-sync >/dev/null 2>&1; then
  claude-sync hook "$event" --plugin --timeout 10
  exit 0
fi
# claude-sync is not installed: say once how to set it up. SessionStart output in
# `systemMessage` is shown to the user, never to the model.
[ "$event" = session-start ] || exit 0
hints="${CLAUDE_PLUGIN_DATA:-${HOME}/.cache/claude-sync-plugin}"
[ -e "$hints/setup-hint-shown" ] && exit 0
mkdir -p "$hints" 2>/dev/null && : >"$hints/setup-hint-shown" 2>/dev/null
printf '%s\n' '{"systemMessage": "claude-sync plugin: the claude-sync command is not installed, so nothing is synced. Install it (`bash scripts/install.sh` in a checkout of claude-sync, see its README) so that `claude-sync` is on PATH, then run `claude-sync init`."}'
exit 0
